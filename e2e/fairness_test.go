package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sort"
	"testing"
	"time"

	"codeswarm/activities"
	"codeswarm/devserver"
	"codeswarm/llm/scripted"
)

// Run A (fairBigAgents sub-agents) and run B (one) make fairCalls model
// calls per sub-agent.
const (
	fairBigAgents = 10
	fairCalls     = 10
	// fairRPS is both the provider's limit and llm.requests_per_second in
	// the permit scenario.
	fairRPS = 10
	// fairSlotLatency is the model's latency in the slot scenario: one slot
	// (llm.max_concurrent 1) is then the bottleneck, not the workflow steps.
	// It is longer than a step of B between two calls (its tool, two
	// workflow tasks) even on a loaded machine, so that B is back in line
	// before the slot is free again.
	fairSlotLatency = 200 * time.Millisecond
	// fairMinShare is what B must get of the model calls while both runs
	// call, of a fair share of 50%; first come, first served gives it
	// about 1/(fairBigAgents+1).
	fairMinShare = 0.30
)

// fairScenario is what limits the model calls: permits from the
// rate-limited LLM queue, or one worker's LLM slots.
type fairScenario struct {
	name    string
	env     map[string]string
	latency time.Duration
	rps     float64 // provider's limit; 0: none
}

var fairScenarios = []fairScenario{
	{name: "permits", rps: fairRPS, env: map[string]string{
		"CODESWARM_LLM_REQUESTS_PER_SECOND": fmt.Sprint(fairRPS), "CODESWARM_LLM_MAX_CONCURRENT": "16"}},
	{name: "slots", latency: fairSlotLatency, env: map[string]string{
		"CODESWARM_LLM_REQUESTS_PER_SECOND": "0", "CODESWARM_LLM_MAX_CONCURRENT": "1"}},
}

// fairOutcome is what one pair of runs measured.
type fairOutcome struct {
	share        float64       // B's share of the answered calls while both ran
	bTime, aTime time.Duration // from start to close
	limited      int           // 429s
}

// TestConcurrentRunsShareLLMFairly runs a 10-agent run A and a 1-agent run
// B together on one worker (B starts once A's sub-agents call), each agent
// making 10 model calls, once paced by permits from the rate-limited LLM
// queue (provider and ceiling at 10 req/s) and once by the worker's one LLM
// slot (200 ms per answer). With fairness on (the
// server's fairness keys, the worker's turns) B gets about half the calls
// while both run and finishes first; with it off (matching.enableFairness and
// llm.fair_share false) B waits behind A's calls. Both are measured in the
// same run; the assertions hold the fair case to at least 30% for B.
func TestConcurrentRunsShareLLMFairly(t *testing.T) {
	for _, sc := range fairScenarios {
		t.Run(sc.name, func(t *testing.T) {
			var fair, off fairOutcome
			t.Run("on", func(t *testing.T) { fair = runFairPair(t, sc, true) })
			t.Run("off", func(t *testing.T) { off = runFairPair(t, sc, false) })
			if t.Failed() {
				return
			}
			t.Logf("%s: fairness on: B %.0f%% of the calls while both ran, B done in %s, A in %s, %d 429s; off: B %.0f%%, B done in %s, A in %s, %d 429s",
				sc.name, 100*fair.share, fair.bTime.Round(time.Millisecond), fair.aTime.Round(time.Millisecond), fair.limited,
				100*off.share, off.bTime.Round(time.Millisecond), off.aTime.Round(time.Millisecond), off.limited)
			if fair.share < fairMinShare {
				t.Errorf("fairness on: B got %.0f%% of the model calls while both runs called, want at least %.0f%% (fair: 50%%)", 100*fair.share, 100*fairMinShare)
			}
			if fair.bTime >= fair.aTime {
				t.Errorf("fairness on: B (1 agent) took %s, A (%d agents) %s: B should finish first", fair.bTime, fairBigAgents, fair.aTime)
			}
			// The comparison is the point of the off run: if B did as well
			// without fairness, the test measured nothing.
			if off.share >= fair.share {
				t.Errorf("fairness off gave B %.0f%%, on %.0f%%: the setting made no difference", 100*off.share, 100*fair.share)
			}
		})
	}
}

