package workflows_test

import (
	"slices"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"codeswarm/activities"
)

func TestSwarmPlanner(t *testing.T) {
	valid := []activities.Subtask{subtask("01-x", 0), subtask("02-y", 0)}
	tests := []struct {
		name      string
		strategy  string
		planFn    func(in activities.PlanInput, n int) (activities.PlanResult, error)
		wantPlans int
		wantIDs   []string
		wantNote  string
		wantErr   string
	}{
		{
			name: "valid first time", planFn: func(activities.PlanInput, int) (activities.PlanResult, error) {
				return activities.PlanResult{Subtasks: valid, Usage: planUsage}, nil
			},
			wantPlans: 1, wantIDs: []string{"01-x", "02-y"},
		},
		{
			name: "repaired", planFn: func(in activities.PlanInput, n int) (activities.PlanResult, error) {
				if n == 1 {
					return activities.PlanResult{Problem: "cycle between a and b", Usage: planUsage}, nil
				}
				return activities.PlanResult{Subtasks: valid, Usage: planUsage}, nil
			},
			wantPlans: 2, wantIDs: []string{"01-x", "02-y"}, wantNote: "plan repaired after: cycle between a and b",
		},
		{
			name: "invalid twice falls back", planFn: func(activities.PlanInput, int) (activities.PlanResult, error) {
				return activities.PlanResult{Problem: "duplicate name x", Usage: planUsage}, nil
			},
			wantPlans: 2, wantIDs: []string{"01-main"}, wantNote: "ran the task as a single subtask",
		},
		{
			name: "retryable error is retried", planFn: func(_ activities.PlanInput, n int) (activities.PlanResult, error) {
				if n == 1 {
					return activities.PlanResult{}, temporal.NewApplicationError("429 slow down", "LLMRateLimited")
				}
				return activities.PlanResult{Subtasks: valid, Usage: planUsage}, nil
			},
			wantPlans: 2, wantIDs: []string{"01-x", "02-y"},
		},
		{
			name: "non-retryable error fails the run", planFn: func(activities.PlanInput, int) (activities.PlanResult, error) {
				return activities.PlanResult{}, temporal.NewNonRetryableApplicationError("401 bad key", "LLMAuth", nil)
			},
			wantPlans: 1, wantIDs: []string{}, wantErr: "planning failed: 401 bad key",
		},
		{name: "strategy none", strategy: "none", wantPlans: 0, wantIDs: []string{"01-main"}, wantNote: "strategy none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld()
			w.planFn = tt.planFn
			in := swarmInput()
			in.PlannerModel = "planner"
			if tt.strategy != "" {
				in.Strategy = tt.strategy
			}
			res := runSwarm(t, newEnv(t, w), in)

			if len(w.plans) != tt.wantPlans {
				t.Fatalf("Plan called %d times, want %d", len(w.plans), tt.wantPlans)
			}
			for i, p := range w.plans {
				if p.Model != "planner" || p.Task != in.Task || p.MaxSubtasks != 10 || p.RepoListing != "main.go" {
					t.Errorf("plan input %d = %+v", i, p)
				}
			}
			if tt.name == "repaired" || tt.name == "invalid twice falls back" {
				if w.plans[0].Attempt != 0 || w.plans[0].RepairProblem != "" || w.plans[1].Attempt != 1 || w.plans[1].RepairProblem == "" {
					t.Errorf("plan attempts = %+v, want 0 then a repair (1) naming the problem", w.plans)
				}
			}
			var ids []string
			for _, r := range res.SubtaskResults {
				ids = append(ids, r.ID)
			}
			if !slices.Equal(orNil(ids), tt.wantIDs) {
				t.Errorf("subtasks = %v, want %v", ids, tt.wantIDs)
			}
			if !strings.Contains(res.PlanNote, tt.wantNote) || (tt.wantNote == "" && res.PlanNote != "") {
				t.Errorf("plan_note = %q, want %q", res.PlanNote, tt.wantNote)
			}
			if tt.wantErr != "" {
				if res.Success || !strings.Contains(res.Error, tt.wantErr) || strings.Contains(res.Error, "activity error") || res.SubtaskResults == nil || w.count("start:") != 0 {
					t.Errorf("success=%v error=%q subtasks=%v, want a failed run naming %q", res.Success, res.Error, res.SubtaskResults, tt.wantErr)
				}
				if len(w.finishes) != 1 {
					t.Errorf("FinishRun called %d times after a planner failure, want 1 (restore the repository)", len(w.finishes))
				}
				return
			}
			if !res.Success {
				t.Errorf("run failed: %s", res.Error)
			}
			if tt.wantIDs[0] == "01-main" && w.starts[0].Subtask.Instruction != in.Task {
				t.Errorf("fallback instruction = %q, want the task", w.starts[0].Subtask.Instruction)
			}
		})
	}
}

func TestSwarmPrepareFails(t *testing.T) {
	w := newWorld(subtask("01-a", 0))
	w.prepareErr = temporal.NewNonRetryableApplicationError("not a git repository: /repo", "Git", nil)
	res := runSwarm(t, newEnv(t, w), swarmInput())
	if res.Success || !strings.Contains(res.Error, "prepare run") || !strings.Contains(res.Error, "not a git repository") {
		t.Errorf("success=%v error=%q, want a failed run naming the prepare step", res.Success, res.Error)
	}
	if len(w.plans) != 0 || w.count("start:") != 0 || res.SubtaskResults == nil || res.Stats.Stages == nil {
		t.Errorf("plans=%d starts=%d results=%v stages=%v", len(w.plans), w.count("start:"), res.SubtaskResults, res.Stats.Stages)
	}
}
