package workflows_test

import (
	"strings"
	"testing"

	"codeswarm/activities"
)

// cachedWork is a result cache hit as StartSubtask reports it: the first
// run's answer and what it spent.
func cachedWork(id string) *activities.CachedAgent {
	return &activities.CachedAgent{
		Commit:    "reused-" + id,
		From:      "0123456789abcdef0123456789abcdef01234567",
		Result:    "did " + id + " the first time\nSTATUS: completed",
		Steps:     5,
		ToolCalls: 4,
		LLMCalls:  5,
		Usage:     activities.Usage{PromptTokens: 500, CompletionTokens: 50},
		RunID:     "earlier-run",
		SubtaskID: id,
	}
}

// A hit ends the sub-agent without a model turn or a tool call: it commits
// (reports) the worktree StartSubtask filled, spends nothing, says cached,
// and is not stored again. --no-cache asks StartSubtask for no hit, and the
// sub-agent runs its turns and asks for its work to be stored.
func TestSubAgentCacheHitSkipsAgentStep(t *testing.T) {
	t.Run("hit", func(t *testing.T) {
		w := newWorld()
		hit := cachedWork(agentID)
		w.cacheHits = map[string]*activities.CachedAgent{agentID: hit}
		res := runAgent(t, newEnv(t, w), agentInput())
		if len(w.steps) != 0 || len(w.execs) != 0 || len(w.summaries) != 0 {
			t.Errorf("a cache hit ran %d model turns, %d tools, %d summaries; want none", len(w.steps), len(w.execs), len(w.summaries))
		}
		if !res.Cached || res.CachedFrom != hit.From || !res.Success || res.Status != activities.StatusCompleted || res.Result != hit.Result {
			t.Errorf("result: cached %v from %q success %v status %q result %q; want cached from %s, completed with the stored answer",
				res.Cached, res.CachedFrom, res.Success, res.Status, res.Result, hit.From)
		}
		if res.Steps != 0 || res.LLMCalls != 0 || res.ToolCalls != 0 || res.Usage != (activities.Usage{}) {
			t.Errorf("a hit spent steps %d, llm calls %d, tool calls %d, usage %+v; want nothing", res.Steps, res.LLMCalls, res.ToolCalls, res.Usage)
		}
		if len(w.commits) != 1 || w.commits[0].Cache != nil {
			t.Errorf("commits = %+v; want one, not stored in the cache again", w.commits)
		}
		if res.Commit != commitOf(worktreeOf(w.starts[0].Ref)) || !res.Changed {
			t.Errorf("commit %q changed %v; want the worktree's commit", res.Commit, res.Changed)
		}
	})
	t.Run("no-cache", func(t *testing.T) {
		w := newWorld()
		w.cacheHits = map[string]*activities.CachedAgent{agentID: cachedWork(agentID)}
		in := agentInput()
		in.NoCache = true
		res := runAgent(t, newEnv(t, w), in)
		if !w.starts[0].NoCache {
			t.Error("StartSubtask was not told NoCache")
		}
		if res.Cached || len(w.steps) != 2 || res.LLMCalls != 2 || !res.Success {
			t.Errorf("cached %v, %d model turns, %d llm calls, success %v; want the sub-agent run (2 turns)", res.Cached, len(w.steps), res.LLMCalls, res.Success)
		}
		if len(w.commits) != 1 || w.commits[0].Cache == nil || w.commits[0].Cache.Key != "key:"+agentID {
			t.Errorf("commits = %+v; want the completed work stored under its key", w.commits)
		}
	})
}

// Only work that completed on its own, and depends on nothing the key does
// not show, is stored.
func TestSubAgentStoresOnlyCompletedWork(t *testing.T) {
	tests := []struct {
		name      string
		script    script
		noKey     bool
		wantStore bool
	}{
		{name: "completed", script: toolsThenDone(2), wantStore: true},
		{name: "blocked", script: sequence(toolTurn("edit", "e1"), finalTurn("need access\nSTATUS: blocked"))},
		{name: "no status line", script: sequence(toolTurn("edit", "e1"), finalTurn("all done"))},
		{name: "read a shared value", script: sequence(toolTurn("swarm_share", "s1"), finalTurn("STATUS: completed"))},
		{name: "cache off (no key)", script: toolsThenDone(1), noKey: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld()
			w.fallback = tt.script
			if !tt.noKey {
				w.cacheHits = map[string]*activities.CachedAgent{}
			}
			res := runAgent(t, newEnv(t, w), agentInput())
			if len(w.commits) != 1 {
				t.Fatalf("%d commits, want 1", len(w.commits))
			}
			store := w.commits[0].Cache
			if (store != nil) != tt.wantStore {
				t.Fatalf("store = %+v, want stored %v", store, tt.wantStore)
			}
			if store == nil {
				return
			}
			in := agentInput()
			if store.Key != "key:"+agentID || store.RepoPath != in.RepoPath || store.Ref.SubtaskID != agentID ||
				store.FinalTurn != res.Steps || store.Steps != res.Steps || store.LLMCalls != res.LLMCalls ||
				store.ToolCalls != res.ToolCalls || store.Usage != res.Usage || !store.NeedsWorktree {
				t.Errorf("store = %+v; want key, final turn %d and what the sub-agent spent (%+v)", store, res.Steps, res)
			}
		})
	}
}

