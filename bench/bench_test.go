package bench

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"
)

// unthrottled is the llm.requests_per_second used wherever a figure is not
// about the throttle: 0, no ceiling (the default). A ceiling, however high,
// makes every model call take a permit from the shared LLM queue.
const unthrottled = "0"

// runs returns how many runs of each contender a figure takes the median
// of: CODESWARM_BENCH_N, default 3.
func runs(t *testing.T) int {
	if v := os.Getenv("CODESWARM_BENCH_N"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("CODESWARM_BENCH_N=%q: want a positive integer", v)
		}
		return n
	}
	return 3
}

func gate(t *testing.T) {
	if os.Getenv("CODESWARM_BENCH") == "" {
		t.Skip("benchmarks run only with CODESWARM_BENCH=1 (see BENCHMARKS.md)")
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// row prints one line of the results table (to stdout, so that it shows
// without -v too).
func row(t *testing.T, figure, codeswarm, baseline, ratio, note string) {
	line := fmt.Sprintf("| %s | %s | %s | %s | %s |", figure, codeswarm, baseline, ratio, note)
	t.Log(line)
	fmt.Println(line)
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

// compare runs codeswarm and the baseline n times each, interleaved, and
// returns both medians.
func compare(t *testing.T, s *stack, w workload, maxConcurrent int, flags ...string) (cs, base time.Duration) {
	var csRuns, baseRuns []time.Duration
	for i := range runs(t) {
		d, _ := s.runCodeswarm(w, flags...)
		csRuns = append(csRuns, d)
		b := s.runBaseline(w, maxConcurrent)
		baseRuns = append(baseRuns, b)
		t.Logf("run %d: codeswarm %s, baseline %s", i+1, secs(d), secs(b))
	}
	return median(csRuns), median(baseRuns)
}

func independent(n, calls int) []agentSpec {
	out := make([]agentSpec, n)
	for i := range out {
		out[i] = agentSpec{name: fmt.Sprintf("a%04d", i), calls: calls}
	}
	return out
}

// swarmSettings lets n sub-agents of calls model calls each run at
// concurrency c without the step budget or the throttle getting in the way.
func swarmSettings(n, calls, c int) map[string]string {
	return map[string]string{
		"llm.requests_per_second":      unthrottled,
		"llm.max_concurrent":           strconv.Itoa(c),
		"swarm.max_concurrent":         strconv.Itoa(c),
		"swarm.max_subagents":          strconv.Itoa(max(n, 100)),
		"swarm.max_steps_per_subagent": strconv.Itoa(calls + 10),
		// A sub-agent reserves a whole max_steps_per_subagent at once only
		// while the budget holds that for twice the concurrency (see
		// workflows' ledger.stepChunk); below it, it would ask its run for
		// more steps mid-run, which the defaults never make it do.
		"swarm.max_total_steps":  strconv.Itoa(max(n, 2*c)*(calls+10) + 10),
		"swarm.subagent_timeout": "30m",
	}
}

// TestBench runs every figure; run one with -run 'TestBench/B1$'.
func TestBench(t *testing.T) {
	gate(t)
	fmt.Println("| figure | codeswarm | in-process | ratio | notes |")
	fmt.Println("|---|---|---|---|---|")
	t.Run("B1", benchB1)
	t.Run("B2", benchB2)
	t.Run("B3", benchB3)
	t.Run("B4", benchB4)
	t.Run("Flatness", benchFlatness)
	t.Run("B5", benchB5)
	t.Run("B8", benchB8)
	t.Run("B7", benchB7)
	t.Run("Floor", benchFloor)
}

// oneAgentSettings are swarmSettings for one sub-agent of calls model
// calls that sends the whole conversation with every call, as the
// in-process loop does: the figure is the orchestration's overhead, not
// llm.context_tokens' bound (see TestBenchTokens).
func oneAgentSettings(calls int) map[string]string {
	settings := swarmSettings(1, calls, 1)
	settings["llm.context_tokens"] = "0"
	return settings
}

// B1: one sub-agent, 200 read/edit steps, 0-latency model.
func benchB1(t *testing.T) {
	const steps = 200
	w := workload{agents: independent(1, steps+1)}
	settings := oneAgentSettings(steps + 1)
	s := startStack(t, w, settings)
	cs, base := compare(t, s, w, 1)
	if os.Getenv("CODESWARM_BENCH_TRACE") != "" {
		_, res := s.runCodeswarm(w)
		t.Logf("where the time goes in the sub-agent's history:\n%s", s.traceHistory(res.RunID+"."+res.SubtaskResults[0].ID))
	}
	perStep := (cs - base) / steps
	row(t, "B1 one agent, 200 steps, 0 ms model", secs(cs), secs(base), fmt.Sprintf("%.2fx", cs.Seconds()/base.Seconds()),
		fmt.Sprintf("**%.1f ms overhead per step** (target ≤ 3)", float64(perStep.Microseconds())/1000))
}

// B2: 100 sub-agents × 15 model calls, 0-latency model, --max-concurrent 100.
func benchB2(t *testing.T) {
	w := workload{agents: independent(100, 15)}
	s := startStack(t, w, swarmSettings(100, 15, 100))
	resetPeakRSS()
	var csRuns, baseRuns []time.Duration
	var rss int64
	lost := 0
	for i := range runs(t) {
		resetPeakRSS()
		d, res := s.runCodeswarm(w, "--max-concurrent", "100")
		rss = max(rss, peakRSS())
		csRuns = append(csRuns, d)
		baseRuns = append(baseRuns, s.runBaseline(w, 100))
		timedOut, failed, causes := s.lostTasks(res)
		lost += timedOut + failed
		t.Logf("run %d: codeswarm %s, baseline %s; sub-agents' workflow tasks timed out %d, failed %d %v", i+1, secs(d), secs(baseRuns[i]), timedOut, failed, causes)
	}
	cs, base := median(csRuns), median(baseRuns)
	row(t, "B2 100 agents × 15 calls, 0 ms model, --max-concurrent 100", secs(cs), secs(base),
		fmt.Sprintf("**%.2fx** (target ≤ 1.5)", cs.Seconds()/base.Seconds()),
		fmt.Sprintf("peak RSS of the process (server + worker + CLI + model) during codeswarm runs: %d MB (target < 1 GB); sub-agents' workflow tasks lost (timed out or failed): %d", rss>>20, lost))
}

// B3: 10 sub-agents × 15 calls at 200 ms per call.
func benchB3(t *testing.T) {
	w := workload{agents: independent(10, 15), latency: 200 * time.Millisecond}
	s := startStack(t, w, swarmSettings(10, 15, 10))
	cs, base := compare(t, s, w, 10, "--max-concurrent", "10")
	if os.Getenv("CODESWARM_BENCH_TRACE") != "" {
		t0 := time.Now()
		d, res := s.runCodeswarm(w, "--max-concurrent", "10")
		t.Logf("traced run %s; the run's events from the CLI's start:\n%s", secs(d), s.timeline(res.RunID, t0))
		t.Logf("its first sub-agent:\n%s", s.timeline(res.RunID+"."+res.SubtaskResults[0].ID, t0))
	}
	row(t, "B3 10 agents × 15 calls, 200 ms model", secs(cs), secs(base),
		fmt.Sprintf("**%.2fx** (target ≤ 1.05)", cs.Seconds()/base.Seconds()), "")
}

// b4Plan: 4 read-only subtasks with uneven chains; the longest chain is
// 4 + 7 = 11 calls, plus the planner.
func b4Plan() workload {
	return workload{readOnly: true, latency: 300 * time.Millisecond, agents: []agentSpec{
		{name: "a-scan", calls: 4},
		{name: "b-deep", calls: 7, deps: []string{"a-scan"}},
		{name: "c-scan", calls: 5},
		{name: "d-short", calls: 3, deps: []string{"c-scan"}},
	}}
}

// B4: the uneven plan at 300 ms per call with default settings, against
// the critical-path ideal (12 × 300 ms); then with the throttle off.
func benchB4(t *testing.T) {
	w := b4Plan()
	ideal := 12 * w.latency
	for _, c := range []struct {
		name     string
		settings map[string]string
		target   string
	}{
		{"defaults", nil, " (target ≤ 1.08)"},
		{"llm.requests_per_second 1000", map[string]string{"llm.requests_per_second": "1000"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := startStack(t, w, c.settings)
			var csRuns, baseRuns []time.Duration
			for i := range runs(t) {
				t0 := time.Now()
				d, res := s.runCodeswarm(w)
				if os.Getenv("CODESWARM_BENCH_TRACE") != "" {
					t.Logf("traced run %s; the run's events from the CLI's start:\n%s", secs(d), s.timeline(res.RunID, t0))
				}
				csRuns = append(csRuns, d)
				baseRuns = append(baseRuns, s.runBaseline(w, 4))
				t.Logf("run %d: codeswarm %s, baseline %s", i+1, secs(d), secs(baseRuns[i]))
			}
			cs, base := median(csRuns), median(baseRuns)
			row(t, "B4 uneven chains, 300 ms model, "+c.name, secs(cs), secs(base),
				fmt.Sprintf("**%.2fx ideal**%s", cs.Seconds()/ideal.Seconds(), c.target),
				fmt.Sprintf("critical-path ideal %s; in-process %.2fx ideal", secs(ideal), base.Seconds()/ideal.Seconds()))
		})
	}
}

// Flatness: a 1,000-step agent's last 100 steps against its first 100,
// from the arrival times of its model requests at the scripted server.
func benchFlatness(t *testing.T) {
	const steps = 1000
	w := workload{agents: independent(1, steps+1)}
	settings := oneAgentSettings(steps + 1)
	s := startStack(t, w, settings)
	before := len(s.model.Requests())
	d, _ := s.runCodeswarm(w)
	first, last := stepCosts(s.model.Requests()[before:], w.match(0))
	before = len(s.model.Requests())
	b := s.runBaseline(w, 1)
	bFirst, bLast := stepCosts(s.model.Requests()[before:], w.match(0))
	// Both loops send the whole conversation with every call, so a step
	// costs more as it grows, in-process too; what codeswarm adds is the
	// difference.
	row(t, "Flatness: 1,000-step agent, mean ms per step, first 100 → last 100",
		fmt.Sprintf("%.1f → %.1f ms (total %s)", first, last, secs(d)),
		fmt.Sprintf("%.1f → %.1f ms (total %s)", bFirst, bLast, secs(b)),
		fmt.Sprintf("last/first %.2f; **overhead over in-process %.1f → %.1f ms**", last/first, first-bFirst, last-bLast), "")
}

// B5: 1,000 sub-agents × 15 calls, --max-concurrent 200, one run.
func benchB5(t *testing.T) {
	const n = 1000
	w := workload{agents: independent(n, 15)}
	s := startStack(t, w, swarmSettings(n, 15, 200))
	d, res := s.runCodeswarm(w, "--max-concurrent", "200", "--max-subagents", strconv.Itoa(n))
	if len(res.SubtaskResults) != n {
		t.Fatalf("%d subtask results, want %d", len(res.SubtaskResults), n)
	}
	runs := s.chainSizes(res.RunID)
	for i, r := range runs {
		t.Logf("parent run %d of %d (newest first): %d events, %.2f MB, input %.0f kB", i+1, len(runs), r.events, float64(r.bytes)/(1<<20), float64(r.input)/1024)
	}
	p := largest(runs)
	ce, cb := s.historySize(res.RunID + "." + res.SubtaskResults[0].ID)
	timedOut, failed, causes := s.lostTasks(res)
	b := s.runBaseline(w, 200)
	row(t, "B5 1,000 agents × 15 calls, 0 ms model, --max-concurrent 200", secs(d), secs(b),
		fmt.Sprintf("%.2fx (target < 10 min)", d.Seconds()/b.Seconds()),
		fmt.Sprintf("all merged, no worktree left; parent %d runs, largest %d events / %.1f MB, largest carry %.0f kB; a child %d events / %.0f kB; sub-agents' workflow tasks timed out %d, failed %d %v",
			len(runs), p.events, float64(p.bytes)/(1<<20), float64(p.input)/1024, ce, float64(cb)/1024, timedOut, failed, causes))
}

// B8: 10,000 sub-agents × 15 calls, --max-concurrent 200, one run: the
// parent's and the sub-agents' histories stay bounded by continue-as-new,
// the process's memory (server, worker, CLI and model together) is
// measured, and every subtask must be merged. No in-process baseline: its
// 10,000 goroutines' worktrees would measure the disk, not the loop (B5
// compares the two at 1,000).
//
// CODESWARM_BENCH_B8_AGENTS=k runs only k of the sub-agents, on the same
// 10,001-file repository: a quicker look at a change (no target applies).
func benchB8(t *testing.T) {
	const files = 10000
	n := files
	if v := os.Getenv("CODESWARM_BENCH_B8_AGENTS"); v != "" {
		k, err := strconv.Atoi(v)
		if err != nil || k < 1 || k > files {
			t.Fatalf("CODESWARM_BENCH_B8_AGENTS=%q: want 1 to %d", v, files)
		}
		n = k
	}
	w := workload{agents: independent(n, 15), lean: true, files: files}
	s := startStack(t, w, swarmSettings(n, 15, 200))
	resetPeakRSS()
	d, res := s.runCodeswarm(w, "--max-concurrent", "200", "--max-subagents", strconv.Itoa(n))
	rss := peakRSS()
	merged := 0
	for _, st := range res.SubtaskResults {
		if st.Merge == "merged" {
			merged++
		}
	}
	if len(res.SubtaskResults) != n || merged != n {
		t.Fatalf("%d subtask results, %d merged, want %d", len(res.SubtaskResults), merged, n)
	}
	runs := s.chainSizes(res.RunID)
	p := largest(runs)
	ce, cb := s.historySize(res.RunID + "." + res.SubtaskResults[0].ID)
	timedOut, failed, causes := s.lostTasks(res)
	row(t, fmt.Sprintf("B8 %d agents × 15 calls, 0 ms model, --max-concurrent 200", n), secs(d), "n/a",
		fmt.Sprintf("%.1f min (target < 30 min)", d.Minutes()),
		fmt.Sprintf("all %d merged; peak RSS %d MB (target < 2 GB); parent %d runs, largest %d events / %.1f MB, largest carry %.0f kB; a child %d events / %.0f kB; sub-agents' workflow tasks timed out %d, failed %d %v",
			merged, rss>>20, len(runs), p.events, float64(p.bytes)/(1<<20), float64(p.input)/1024, ce, float64(cb)/1024, timedOut, failed, causes))
	if rss > 2<<30 {
		t.Errorf("peak RSS %d MB, over 2 GB", rss>>20)
	}
}