// runFairPair runs A and B together on a fresh server and worker.
func runFairPair(t *testing.T, sc fairScenario, fair bool) fairOutcome {
	t.Helper()
	bigNames := make([]string, fairBigAgents)
	var agents []scripted.Agent
	for i := range bigNames {
		bigNames[i] = fmt.Sprintf("fair-a-%02d", i)
		agents = append(agents, faultAgent(bigNames[i], fairTurns(bigNames[i], sc.latency)))
	}
	const small = "fair-b-solo"
	agents = append(agents, faultAgent(small, fairTurns(small, sc.latency)))
	script := scripted.Script{Planner: []scripted.Reply{{Content: faultPlan(bigNames...)}}, Agents: agents}
	var opts []scripted.Option
	if sc.rps > 0 {
		opts = append(opts, scripted.WithRateLimit(sc.rps, int(sc.rps)))
	}
	h := fairStack(t, script, fair, opts...)
	for k, v := range sc.env {
		t.Setenv(k, v)
	}
	t.Setenv("CODESWARM_LLM_FAIR_SHARE", fmt.Sprint(fair))
	t.Setenv("CODESWARM_SWARM_MAX_CONCURRENT", fmt.Sprint(fairBigAgents))
	startLongLivedWorker(t)

	suffix := map[bool]string{true: "fair", false: "off"}[fair]
	idA, idB := "e2e-fair-a-"+suffix, "e2e-fair-b-"+suffix
	if code, out := h.run("run", "--repo", faultRepo(t), "--task", "big run", "--id", idA, "--detach", "--no-worker"); code != 0 {
		t.Fatalf("start A: exit %d: %s\n%s", code, out, tail(h.logs.String(), 4000))
	}
	// B comes while A's sub-agents are all calling: B alone would be done
	// before A has planned.
	waitForAgentCalls(t, h, fairBigAgents)
	if code, out := h.run("run", "--repo", faultRepo(t), "--task", faultMarker(small)+" Create "+small+".txt.",
		"--strategy", "none", "--id", idB, "--detach", "--no-worker"); code != 0 {
		t.Fatalf("start B: exit %d: %s\n%s", code, out, tail(h.logs.String(), 4000))
	}
	aTime := awaitRun(t, h, idA, fairBigAgents)
	bTime := awaitRun(t, h, idB, 1)
	share, limited := windowShare(h.model.Requests(), faultMarker(small))
	t.Logf("B %.0f%% of the calls while both ran; B %s, A %s; %d 429s", 100*share, bTime.Round(time.Millisecond), aTime.Round(time.Millisecond), limited)
	return fairOutcome{share: share, aTime: aTime, bTime: bTime, limited: limited}
}

// waitForAgentCalls waits until the model has answered n sub-agent calls.
func waitForAgentCalls(t *testing.T, h *harness, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		calls := 0
		for _, r := range h.model.Requests() {
			if r.Kind == scripted.KindAgent && r.Status == http.StatusOK {
				calls++
			}
		}
		if calls >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sub-agent calls after 2 minutes, want %d\n%s", calls, n, tail(h.logs.String(), 4000))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fairTurns scripts fairCalls model calls: globs, then a write, then
// the final answer.
func fairTurns(name string, latency time.Duration) []scripted.Reply {
	turns := writeTurns(name)
	var out []scripted.Reply
	for i := range fairCalls - len(turns) {
		// A new pattern each turn: the same call again is a stuck agent.
		args := fmt.Sprintf(`{"pattern": "*%d*"}`, i)
		out = append(out, scripted.Reply{ToolCalls: []scripted.ToolCall{{Name: "glob", Arguments: args}}})
	}
	out = append(out, turns...)
	for i := range out {
		out[i].Delay = scripted.Duration(latency)
	}
	return out
}

// fairStack starts a server with fairness on or off for queues that see a
// fairness key, and a scripted model, for one pair of runs.
func fairStack(t *testing.T, script scripted.Script, fair bool, opts ...scripted.Option) *harness {
	t.Helper()
	srv, model, c := startStackWith(t, devserver.Options{DynamicConfig: map[string]any{"matching.enableFairness": fair}}, script, opts...)
	h := &harness{t: t, server: srv, model: model, client: c, queue: testQueue(t), root: t.TempDir(), logs: &bytes.Buffer{}}
	setCLIEnv(t, srv.FrontendAddress(), h.queue, model.URL(), h.root)
	return h
}

// awaitRun waits for run id, checks that its want subtasks succeeded, and
// returns how long it ran by the server's clock.
func awaitRun(t *testing.T, h *harness, id string, want int) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := activities.RunResult(ctx, h.client, id)
	if err != nil {
		t.Fatalf("run %s: %v", id, err)
	}
	if !res.Success || len(res.SubtaskResults) != want {
		t.Fatalf("run %s failed (want %d subtasks):\n%s", id, want, fmtResult(res))
	}
	d, err := h.client.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	info := d.GetWorkflowExecutionInfo()
	return info.GetCloseTime().AsTime().Sub(info.GetStartTime().AsTime())
}

// windowShare is agent small's share of the answered agent calls while
// both runs were calling (from the later of the two runs' first calls to
// the earlier of their last ones), and the number of 429s over the log.
func windowShare(reqs []scripted.Request, small string) (share float64, limited int) {
	var calls []scripted.Request
	for _, r := range reqs {
		if r.Status == http.StatusTooManyRequests {
			limited++
		}
		if r.Kind == scripted.KindAgent && r.Status == http.StatusOK {
			calls = append(calls, r)
		}
	}
	sort.SliceStable(calls, func(i, j int) bool { return calls[i].Time.Before(calls[j].Time) })
	span := map[bool][2]int{} // by "is small": first and last index
	for i, r := range calls {
		isSmall := r.Agent == small
		sp, ok := span[isSmall]
		if !ok {
			sp[0] = i
		}
		sp[1] = i
		span[isSmall] = sp
	}
	if len(span) < 2 {
		return 0, limited
	}
	from, to := max(span[true][0], span[false][0]), min(span[true][1], span[false][1])
	if from > to {
		return 0, limited // one run called only after the other was done
	}
	mine := 0
	for _, r := range calls[from : to+1] {
		if r.Agent == small {
			mine++
		}
	}
	return float64(mine) / float64(to-from+1), limited
}
