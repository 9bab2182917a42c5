package e2e

import (
	"strings"
	"testing"
	"time"

	"codeswarm/llm/scripted"
)

// TestResultCacheRerun: the same task run again on the unchanged
// repository takes every sub-agent's work and the plan from the result
// cache: no model call, every subtask merged with the first run's change,
// the result, stats and status saying so; --no-cache runs them all again.
func TestResultCacheRerun(t *testing.T) {
	h := newHarness(t, scripted.DemoScript())
	t.Setenv("CODESWARM_CACHE_ENABLED", "true") // the default, which the harness turns off
	repo := faultRepo(t)
	code, first := h.runJSON("run", "--repo", repo, "--task", scripted.DemoTask, "--id", "cache-first")
	if code != 0 || !first.Success {
		t.Fatalf("first run exited %d: %s\n%s", code, fmtResult(first), tail(h.logs.String(), 3000))
	}
	calls := h.model.Count(scripted.KindPlanner) + h.model.Count(scripted.KindAgent) + h.model.Count(scripted.KindSummary)
	if calls == 0 || first.Stats.SubagentsCached != 0 || first.Stats.PlanCached {
		t.Fatalf("first run: %d model calls, %d cached sub-agents, plan cached %v; want calls and nothing cached", calls, first.Stats.SubagentsCached, first.Stats.PlanCached)
	}

	began := time.Now()
	code, again := h.runJSON("run", "--repo", repo, "--task", scripted.DemoTask, "--id", "cache-again")
	took := time.Since(began)
	if code != 0 || !again.Success {
		t.Fatalf("second run exited %d: %s\n%s", code, fmtResult(again), tail(h.logs.String(), 3000))
	}
	after := h.model.Count(scripted.KindPlanner) + h.model.Count(scripted.KindAgent) + h.model.Count(scripted.KindSummary)
	if after != calls {
		t.Errorf("the second run made %d model calls, want 0", after-calls)
	}
	if !again.Stats.PlanCached || again.Stats.SubagentsCached != len(again.SubtaskResults) || again.Stats.TotalLLMCalls != 0 {
		t.Errorf("second run stats: plan cached %v, %d of %d sub-agents cached, %d LLM calls; want all cached and none",
			again.Stats.PlanCached, again.Stats.SubagentsCached, len(again.SubtaskResults), again.Stats.TotalLLMCalls)
	}
	firstFiles := map[string]string{}
	for _, s := range first.SubtaskResults {
		firstFiles[s.ID] = strings.Join(s.FilesChanged, ",")
	}
	for _, s := range again.SubtaskResults {
		if !s.Cached || !s.Success || s.Merge != "merged" || s.LLMCalls != 0 || strings.Join(s.FilesChanged, ",") != firstFiles[s.ID] {
			t.Errorf("second run's %s: cached %v success %v merge %q llm calls %d files %v; want cached, merged, the first run's files %s",
				s.ID, s.Cached, s.Success, s.Merge, s.LLMCalls, s.FilesChanged, firstFiles[s.ID])
		}
	}
	// The same change: both integration branches hold the same tree.
	if a, b := git(t, repo, "rev-parse", first.HeadCommit+"^{tree}"), git(t, repo, "rev-parse", again.HeadCommit+"^{tree}"); a != b {
		t.Errorf("the cached run's result tree %s differs from the first run's %s", b, a)
	}
	t.Logf("second run: %v, 0 model calls", took)
	if code, out := h.run("status", "cache-again"); code != 0 || !strings.Contains(out, "(cached)") {
		t.Errorf("status (exit %d) does not show the cached sub-agents:\n%s", code, out)
	}

	agentCalls := h.model.Count(scripted.KindAgent)
	code, fresh := h.runJSON("run", "--repo", repo, "--task", scripted.DemoTask, "--id", "cache-bypassed", "--no-cache")
	if code != 0 || !fresh.Success {
		t.Fatalf("--no-cache run exited %d: %s\n%s", code, fmtResult(fresh), tail(h.logs.String(), 3000))
	}
	if n := h.model.Count(scripted.KindAgent) - agentCalls; n == 0 || fresh.Stats.SubagentsCached != 0 || fresh.Stats.PlanCached || fresh.Stats.TotalLLMCalls == 0 {
		t.Errorf("--no-cache run: %d sub-agent model calls, %d cached sub-agents, plan cached %v, %d LLM calls; want none cached and model calls",
			n, fresh.Stats.SubagentsCached, fresh.Stats.PlanCached, fresh.Stats.TotalLLMCalls)
	}
}
