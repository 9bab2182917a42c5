package workflows_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"

	"codeswarm/activities"
	"codeswarm/workflows"
)

// modelCalls runs one sub-agent whose model answers its turns in the given
// times (ms; the last turn is final) and returns, per turn, how the model
// was called ("local" or "activity"), and the changes it asked a version of.
func modelCalls(t *testing.T, taskQueue string, answerMs ...int64) ([]string, []string) {
	t.Helper()
	w := newWorld()
	w.noRateLimit = true
	w.fallback = func(in activities.AgentStepInput) activities.AgentStepResult {
		r := toolTurn("read", "r")
		if in.Turn >= len(answerMs) {
			r = finalTurn("STATUS: completed")
		}
		r.ModelMs, r.NoRateLimit = answerMs[in.Turn-1], true
		return r
	}
	env := newEnv(t, w)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: testRunID + ".01-a", TaskQueue: taskQueue})
	versions := newCommandRecorder()
	env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{versions}})
	var mu sync.Mutex
	kinds := map[int]string{}
	env.SetOnLocalActivityStartedListener(func(info *activity.Info, _ context.Context, args []any) {
		if info.ActivityType.Name == "AgentStep" {
			mu.Lock()
			kinds[args[0].(activities.AgentStepInput).Turn] = "local"
			mu.Unlock()
		}
	})
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, args converter.EncodedValues) {
		if info.ActivityType.Name == "AgentStep" {
			var in activities.AgentStepInput
			if err := args.Get(&in); err != nil {
				t.Errorf("decode AgentStep input: %v", err)
			}
			mu.Lock()
			kinds[in.Turn] = "activity"
			mu.Unlock()
		}
	})
	in := agentInput()
	in.LLMQueue = workflows.LLMQueue("codeswarm")
	in.Control = &workflows.AgentControl{}
	if res := runAgent(t, env, in); !res.Success || res.LLMCalls != len(answerMs) {
		t.Fatalf("result = %+v", res)
	}
	out := make([]string, len(answerMs))
	for i := range out {
		out[i] = kinds[i+1]
	}
	return out, versions.changes()
}

// A sub-agent on its host calls a fast model in local activities: the
// first call in an activity (a provider's model usually takes seconds),
// each later one locally while the last answer took under a second, and in
// an activity after a slower one. It asks no version (no marker, no
// TemporalChangeVersion upsert).
func TestSubAgentCallsAFastModelLocally(t *testing.T) {
	got, changes := modelCalls(t, wsQueue, 40, 30, 2500, 20, 10)
	if want := []string{"activity", "local", "local", "activity", "local"}; !slices.Equal(got, want) {
		t.Errorf("model calls %v, want %v", got, want)
	}
	if len(changes) != 0 {
		t.Errorf("asked versions of %v, want none", changes)
	}
}

// Off its host every model call is an activity.
func TestSubAgentCallsTheModelInActivitiesOffHost(t *testing.T) {
	got, _ := modelCalls(t, "codeswarm", 40, 30, 20)
	if want := []string{"activity", "activity", "activity"}; !slices.Equal(got, want) {
		t.Errorf("main queue: model calls %v, want %v", got, want)
	}
}

// The run passes the planner's speed on: when it answered within a second
// on the sub-agents' own model, each sub-agent's first call runs locally
// too; when it was slow, or another model planned, the first call is an
// activity.
func TestRunTellsSubAgentsTheModelIsFast(t *testing.T) {
	for _, c := range []struct {
		name      string
		planMs    int64
		planModel string
		want      string
	}{{"fast planner", 80, "", "local"}, {"slow planner", 2500, "", "activity"}, {"other planner model", 80, "big-planner", "activity"}} {
		w := newWorld(subtask("01-a", 0), subtask("02-b", 0))
		w.planFn = func(in activities.PlanInput, _ int) (activities.PlanResult, error) {
			return activities.PlanResult{Subtasks: w.subtasks, ModelMs: c.planMs}, nil
		}
		w.fallback = func(in activities.AgentStepInput) activities.AgentStepResult {
			r := finalTurn("STATUS: completed")
			r.ModelMs, r.NoRateLimit = 50, true
			return r
		}
		env := newEnv(t, w)
		var mu sync.Mutex
		first := map[string]string{}
		note := func(kind string, in activities.AgentStepInput) {
			mu.Lock()
			defer mu.Unlock()
			if in.Turn == 1 {
				first[in.Ref.SubtaskID] = kind
			}
		}
		env.SetOnLocalActivityStartedListener(func(info *activity.Info, _ context.Context, args []any) {
			if info.ActivityType.Name == "AgentStep" {
				note("local", args[0].(activities.AgentStepInput))
			}
		})
		env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, args converter.EncodedValues) {
			if info.ActivityType.Name == "AgentStep" {
				var in activities.AgentStepInput
				if err := args.Get(&in); err != nil {
					t.Errorf("decode AgentStep input: %v", err)
				}
				note("activity", in)
			}
		})
		in := swarmInput()
		in.PlannerModel = c.planModel
		if res := runSwarm(t, env, in); !res.Success {
			t.Fatalf("%s: run failed: %s", c.name, res.Error)
		}
		if first["01-a"] != c.want || first["02-b"] != c.want {
			t.Errorf("%s: first model calls %v, want %s for both", c.name, first, c.want)
		}
	}
}
