package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"

	"codeswarm/activities"
	"codeswarm/internal/cli"
	"codeswarm/llm/scripted"
)

// B7: many runs at once on one server and one worker host, the shared LLM
// permit queue the bottleneck. b7Runs runs of b7Agents read-only
// sub-agents, b7Calls model calls each, llm.requests_per_second b7RPS (so
// every model call, the planner's too, first takes a permit from the
// rate-limited LLM queue; the model's b7Latency is far below what 500
// agents could call at). The first b7Runs-1 start together; the last once
// the model has answered b7LateAfter sub-agent calls (about 15 s in, when
// every early run's sub-agents are calling and the permit queue holds a
// backlog of about 450).
const (
	b7Runs      = 10
	b7Agents    = 50
	b7Calls     = 3
	b7RPS       = 20
	b7Latency   = 100 * time.Millisecond
	b7LateAfter = 300
)

// fairRun is what one run of a B7 round measured, from the server's
// histories.
type fairRun struct {
	id           string
	start, close time.Time
	permits      []time.Time     // when each of its permits was dispatched (ActivityTaskStarted)
	waits        []time.Duration // each permit's scheduled → started
	firstAgent   time.Duration   // start → its first sub-agent's first permit dispatched
	plannerWait  time.Duration   // the planner's permit: scheduled → dispatched
	credit       float64         // fair-share permits over its lifetime (see fairCredit)
	keys         map[string]bool // fairness keys its permits carried
}

func (r fairRun) wall() time.Duration { return r.close.Sub(r.start) }

// ratio is the run's wall time over its fair-share ideal: the ideal is its
// work (permits) at its average fair share of the measured throughput
// while it ran, work / (credit / wall), so the ratio is credit / work.
func (r fairRun) ratio() float64 { return r.credit / float64(len(r.permits)) }

// benchB7 measures fairness on (the embedded server's default); with
// CODESWARM_BENCH_FAIR_OFF set it measures the same rounds again with
// fairness off (matching.enableFairness and llm.fair_share false), to show
// what the keys change.
func benchB7(t *testing.T) {
	t.Run("on", func(t *testing.T) { benchB7With(t, true) })
	if os.Getenv("CODESWARM_BENCH_FAIR_OFF") != "" {
		t.Run("off", func(t *testing.T) { benchB7With(t, false) })
	}
}

func benchB7With(t *testing.T, fair bool) {
	w := workload{agents: independent(b7Agents, b7Calls), latency: b7Latency, readOnly: true}
	settings := swarmSettings(b7Agents, b7Calls, b7Agents)
	settings["llm.requests_per_second"] = strconv.Itoa(b7RPS)
	// The worker's slots must not be the bottleneck: at b7RPS × b7Latency
	// about 2 calls are in flight.
	settings["llm.max_concurrent"] = "64"
	settings["llm.fair_share"] = strconv.FormatBool(fair)
	s := startStackWith(t, w, settings, map[string]any{"matching.enableFairness": fair})
	var maxRatios, lastRatios, lastFirst, makespans []float64
	for rep := range runs(t) {
		rs := s.fairRound(w, rep)
		var work int
		first, end := rs[0].start, rs[0].close
		maxR := 0.0
		for i, r := range rs {
			work += len(r.permits)
			first, end = minTime(first, r.start), maxTime(end, r.close)
			maxR = max(maxR, r.ratio())
			slices.Sort(r.waits)
			t.Logf("fairness %v, round %d run %d%s: start +%.1f s, wall %.1f s, %d permits, fair share %.1f → ratio %.2f; permit wait p50 %.1f s, p90 %.1f s, max %.1f s; planner's permit waited %.2f s, first sub-agent's first permit +%.2f s; keys %v",
				fair, rep+1, i+1, map[bool]string{true: " (late)"}[i == len(rs)-1], r.start.Sub(first).Seconds(), r.wall().Seconds(), len(r.permits), r.credit, r.ratio(),
				pct(r.waits, 0.5).Seconds(), pct(r.waits, 0.9).Seconds(), r.waits[len(r.waits)-1].Seconds(), r.plannerWait.Seconds(), r.firstAgent.Seconds(), keyList(r.keys))
		}
		span := end.Sub(first)
		last := rs[len(rs)-1]
		t.Logf("fairness %v, round %d: %d permits in %.1f s from the first start to the last close: %.1f permits/s against the ceiling %d (throughput ideal %.1f s); max ratio %.2f, late run %.2f",
			fair, rep+1, work, span.Seconds(), float64(work)/span.Seconds(), b7RPS, float64(work)/b7RPS, maxR, last.ratio())
		maxRatios = append(maxRatios, maxR)
		lastRatios = append(lastRatios, last.ratio())
		lastFirst = append(lastFirst, last.firstAgent.Seconds())
		makespans = append(makespans, span.Seconds()/(float64(work)/b7RPS))
	}
	row(t, fmt.Sprintf("B7 %d runs × %d agents × %d calls, %d permits/s, the %dth started late, fairness %s", b7Runs, b7Agents, b7Calls, b7RPS, b7Runs, map[bool]string{true: "on", false: "off"}[fair]),
		fmt.Sprintf("max ratio %.2f", medianF(maxRatios)), "n/a (no permit queue)",
		fmt.Sprintf("**max %.2f, late run %.2f of the fair share** (target ≤ 1.3)", medianF(maxRatios), medianF(lastRatios)),
		fmt.Sprintf("late run's first sub-agent's first permit %.2f s after its start; makespan %.2fx the throughput ideal; medians of %d rounds", medianF(lastFirst), medianF(makespans), len(maxRatios)))
	if fair {
		// The claims: every run within 1.3x of its fair share, and the
		// late run not starved behind the backlog the others queued
		// (without fairness its first sub-agent waits ~20-30 s for it).
		if m := medianF(maxRatios); m > 1.3 {
			t.Errorf("a run took %.2fx its fair share of the permits (median of rounds), over 1.3", m)
		}
		if f := medianF(lastFirst); f > 5 {
			t.Errorf("the late run's first sub-agent waited %.1f s for its first permit: starved behind the backlog", f)
		}
	}
}

