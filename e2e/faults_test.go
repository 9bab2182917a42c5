package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"codeswarm/activities"
	"codeswarm/llm/scripted"
)

// The scenarios below use plans of independent subtasks whose agents each
// write one file and finish; faults are attached to chosen turns. Every
// subtask's instruction carries faultMarker(name), which is also its
// agent's Match.

func faultMarker(name string) string { return "[fault:" + name + "]" }

// faultPlan is a planner answer with one independent subtask per name.
func faultPlan(names ...string) string {
	type subtask struct {
		Name          string   `json:"name"`
		Instruction   string   `json:"instruction"`
		Specialty     string   `json:"specialty"`
		Dependencies  []string `json:"dependencies"`
		Priority      int      `json:"priority"`
		NeedsWorktree bool     `json:"needs_worktree"`
	}
	var plan struct {
		Subtasks []subtask `json:"subtasks"`
	}
	for _, n := range names {
		plan.Subtasks = append(plan.Subtasks, subtask{n, faultMarker(n) + " Create " + n + ".txt.", "generalist", []string{}, 1, true})
	}
	b, err := json.Marshal(plan)
	if err != nil {
		panic(err) // literals only
	}
	return string(b)
}

// writeTurns scripts an agent that writes name.txt, then finishes.
func writeTurns(name string) []scripted.Reply {
	args := fmt.Sprintf(`{"path": %q, "content": "written by %s\n"}`, name+".txt", name)
	return []scripted.Reply{
		{ToolCalls: []scripted.ToolCall{{Name: "write", Arguments: args}}},
		{Content: "Wrote " + name + ".txt.\nSTATUS: completed"},
	}
}

func faultAgent(name string, turns []scripted.Reply) scripted.Agent {
	return scripted.Agent{Match: faultMarker(name), Turns: turns}
}

// withFaults returns turns with faults put on turn i.
func withFaults(turns []scripted.Reply, i int, faults ...scripted.Fault) []scripted.Reply {
	turns[i].Faults = faults
	return turns
}

// fastSwarmEnv lifts the limits that would only slow the scenarios down:
// enough sub-agents and LLM slots for every subtask at once (a hung request
// holds a slot), and no queue-wide rate limit.
func fastSwarmEnv(t *testing.T) {
	t.Setenv("CODESWARM_SWARM_MAX_CONCURRENT", "8")
	t.Setenv("CODESWARM_LLM_MAX_CONCURRENT", "16")
	t.Setenv("CODESWARM_LLM_REQUESTS_PER_SECOND", "100")
}

// faultRepo is a fresh repository for a scenario.
func faultRepo(t *testing.T) string {
	t.Helper()
	repo := t.TempDir()
	if err := scripted.WriteDemoRepo(repo); err != nil {
		t.Fatal(err)
	}
	return repo
}

