package workflows_test

import (
	"fmt"
	"strings"
	"testing"

	"codeswarm/activities"
)

// TestSwarmBudgetWaits: with the default budget (1,500 steps, 100 per
// sub-agent) only 15 sub-agents fit in it at once; the other 85 of a
// 100-subtask plan wait for unused reservations and all of them run.
func TestSwarmBudgetWaits(t *testing.T) {
	var plan []activities.Subtask
	for i := range 100 {
		plan = append(plan, subtask(fmt.Sprintf("%03d-t", i), 0))
	}
	w := newWorld(plan...)
	w.fallback = toolsThenDone(2) // 3 steps each, 300 in all
	in := swarmInput()
	in.Limits.MaxSubagents = 100
	in.Limits.MaxStepsPerSubagent, in.Limits.MaxTotalSteps = 100, 1500 // the defaults
	in.Limits.MaxConcurrent = 100
	res := runSwarm(t, newEnv(t, w), in)

	if !res.Success || len(res.SubtaskResults) != 100 || res.Stats.SubagentsSpawned != 100 {
		t.Fatalf("success=%v results=%d spawned=%d error=%q", res.Success, len(res.SubtaskResults), res.Stats.SubagentsSpawned, res.Error)
	}
	for _, r := range res.SubtaskResults {
		if r.Status != activities.StatusCompleted || r.Steps != 3 {
			t.Errorf("%s = %s after %d steps (%s), want completed after 3", r.ID, r.Status, r.Steps, r.Error)
		}
	}
	for _, c := range w.children {
		if c.MaxSteps != in.Limits.MaxStepsPerSubagent {
			t.Errorf("%s was given %d steps, want a full share of %d", c.Subtask.ID, c.MaxSteps, in.Limits.MaxStepsPerSubagent)
		}
	}
}

// TestSwarmBudgetSpent: when the sub-agents really use the budget up, the
// subtasks that never started, and those depending on them, are reported as
// not run for lack of budget (not failed, not blocked), and the run fails.
func TestSwarmBudgetSpent(t *testing.T) {
	var plan []activities.Subtask
	for i := range 8 {
		plan = append(plan, subtask(fmt.Sprintf("%02d-t", i), 0))
	}
	plan = append(plan, subtask("08-dep", 1, "07-t"))
	w := newWorld(plan...)
	w.fallback = toolsThenDone(9) // 10 steps each: the whole share
	in := swarmInput()
	in.Limits.MaxStepsPerSubagent, in.Limits.MaxTotalSteps, in.Limits.MaxConcurrent = 10, 50, 3
	res := runSwarm(t, newEnv(t, w), in)

	ran, unfunded := 0, 0
	for _, r := range res.SubtaskResults {
		switch r.Status {
		case activities.StatusCompleted:
			ran++
		case activities.StatusNoBudget:
			unfunded++
			if r.Steps != 0 || !strings.Contains(r.Error, "not run: swarm step budget spent (50 of max_total_steps=50 used)") {
				t.Errorf("%s = %d steps, error %q", r.ID, r.Steps, r.Error)
			}
		default:
			t.Errorf("%s status %q (%s), want completed or %s", r.ID, r.Status, r.Error, activities.StatusNoBudget)
		}
	}
	if ran != 5 || unfunded != 4 || len(w.steps) != 50 {
		t.Errorf("ran %d, not run %d, turns %d; want 5, 4 and 50", ran, unfunded, len(w.steps))
	}
	if res.Success {
		t.Error("run succeeded although subtasks did not run")
	}
}