// fairRound starts b7Runs-1 runs of w, the last one once they are under
// way, waits for all and measures them.
func (s *stack) fairRound(w workload, rep int) []fairRun {
	t := s.t
	ids := make([]string, b7Runs)
	answered := func() int {
		n := 0
		for _, r := range s.model.Requests() {
			if r.Kind == scripted.KindAgent && r.Status == http.StatusOK {
				n++
			}
		}
		return n
	}
	before := answered()
	for i := range ids {
		if i == b7Runs-1 {
			deadline := time.Now().Add(10 * time.Minute)
			for answered()-before < b7LateAfter {
				if time.Now().After(deadline) {
					t.Fatalf("fewer than %d sub-agent calls answered after 10 minutes", b7LateAfter)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		ids[i] = fmt.Sprintf("b7-%d-r%02d-%d", rep, i, time.Now().UnixNano()%1e6)
		s.startDetached(w, ids[i])
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	out := make([]fairRun, len(ids))
	for i, id := range ids {
		res, err := activities.RunResult(ctx, s.client, id)
		if err != nil || !res.Success || len(res.SubtaskResults) != b7Agents {
			t.Fatalf("run %s: %v, success %v, %d subtasks", id, err, res.Success, len(res.SubtaskResults))
		}
		out[i] = s.measureFairRun(ctx, res)
	}
	fairCredit(out)
	return out
}

// startDetached starts a run of w with ID id through the CLI and returns.
func (s *stack) startDetached(w workload, id string) {
	t := s.t
	repo := newRepo(t, w.repoFiles())
	args := []string{"--config", writeEmptyConfig(t), "run", "--repo", repo, "--task", task, "--id", id, "--no-worker", "--detach"}
	var o, e bytes.Buffer
	if code := cli.Execute(context.Background(), args, cli.IO{Out: &o, Err: &e}); code != 0 {
		t.Fatalf("start %s: exit %d\n%s\n%s", id, code, o.String(), e.String())
	}
}

// measureFairRun reads the run's and its sub-agents' histories: its start
// and close, and every LLMPermit's schedule and dispatch.
func (s *stack) measureFairRun(ctx context.Context, res activities.SwarmResult) fairRun {
	d, err := s.client.DescribeWorkflowExecution(ctx, res.RunID, "")
	if err != nil {
		s.t.Fatal(err)
	}
	info := d.GetWorkflowExecutionInfo()
	r := fairRun{id: res.RunID, start: info.GetStartTime().AsTime(), close: info.GetCloseTime().AsTime(), keys: map[string]bool{}}
	var firstAgent time.Time
	ids := []string{res.RunID}
	for _, st := range res.SubtaskResults {
		ids = append(ids, res.RunID+"."+st.ID)
	}
	for n, id := range ids {
		sched := map[int64]time.Time{}
		it := s.client.GetWorkflowHistory(ctx, id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				s.t.Fatalf("history of %s: %v", id, err)
			}
			if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == "LLMPermit" {
				sched[ev.GetEventId()] = ev.GetEventTime().AsTime()
				r.keys[a.GetPriority().GetFairnessKey()] = true
			}
			if a := ev.GetActivityTaskStartedEventAttributes(); a != nil {
				if at, ok := sched[a.GetScheduledEventId()]; ok {
					st := ev.GetEventTime().AsTime()
					r.permits = append(r.permits, st)
					r.waits = append(r.waits, st.Sub(at))
					if n > 0 && (firstAgent.IsZero() || st.Before(firstAgent)) {
						firstAgent = st
					}
				}
			}
		}
	}
	if len(r.permits) == 0 {
		s.t.Fatalf("run %s took no LLM permit: is llm.requests_per_second in force?", res.RunID)
	}
	r.firstAgent = firstAgent.Sub(r.start)
	r.plannerWait = r.waits[0] // the parent's history is read first
	return r
}

// fairCredit gives each run its fair share of every permit dispatched
// while it was open: 1/k of it, k the runs open at that moment. A run's
// credit is the permits it would have had with the measured throughput
// shared equally by the open runs.
func fairCredit(rs []fairRun) {
	var all []time.Time
	for _, r := range rs {
		all = append(all, r.permits...)
	}
	open := make([]int, 0, len(rs))
	for _, at := range all {
		open = open[:0]
		for i, r := range rs {
			if !at.Before(r.start) && !at.After(r.close) {
				open = append(open, i)
			}
		}
		for _, i := range open {
			rs[i].credit += 1 / float64(len(open))
		}
	}
}

func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

func medianF(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func keyList(keys map[string]bool) string {
	var ks []string
	for k := range keys {
		if k == "" {
			k = `""`
		}
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return strings.Join(ks, ",")
}
