package workflows_test

import (
	"testing"

	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"
)

// TestPermitsCarryTheRunAsFairnessKey: every LLMPermit of a run, the
// planner's and each sub-agent's, is scheduled with the run's ID as its
// fairness key, so a server with fairness on the LLM queue hands out
// permits to runs in turn; the model calls themselves carry none.
func TestPermitsCarryTheRunAsFairnessKey(t *testing.T) {
	w := newWorld(subtask("01-a", 0), subtask("02-b", 0))
	env := newEnv(t, w)
	rec := newCommandRecorder()
	env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{rec}})
	if res := runSwarm(t, env, swarmInput()); !res.Success {
		t.Fatalf("run failed: %s", res.Error)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if got := rec.keys["LLMPermit"]; len(got) != 1 || got[testRunID] < 3 {
		t.Errorf("LLMPermit fairness keys %v, want only %q on the planner's and both sub-agents' permits", got, testRunID)
	}
	if got := rec.keys["AgentStep"]; len(got) != 1 || got[""] == 0 {
		t.Errorf("AgentStep fairness keys %v, want none", got)
	}
}
