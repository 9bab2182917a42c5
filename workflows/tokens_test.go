package workflows_test

import (
	"testing"

	"codeswarm/activities"
	"codeswarm/workflows"
)

// TestCachedPromptTokensPricedAtTheCachedRate: the prompt tokens the
// provider served from its cache are counted per subtask and in the
// stats, and every subtask's cost and the run's total price them at the
// model's cached rate.
func TestCachedPromptTokensPricedAtTheCachedRate(t *testing.T) {
	w := newWorld(subtask("01-a", 0), subtask("02-b", 0))
	cachedStep := activities.Usage{PromptTokens: 100, CompletionTokens: 10, CachedPromptTokens: 80}
	w.fallback = func(in activities.AgentStepInput) activities.AgentStepResult {
		r := toolsThenDone(2)(in) // 3 steps
		r.Usage = cachedStep
		return r
	}
	env := newEnv(t, w)
	in := swarmInput()
	price := activities.Price{Prompt: 1, Completion: 2, CachedPrompt: 0.25}
	in.Budget = workflows.RunBudget{Price: price, PlannerPrice: price}
	res := runSwarm(t, env, in)
	if !res.Success {
		t.Fatalf("run failed: %s", res.Error)
	}
	// Per step: 20 prompt tokens at 1, 80 cached at 0.25, 10 completion at 2.
	stepCost := (20*1 + 80*0.25 + 10*2) / 1e6
	wantCost := price.Cost(planUsage)
	for _, id := range []string{"01-a", "02-b"} {
		r := subtaskResult(t, res, id)
		if r.PromptTokens != 300 || r.CachedPromptTokens != 240 || !near(r.CostUSD, 3*stepCost) {
			t.Errorf("%s: %d prompt tokens (%d cached), $%g; want 300 (240 cached), $%g", id, r.PromptTokens, r.CachedPromptTokens, r.CostUSD, 3*stepCost)
		}
		wantCost += 3 * stepCost
	}
	if res.Stats.CachedPromptTokens != 480 || !near(res.Stats.CostUSD, wantCost) {
		t.Errorf("stats: %d cached prompt tokens, $%g; want 480, $%g", res.Stats.CachedPromptTokens, res.Stats.CostUSD, wantCost)
	}
}