// The parent passes --no-cache to the planner and every sub-agent, and a
// cached plan or sub-agent reaches the result, the stats and the Web UI's
// table; a cached plan is not a model call.
func TestSwarmCachedPlanAndSubagents(t *testing.T) {
	newCachedWorld := func() *world {
		w := twoStagePlan()
		w.cacheHits = map[string]*activities.CachedAgent{"01-a": cachedWork("01-a"), "03-c": cachedWork("03-c")}
		w.planFn = func(in activities.PlanInput, _ int) (activities.PlanResult, error) {
			if in.NoCache {
				return activities.PlanResult{Subtasks: w.subtasks, Usage: planUsage}, nil
			}
			return activities.PlanResult{Subtasks: w.subtasks, Cached: true}, nil
		}
		return w
	}

	t.Run("cached", func(t *testing.T) {
		w := newCachedWorld()
		env := newEnv(t, w)
		res := runSwarm(t, env, swarmInput())
		if !res.Stats.PlanCached || res.Stats.SubagentsCached != 2 || res.Stats.SubagentsCompleted != 3 {
			t.Errorf("stats: plan cached %v, %d sub-agents cached, %d completed; want the plan and 2 of 3 cached",
				res.Stats.PlanCached, res.Stats.SubagentsCached, res.Stats.SubagentsCompleted)
		}
		for id, want := range map[string]bool{"01-a": true, "02-b": false, "03-c": true} {
			if r := subtaskResult(t, res, id); r.Cached != want || !r.Success || r.Merge != activities.MergeMerged {
				t.Errorf("%s: cached %v success %v merge %q; want cached %v, merged", id, r.Cached, r.Success, r.Merge, want)
			}
		}
		// Only 02-b called the model: 4 turns; the cached plan is no call.
		if len(w.steps) != 4 || res.Stats.TotalLLMCalls != 4 {
			t.Errorf("%d model turns, %d LLM calls counted; want 02-b's 4 only", len(w.steps), res.Stats.TotalLLMCalls)
		}
		for _, c := range w.children {
			if c.NoCache {
				t.Errorf("child %s told NoCache on a run without it", c.Subtask.ID)
			}
		}
		details := currentDetails(t, env)
		for _, want := range []string{"| 01-a | completed (cached) |", "| 02-b | completed |", "| 03-c | completed (cached) |"} {
			if !strings.Contains(details, want) {
				t.Errorf("current details lack %q:\n%s", want, details)
			}
		}
		if p := progress(t, env, 0); len(p.Rows) != 3 || !p.Rows[0].Cached || p.Rows[1].Cached {
			t.Errorf("progress rows = %+v; want 01-a cached, 02-b not", p.Rows)
		}
	})

	t.Run("no-cache", func(t *testing.T) {
		w := newCachedWorld()
		in := swarmInput()
		in.NoCache = true
		res := runSwarm(t, newEnv(t, w), in)
		if len(w.plans) != 1 || !w.plans[0].NoCache {
			t.Errorf("planner inputs %+v; want one with NoCache", w.plans)
		}
		if len(w.children) != 3 {
			t.Fatalf("%d children, want 3", len(w.children))
		}
		for _, c := range w.children {
			if !c.NoCache {
				t.Errorf("child %s not told NoCache", c.Subtask.ID)
			}
		}
		if res.Stats.PlanCached || res.Stats.SubagentsCached != 0 || len(w.steps) != 2+4+3 || res.Stats.TotalLLMCalls != 1+2+4+3 {
			t.Errorf("plan cached %v, %d sub-agents cached, %d model turns, %d LLM calls; want nothing cached, every turn run",
				res.Stats.PlanCached, res.Stats.SubagentsCached, len(w.steps), res.Stats.TotalLLMCalls)
		}
	})
}