// turnRequests returns the requests for one (kind, agent, turn), by arrival.
func turnRequests(m *scripted.Server, kind, agent string, turn int) []scripted.Request {
	var out []scripted.Request
	for _, r := range m.Requests() {
		if r.Kind == kind && r.Agent == agent && r.Turn == turn {
			out = append(out, r)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out
}

// answeredStatuses lists the answered statuses of requests (0: client gave up).
func answeredStatuses(reqs []scripted.Request) []int {
	out := make([]int, len(reqs))
	for i, r := range reqs {
		out[i] = r.Status
	}
	return out
}

func sameInts(a, b []int) bool {
	return fmt.Sprint(a) == fmt.Sprint(b)
}

// requireSuccess fails the test unless the run succeeded with every subtask
// merged.
func requireSuccess(t *testing.T, h *harness, code int, res activities.SwarmResult, want int) {
	t.Helper()
	if code != 0 || !res.Success || len(res.SubtaskResults) != want {
		t.Fatalf("run failed (exit %d, want %d subtasks):\n%s\nlogs:\n%s", code, want, fmtResult(res), tail(h.logs.String(), 6000))
	}
	for _, s := range res.SubtaskResults {
		if s.Merge != activities.MergeMerged {
			t.Errorf("%s: merge %q, want merged", s.ID, s.Merge)
		}
	}
}

// TestLLMFaultsRecovered is one run whose planner and sub-agents meet 429s
// (with Retry-After), 500/502/503, a hung response, non-JSON bodies, an
// empty choice list and a malformed tool call: every fault is retried or
// handed back to the model, and the run succeeds with every change merged.
func TestLLMFaultsRecovered(t *testing.T) {
	names := []string{"rate-limit", "server-errors", "hang", "non-json", "empty-choices", "bad-tool-args"}
	badArgs := []scripted.Reply{
		// Cut off mid-object: the tool must answer with an error the model can act on.
		{ToolCalls: []scripted.ToolCall{{Name: "write", Arguments: `{"path": "bad-tool-args.txt", "content": "oops`}}},
	}
	script := scripted.Script{
		Planner: []scripted.Reply{{Content: faultPlan(names...), Faults: []scripted.Fault{{Status: 429, RetryAfter: "1"}, {Status: 500}}}},
		Agents: []scripted.Agent{
			// Retry-After 3 is longer than the retry policy's 2 s first
			// interval, so honouring it is observable.
			faultAgent("rate-limit", withFaults(writeTurns("rate-limit"), 0, scripted.Fault{Status: 429, RetryAfter: "3"})),
			// 500, 502 and 503 on three turns, so each costs one backoff
			// interval instead of three in a row.
			faultAgent("server-errors", []scripted.Reply{
				{ToolCalls: []scripted.ToolCall{{Name: "write", Arguments: `{"path": "server-errors.txt", "content": "x\n"}`}}, Faults: []scripted.Fault{{Status: 500}}},
				{ToolCalls: []scripted.ToolCall{{Name: "read", Arguments: `{"path": "server-errors.txt"}`}}, Faults: []scripted.Fault{{Status: 502}}},
				{Content: "Done.\nSTATUS: completed", Faults: []scripted.Fault{{Status: 503}}},
			}),
			faultAgent("hang", withFaults(writeTurns("hang"), 0, scripted.Fault{Hang: true})),
			faultAgent("non-json", withFaults(writeTurns("non-json"), 0,
				scripted.Fault{Status: 502, Body: "<html><body>502 Bad Gateway</body></html>"},
				scripted.Fault{Body: "this is not JSON"})),
			faultAgent("empty-choices", withFaults(writeTurns("empty-choices"), 0, scripted.Fault{EmptyChoices: true})),
			faultAgent("bad-tool-args", append(badArgs, writeTurns("bad-tool-args")...)),
		},
	}
	h := newHarness(t, script)
	fastSwarmEnv(t)
	t.Setenv("CODESWARM_LLM_TIMEOUT", "2s") // the hung request times out and is retried

	code, res := h.runJSON("run", "--repo", faultRepo(t), "--task", "fault scenario", "--id", "e2e-faults")
	requireSuccess(t, h, code, res, len(names))

	t.Run("429 honours Retry-After", func(t *testing.T) {
		reqs := turnRequests(h.model, scripted.KindAgent, faultMarker("rate-limit"), 0)
		if !sameInts(answeredStatuses(reqs), []int{429, 200}) {
			t.Fatalf("statuses %v, want [429 200]", answeredStatuses(reqs))
		}
		gap := reqs[1].Time.Sub(reqs[0].Time)
		t.Logf("retry after 429 with Retry-After: 3 came %s later", gap)
		if gap < 3*time.Second {
			t.Errorf("retried %s after a 429 with Retry-After: 3", gap)
		}
		// The retry policy alone would have waited 2 s; a gap far beyond 3 s
		// would mean Retry-After was taken as a minimum plus backoff.
		if gap > 20*time.Second {
			t.Errorf("retried only %s after a 429 with Retry-After: 3", gap)
		}
	})

	t.Run("planner 429 and 500 retried", func(t *testing.T) {
		reqs := turnRequests(h.model, scripted.KindPlanner, "", 0)
		if !sameInts(answeredStatuses(reqs), []int{429, 500, 200}) {
			t.Errorf("planner statuses %v, want [429 500 200]", answeredStatuses(reqs))
		}
		if res.PlanNote != "" {
			t.Errorf("plan_note %q: transport faults must not count as an invalid plan", res.PlanNote)
		}
	})

	t.Run("5xx retried", func(t *testing.T) {
		for turn, want := range [][]int{{500, 200}, {502, 200}, {503, 200}} {
			if got := answeredStatuses(turnRequests(h.model, scripted.KindAgent, faultMarker("server-errors"), turn)); !sameInts(got, want) {
				t.Errorf("turn %d statuses %v, want %v", turn, got, want)
			}
		}
	})

	t.Run("hung request times out and is retried", func(t *testing.T) {
		reqs := turnRequests(h.model, scripted.KindAgent, faultMarker("hang"), 0)
		if !sameInts(answeredStatuses(reqs), []int{0, 200}) {
			t.Fatalf("statuses %v, want [0 200] (0: the client gave up)", answeredStatuses(reqs))
		}
		gap := reqs[1].Time.Sub(reqs[0].Time)
		t.Logf("retry after the hung request came %s later", gap)
		if gap < 2*time.Second {
			t.Errorf("retried %s after the hung request, before llm.timeout (2s)", gap)
		}
	})

	t.Run("non-JSON bodies and empty choices retried", func(t *testing.T) {
		if got := answeredStatuses(turnRequests(h.model, scripted.KindAgent, faultMarker("non-json"), 0)); !sameInts(got, []int{502, 200, 200}) {
			t.Errorf("non-json statuses %v, want [502 200 200] (HTML 502, then 200 with a non-JSON body, then the reply)", got)
		}
		if got := answeredStatuses(turnRequests(h.model, scripted.KindAgent, faultMarker("empty-choices"), 0)); !sameInts(got, []int{200, 200}) {
			t.Errorf("empty-choices statuses %v, want [200 200]", got)
		}
	})

	t.Run("malformed tool call answered with an error, then corrected", func(t *testing.T) {
		reqs := turnRequests(h.model, scripted.KindAgent, faultMarker("bad-tool-args"), 1)
		if len(reqs) == 0 {
			t.Fatal("the model was not asked again after the malformed call")
		}
		mustContain(t, "request after the malformed call", string(reqs[0].Body), "invalid JSON arguments for write")
		s := byID(res)["06-bad-tool-args"]
		if !s.Success || !strings.Contains(strings.Join(s.FilesChanged, ","), "bad-tool-args.txt") {
			t.Errorf("bad-tool-args: %+v", s)
		}
	})
}

// TestInvalidPlan covers the planner's repair round and the single-task
// fallback when the repair is invalid too.
func TestInvalidPlan(t *testing.T) {
	const invalid = `{"subtasks":[{"name":"a","instruction":"x","dependencies":["nope"]}]}`
	const task = "[fault:single] do the whole task"
	tests := []struct {
		name     string
		planner  []scripted.Reply
		wantIDs  []string
		wantNote string
	}{
		{"repaired", []scripted.Reply{{Content: invalid}, {Content: faultPlan("repaired")}}, []string{"01-repaired"}, "plan repaired after"},
		{"invalid twice falls back to one subtask", []scripted.Reply{{Content: invalid}, {Content: "no JSON here"}},
			[]string{"01-main"}, "ran the task as a single subtask"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, scripted.Script{Planner: tt.planner, Agents: []scripted.Agent{
				faultAgent("repaired", writeTurns("repaired")),
				{Match: "[fault:single]", Turns: writeTurns("single")},
			}})
			code, res := h.runJSON("run", "--repo", faultRepo(t), "--task", task)
			requireSuccess(t, h, code, res, len(tt.wantIDs))
			for _, id := range tt.wantIDs {
				if _, ok := byID(res)[id]; !ok {
					t.Errorf("no subtask %s in %s", id, fmtResult(res))
				}
			}
			if !strings.Contains(res.PlanNote, tt.wantNote) {
				t.Errorf("plan_note %q, want it to contain %q", res.PlanNote, tt.wantNote)
			}
			if n := h.model.Count(scripted.KindPlanner); n != 2 {
				t.Errorf("planner requests: %d, want 2 (plan and one repair)", n)
			}
		})
	}
}

