package workflows_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"codeswarm/activities"
	"codeswarm/workflows"

	"go.temporal.io/sdk/temporal"
)

func TestSwarmStepBudget(t *testing.T) {
	tests := []struct {
		name          string
		total         int
		concurrent    int
		wantMaxSteps  map[string]int // the steps each sub-agent was granted at its start
		wantStatus    map[string]string
		wantErrSubstr map[string]string
	}{
		{
			name: "last sub-agent gets the remainder", total: 12, concurrent: 1,
			wantMaxSteps:  map[string]int{"01-a": 10, "02-b": 7, "03-c": 2},
			wantStatus:    map[string]string{"01-a": "completed", "02-b": "completed", "03-c": "failed"},
			wantErrSubstr: map[string]string{"03-c": "step budget (swarm.max_total_steps) has none left"},
		},
		{
			name: "nothing left for the last", total: 10, concurrent: 1,
			wantMaxSteps:  map[string]int{"01-a": 10, "02-b": 5},
			wantStatus:    map[string]string{"01-a": "completed", "02-b": "completed", "03-c": activities.StatusNoBudget},
			wantErrSubstr: map[string]string{"03-c": "not run: swarm step budget spent (10 of max_total_steps=10 used)"},
		},
		{
			// b waits for a's unused reservation instead of starting short.
			name: "a subtask waits for running sub-agents to hand steps back", total: 12, concurrent: 3,
			wantMaxSteps:  map[string]int{"01-a": 10, "02-b": 7, "03-c": 2},
			wantStatus:    map[string]string{"01-a": "completed", "02-b": "completed", "03-c": "failed"},
			wantErrSubstr: map[string]string{"03-c": "step budget (swarm.max_total_steps) has none left"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(subtask("01-a", 0), subtask("02-b", 0), subtask("03-c", 0))
			w.fallback = toolsThenDone(4) // 5 steps each
			in := swarmInput()
			in.Limits.MaxStepsPerSubagent, in.Limits.MaxTotalSteps, in.Limits.MaxConcurrent = 10, tt.total, tt.concurrent
			res := runSwarm(t, newEnv(t, w), in)

			got := map[string]int{}
			for _, c := range w.children {
				got[c.Subtask.ID] = c.StepGrant
				if c.MaxSteps != 10 {
					t.Errorf("%s: MaxSteps %d, want max_steps_per_subagent 10", c.Subtask.ID, c.MaxSteps)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.wantMaxSteps) {
				t.Errorf("MaxSteps given = %v, want %v", got, tt.wantMaxSteps)
			}
			if len(w.steps) > tt.total {
				t.Errorf("%d model turns ran, over max_total_steps %d", len(w.steps), tt.total)
			}
			total := 0
			if len(res.SubtaskResults) != 3 {
				t.Fatalf("%d subtask results, want 3", len(res.SubtaskResults))
			}
			for _, r := range res.SubtaskResults {
				total += r.Steps
				if r.Status != tt.wantStatus[r.ID] {
					t.Errorf("%s status = %q, want %q", r.ID, r.Status, tt.wantStatus[r.ID])
				}
				if want := tt.wantErrSubstr[r.ID]; want != "" && !strings.Contains(r.Error, want) {
					t.Errorf("%s error = %q, want it to contain %q", r.ID, r.Error, want)
				}
			}
			if total > tt.total || total != len(w.steps) {
				t.Errorf("steps in result = %d, turns run = %d, budget %d", total, len(w.steps), tt.total)
			}
			if res.Success {
				t.Error("run succeeded although a subtask ran out of budget")
			}
		})
	}
}

// TestStepBudgetDoesNotCapConcurrency: with a step budget of four full
// shares, twelve sub-agents still run at once (--max-concurrent 12): each
// starts with a chunk of steps and asks for more as it goes, and the run
// never spends more than the budget.
func TestStepBudgetDoesNotCapConcurrency(t *testing.T) {
	const n = 12
	subs := make([]activities.Subtask, n)
	for i := range subs {
		subs[i] = subtask(fmt.Sprintf("%02d-s", i), 0)
	}
	w := newWorld(subs...)
	w.fallback = toolsThenDone(14) // 15 steps each: more than one chunk
	w.stepDelay = time.Minute
	in := swarmInput()
	in.Limits.MaxSubagents, in.Limits.MaxConcurrent = n, n
	in.Limits.MaxStepsPerSubagent, in.Limits.MaxTotalSteps = 50, 200
	res := runSwarm(t, newEnv(t, w), in)
	if w.maxActive != n {
		t.Errorf("at most %d sub-agents ran at once, want %d (max_concurrent); the step budget capped it", w.maxActive, n)
	}
	total := 0
	for _, r := range res.SubtaskResults {
		total += r.Steps
		if !r.Success || r.Steps != 15 {
			t.Errorf("%s: success %v after %d steps (%s), want success after 15", r.ID, r.Success, r.Steps, r.Error)
		}
	}
	if total > in.Limits.MaxTotalSteps || len(w.steps) != total {
		t.Errorf("%d steps booked, %d turns run, budget %d", total, len(w.steps), in.Limits.MaxTotalSteps)
	}
}

// TestStepChunksStopAtTheBudget: sub-agents that would need more steps
// than the budget holds stop with a clear reason once it is spent, and the
// run never takes more steps than max_total_steps.
func TestStepChunksStopAtTheBudget(t *testing.T) {
	const n = 6
	subs := make([]activities.Subtask, n)
	for i := range subs {
		subs[i] = subtask(fmt.Sprintf("%02d-s", i), 0)
	}
	w := newWorld(subs...)
	w.fallback = toolsThenDone(40)
	w.stepDelay = time.Minute
	in := swarmInput()
	in.Limits.MaxSubagents, in.Limits.MaxConcurrent = n, n
	in.Limits.MaxStepsPerSubagent, in.Limits.MaxTotalSteps = 50, 100
	res := runSwarm(t, newEnv(t, w), in)
	if len(w.steps) > in.Limits.MaxTotalSteps {
		t.Errorf("%d turns ran, over max_total_steps %d", len(w.steps), in.Limits.MaxTotalSteps)
	}
	stopped := 0
	for _, r := range res.SubtaskResults {
		if strings.Contains(r.Error, "step budget (swarm.max_total_steps) has none left") {
			stopped++
		}
	}
	if stopped == 0 || res.Success {
		t.Errorf("success %v, %d sub-agents stopped for the step budget; want a failed run saying why", res.Success, stopped)
	}
}

func TestSwarmSubagentTimeout(t *testing.T) {
	w := newWorld(subtask("01-a", 0), subtask("02-b", 0))
	w.scripts["01-a"] = sequence(nudged()) // never makes progress
	w.scripts["02-b"] = toolsThenDone(3)   // progress every turn
	w.stepDelay = 10 * time.Minute
	in := swarmInput()
	in.Limits.SubagentTimeout = 15 * time.Minute
	res := runSwarm(t, newEnv(t, w), in)
	ra := subtaskResult(t, res, "01-a")
	if ra.Status != activities.StatusTimedOut || ra.ExitReason != workflows.ExitTimeout || ra.Merge != activities.MergeSkipped {
		t.Errorf("01-a = %+v, want timed out and not merged", ra)
	}
	if b := subtaskResult(t, res, "02-b"); !b.Success || b.ExecutionTimeMs < (40*time.Minute).Milliseconds() {
		t.Errorf("02-b = %+v, want success after 40 minutes of steady progress", b)
	}
	if res.Success || !strings.Contains(res.Error, "01-a (timed_out)") {
		t.Errorf("success=%v error=%q", res.Success, res.Error)
	}
}

// TestSwarmCancel: cancelling the run cancels the sub-agents, which still
// commit their work, and the run still restores the repository.
func TestSwarmCancel(t *testing.T) {
	w := newWorld(subtask("01-a", 0), subtask("02-b", 0), subtask("03-c", 1, "01-a"))
	w.fallback = toolsThenDone(10)
	w.stepDelay = time.Minute
	in := swarmInput()
	in.Apply = true
	env := newEnv(t, w)
	env.RegisterDelayedCallback(env.CancelWorkflow, 150*time.Second)
	env.ExecuteWorkflow(workflows.SwarmWorkflowName, in)
	if !env.IsWorkflowCompleted() {
		t.Fatal("cancelled run did not complete")
	}
	werr := env.GetWorkflowError()
	var cancelled *temporal.CanceledError
	if !errors.As(werr, &cancelled) {
		t.Fatalf("cancelled run closed with %v, want a cancellation (the workflow is Canceled)", werr)
	}
	res, ok := activities.ResultOf(werr)
	if !ok {
		t.Fatalf("cancelled run carries no result: %v", werr)
	}
	if len(w.finishes) != 1 || w.finishes[0].Apply {
		t.Errorf("finish calls = %+v, want one, without apply", w.finishes)
	}
	if res.Success || w.indexOf("start:03-c") >= 0 {
		t.Errorf("success=%v, 03-c started=%v after the cancel", res.Success, w.indexOf("start:03-c") >= 0)
	}
	for _, id := range []string{"01-a", "02-b"} {
		r := subtaskResult(t, res, id)
		if r.Status != activities.StatusCancelled || r.ExitReason != workflows.ExitCancelled || r.Commit == "" || r.Steps != 2 {
			t.Errorf("%s = %+v, want cancelled after 2 turns with its work committed", id, r)
		}
	}
	if c := subtaskResult(t, res, "03-c"); c.Status != activities.StatusCancelled || !strings.Contains(c.Error, "before it started") {
		t.Errorf("03-c = %+v, want cancelled before it started (not blocked)", c)
	}
}

// TestSwarmCancelQueued: a subtask waiting for a concurrency slot when the
// run is cancelled is never started.
func TestSwarmCancelQueued(t *testing.T) {
	w := newWorld(subtask("01-a", 0), subtask("02-b", 0))
	w.fallback = toolsThenDone(10)
	w.stepDelay = time.Minute
	in := swarmInput()
	in.Limits.MaxConcurrent = 1
	env := newEnv(t, w)
	env.RegisterDelayedCallback(env.CancelWorkflow, 90*time.Second)
	res := runSwarm(t, env, in)
	b := subtaskResult(t, res, "02-b")
	if b.Status != activities.StatusCancelled || !strings.Contains(b.Error, "before it started") || w.indexOf("start:02-b") >= 0 {
		t.Errorf("02-b = %+v, want cancelled before it started", b)
	}
	if res.Stats.SubagentsSpawned != 1 {
		t.Errorf("spawned = %d, want 1", res.Stats.SubagentsSpawned)
	}
}
