package workflows_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"codeswarm/activities"
)

// The parent's changes a lean run takes as given instead of recording a
// version marker (and a TemporalChangeVersion upsert) for each.
var leanImplied = []string{"parent-can", "work-on-host", "host-watch", "agent-control", "budget-waits", "merge-batch"}

// versionsAsked answers every GetVersion with its newest version, except
// parent-lean when old is set (a run from before it), and records which
// changes were asked.
func versionsAsked(env *testsuite.TestWorkflowEnvironment, old bool) func() []string {
	var mu sync.Mutex
	var asked []string
	if old {
		env.OnGetVersion("parent-lean", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	}
	// The mock matches the versions exactly: every change's newest version
	// up to 4 (they start at DefaultVersion).
	for newest := workflow.Version(1); newest <= 4; newest++ {
		env.OnGetVersion(mock.Anything, workflow.DefaultVersion, newest).Return(func(id string, _, max workflow.Version) workflow.Version {
			mu.Lock()
			defer mu.Unlock()
			if !slices.Contains(asked, id) {
				asked = append(asked, id)
			}
			return max
		})
	}
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(asked)
	}
}

// A new run records one version marker for the parent's start where it
// recorded one per change; a run from before parent-lean (its history has
// no such marker) still asks each change, so it replays unchanged. Both
// runs batch the merges of ends that come in together and succeed.
func TestLeanParentAsksOneVersion(t *testing.T) {
	for _, old := range []bool{false, true} {
		env := newEnv(t, threeTogether())
		asked := versionsAsked(env, old)
		res := runSwarm(t, env, swarmInput())
		if !res.Success {
			t.Fatalf("old %v: run failed: %+v", old, res)
		}
		got := asked()
		if old {
			for _, id := range []string{"parent-can", "work-on-host", "host-watch", "agent-control", "merge-batch"} {
				if !slices.Contains(got, id) {
					t.Errorf("a run from before parent-lean did not ask %s (asked %v)", id, got)
				}
			}
			continue
		}
		if !slices.Contains(got, "parent-lean") {
			t.Errorf("a new run did not ask parent-lean (asked %v)", got)
		}
		for _, id := range leanImplied {
			if slices.Contains(got, id) {
				t.Errorf("a lean run asked %s (asked %v); parent-lean implies it", id, got)
			}
		}
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
// had no LLM rate limit in force; with one in force, and in a run from
// before parent-lean, the permit comes first.
func TestLeanPlannerSkipsPermitWhenUnpaced(t *testing.T) {
	for _, c := range []struct {
		name          string
		unpaced, old  bool
		permitForPlan bool
	}{
		{"unpaced", true, false, false},
		{"paced", false, false, true},
		{"unpaced, before parent-lean", true, true, true},
	} {
		w := twoStagePlan()
		w.unpaced = c.unpaced
		env := newEnv(t, w)
		versionsAsked(env, c.old)
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
// 05-e) and end while 01-a's merge runs, and a lean run books them in one
// wake with one search attribute upsert where a run from before
// parent-lean upserts for each.
func TestLeanParentPublishesOncePerWake(t *testing.T) {
	upserts := map[bool]int{}
	for _, old := range []bool{false, true} {
		w := threeTogether()
		w.commitFn = func(in activities.CommitSubtaskInput) (activities.CommitSubtaskResult, error) {
			if in.SubtaskID == "01-a" {
				return activities.CommitSubtaskResult{Commit: commitOf(in.Worktree), Changed: true, FilesChanged: []string{"a.go"}}, nil
			}
			return activities.CommitSubtaskResult{Commit: baseCommit}, nil
		}
		env := newEnv(t, w)
		versionsAsked(env, old)
		sa := recordUpserts(env)
		in := swarmInput()
		in.Visibility.SearchAttributes = true
		res := runSwarm(t, env, in)
		if got := subtaskResult(t, res, "01-a"); !got.Success || got.Merge != activities.MergeMerged {
			t.Fatalf("old %v: 01-a %+v, want merged", old, got)
		}
		upserts[old] = len(sa.upserts)
		if done, _ := sa.last().GetInt64(activities.SASubtasksDoneKey); done != 5 {
			t.Errorf("old %v: last upsert says %d subtasks done, want 5", old, done)
		}
		for _, r := range progress(t, env, 0).Rows[:4] {
			if r.Status != activities.StatusCompleted || r.EndedAt.IsZero() {
				t.Errorf("old %v: row %+v, want completed with its end", old, r)
			}
		}
	}
	// Old: done 2, 4 and 5 as the ends and the block come in; lean: 5.
	if upserts[false] != upserts[true]-2 {
		t.Errorf("lean run: %d upserts, run from before: %d; want 2 fewer", upserts[false], upserts[true])
	}
}