// TestContextLengthFailsOneSubtask: a context-length error is not retried;
// that subtask fails with the reason, the run reports it, and the
// independent subtasks still run and merge.
func TestContextLengthFailsOneSubtask(t *testing.T) {
	names := []string{"too-long", "fine-a", "fine-b"}
	h := newHarness(t, scripted.Script{
		Planner: []scripted.Reply{{Content: faultPlan(names...)}},
		Agents: []scripted.Agent{
			faultAgent("too-long", withFaults(writeTurns("too-long"), 1, scripted.Fault{ContextLength: true})),
			faultAgent("fine-a", writeTurns("fine-a")),
			faultAgent("fine-b", writeTurns("fine-b")),
		},
	})
	fastSwarmEnv(t)
	repo := faultRepo(t)
	code, res := h.runJSON("run", "--repo", repo, "--task", "context length scenario")
	if code != 1 || res.Success {
		t.Fatalf("exit %d, success %v; want a failed run:\n%s", code, res.Success, fmtResult(res))
	}
	subs := byID(res)
	bad := subs["01-too-long"]
	t.Logf("too-long: status %q, error %q; run error %q", bad.Status, bad.Error, res.Error)
	if bad.Success || bad.Status != activities.StatusFailed || !strings.Contains(bad.Error, "context_length") {
		t.Errorf("too-long: success %v, status %q, error %q; want failed with context_length", bad.Success, bad.Status, bad.Error)
	}
	if bad.Merge == activities.MergeMerged {
		t.Error("the failed subtask was merged")
	}
	if reqs := turnRequests(h.model, scripted.KindAgent, faultMarker("too-long"), 1); len(reqs) != 1 {
		t.Errorf("context-length request sent %d times, want once (non-retryable)", len(reqs))
	}
	mustContain(t, "run error", res.Error, "01-too-long")
	for _, id := range []string{"02-fine-a", "03-fine-b"} {
		if s := subs[id]; !s.Success || s.Merge != activities.MergeMerged {
			t.Errorf("%s: success %v, merge %q; independent subtasks must still merge", id, s.Success, s.Merge)
		}
	}
	for _, f := range []string{"fine-a.txt", "fine-b.txt"} {
		if _, err := gitMaybe(repo, "cat-file", "-e", res.Branch+":"+f); err != nil {
			t.Errorf("%s is not on %s", f, res.Branch)
		}
	}
}

// TestRateLimitBurstAcrossFanOut: six sub-agents at once each get three 429s
// with Retry-After: 1 on their first turn; the run still succeeds.
func TestRateLimitBurstAcrossFanOut(t *testing.T) {
	var names []string
	var agents []scripted.Agent
	burst := []scripted.Fault{{Status: 429, RetryAfter: "1"}, {Status: 429, RetryAfter: "1"}, {Status: 429, RetryAfter: "1"}}
	for i := range 6 {
		n := fmt.Sprintf("burst-%d", i+1)
		names = append(names, n)
		agents = append(agents, faultAgent(n, withFaults(writeTurns(n), 0, burst...)))
	}
	h := newHarness(t, scripted.Script{Planner: []scripted.Reply{{Content: faultPlan(names...)}}, Agents: agents})
	fastSwarmEnv(t)
	code, res := h.runJSON("run", "--repo", faultRepo(t), "--task", "rate limit burst")
	requireSuccess(t, h, code, res, len(names))
	n429 := 0
	for _, r := range h.model.Requests() {
		if r.Status == http.StatusTooManyRequests {
			n429++
		}
	}
	if n429 != 18 {
		t.Errorf("429 answers: %d, want 18 (3 per sub-agent)", n429)
	}
}
