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

// gitCalls runs a sub-agent with LocalGit as given, on taskQueue, and
// returns how StartSubtask and CommitSubtask ran ("local" or "activity",
// in order). deferLocal: a local StartSubtask finds no worktree at hand.
func gitCalls(t *testing.T, taskQueue string, localGit, deferLocal bool) map[string]string {
	t.Helper()
	w := newWorld()
	w.noRateLimit = true
	w.deferLocalStarts = deferLocal
	env := newEnv(t, w)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: testRunID + ".01-a", TaskQueue: taskQueue})
	var mu sync.Mutex
	kinds := map[string]string{}
	note := func(name, kind string) {
		if name == "StartSubtask" || name == "CommitSubtask" {
			mu.Lock()
			kinds[name] = kinds[name] + kind
			mu.Unlock()
		}
	}
	env.SetOnLocalActivityStartedListener(func(info *activity.Info, _ context.Context, _ []any) { note(info.ActivityType.Name, "local") })
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		note(info.ActivityType.Name, "activity")
	})
	in := agentInput()
	in.LLMQueue = workflows.LLMQueue("codeswarm")
	in.LocalGit = localGit
	if res := runAgent(t, env, in); !res.Success {
		t.Fatalf("result = %+v", res)
	}
	// Whatever ran it, the sub-agent works in the worktree started.
	if len(w.starts) != 1 || len(w.commits) != 1 || w.commits[0].Worktree != worktreeOf(w.starts[0].Ref) {
		t.Errorf("%d starts, commits %+v; want one start and a commit of its worktree", len(w.starts), w.commits)
	}
	return kinds
}

// A sub-agent a run starts (LocalGit) on its host starts its worktree and
// commits it in local activities, in its own workflow tasks; off the host,
// or started as histories recorded before LocalGit were, in activities. A
// local start that finds no worktree at hand (Deferred) is run again as
// an activity.
func TestSubAgentRunsGitLocallyOnItsHost(t *testing.T) {
	for _, c := range []struct {
		name              string
		queue             string
		localGit, deferLa bool
		start, commit     string
	}{
		{"run's sub-agent on its host", wsQueue, true, false, "local", "local"},
		{"no worktree at hand", wsQueue, true, true, "localactivity", "local"},
		{"recorded before LocalGit", wsQueue, false, false, "activity", "activity"},
		{"off its host", "codeswarm", true, false, "activity", "activity"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := gitCalls(t, c.queue, c.localGit, c.deferLa)
			if got["StartSubtask"] != c.start || got["CommitSubtask"] != c.commit {
				t.Errorf("StartSubtask ran as %q, CommitSubtask as %q; want %q and %q", got["StartSubtask"], got["CommitSubtask"], c.start, c.commit)
			}
		})
	}
}

// A run starts its sub-agents with LocalGit only on a small base tree:
// on a large one (or one of unknown size, from an older worker) the
// worktree's start and commit stat too many files to hold a workflow task.
func TestRunRunsGitLocallyOnlyOnSmallTrees(t *testing.T) {
	for _, c := range []struct {
		files int
		want  bool
	}{{1, true}, {2500, true}, {2501, false}, {10001, false}, {0, false}} {
		w := newWorld(subtask("01-a", 0), subtask("02-b", 0))
		w.treeFiles = c.files
		runSwarm(t, newEnv(t, w), swarmInput())
		if len(w.children) != 2 {
			t.Fatalf("%d files: %d sub-agents started, want 2", c.files, len(w.children))
		}
		for _, in := range w.children {
			if in.LocalGit != c.want {
				t.Errorf("%d files: sub-agent %s LocalGit %v, want %v", c.files, in.Subtask.ID, in.LocalGit, c.want)
			}
		}
	}
}
