package workflows_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"codeswarm/activities"
	"codeswarm/control"
)

// A run asks no workflow.GetVersion: no version marker and no
// TemporalChangeVersion upsert (v0.1.0 has no version gate). Ends that come
// in together are merged in one batch and the run succeeds.
func TestParentAsksNoVersion(t *testing.T) {
	env := newEnv(t, threeTogether())
	versions := newCommandRecorder()
	env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{versions}})
	res := runSwarm(t, env, swarmInput())
	if !res.Success {
		t.Fatalf("run failed: %+v", res)
	}
	if got := versions.changes(); len(got) != 0 {
		t.Errorf("the run asked versions of %v, want none", got)
	}
}

// activityOrder records the names of the activities started, in order.
func activityOrder(env *testsuite.TestWorkflowEnvironment) func() []string {
	var mu sync.Mutex
	var order []string
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		mu.Lock()
		defer mu.Unlock()
		order = append(order, info.ActivityType.Name)
	})
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(order)
	}
}

// The planner calls the model without a permit when PrepareRun's worker
// had no LLM rate limit in force; with one in force the permit comes first.
func TestPlannerSkipsPermitWithoutRateLimit(t *testing.T) {
	for _, c := range []struct {
		name          string
		noRateLimit   bool
		permitForPlan bool
	}{
		{"no rate limit", true, false},
		{"paced", false, true},
	} {
		w := twoStagePlan()
		w.noRateLimit = c.noRateLimit
		env := newEnv(t, w)
		order := activityOrder(env)
		if res := runSwarm(t, env, swarmInput()); !res.Success {
			t.Fatalf("%s: run failed: %+v", c.name, res)
		}
		got := order()
		plan := slices.Index(got, "Plan")
		permit := slices.Index(got, "LLMPermit")
		if plan < 0 {
			t.Fatalf("%s: no Plan in %v", c.name, got)
		}
		if before := permit >= 0 && permit < plan; before != c.permitForPlan {
			t.Errorf("%s: a permit before the plan: %v, want %v (activities %v)", c.name, before, c.permitForPlan, got)
		}
	}
}

// Ends that come in together without a merge are published once, not once
// per end: 02-b, 03-c and 04-d change nothing (so they fail, and block
// 05-e) and end while 01-a's merge runs, and the run books them in one
// wake with one search attribute upsert (where publishing after each end
// upserted twice more).
func TestParentPublishesOncePerPass(t *testing.T) {
	w := threeTogether()
	w.commitFn = func(in activities.CommitSubtaskInput) (activities.CommitSubtaskResult, error) {
		if in.SubtaskID == "01-a" {
			return activities.CommitSubtaskResult{Commit: commitOf(in.Worktree), Changed: true, FilesChanged: []string{"a.go"}}, nil
		}
		return activities.CommitSubtaskResult{Commit: baseCommit}, nil
	}
	env := newEnv(t, w)
	sa := recordUpserts(env)
	in := swarmInput()
	in.Visibility.SearchAttributes = true
	res := runSwarm(t, env, in)
	if got := subtaskResult(t, res, "01-a"); !got.Success || got.Merge != activities.MergeMerged {
		t.Fatalf("01-a %+v, want merged", got)
	}
	if done, _ := sa.last().GetInt64(control.SASubtasksDoneKey); done != 5 {
		t.Errorf("last upsert says %d subtasks done, want 5", done)
	}
	for _, r := range progress(t, env, 0).Rows[:4] {
		if r.Status != activities.StatusCompleted || r.EndedAt.IsZero() {
			t.Errorf("row %+v, want completed with its end", r)
		}
	}
	if got := len(sa.upserts); got != publishedUpserts {
		t.Errorf("%d upserts, want %d", got, publishedUpserts)
	}
}

// publishedUpserts is the number of search attribute upserts of
// TestParentPublishesOncePerPass's run.
const publishedUpserts = 5
