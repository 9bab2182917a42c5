package workflows_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"codeswarm/activities"
	"codeswarm/control"
	"codeswarm/workflows"
)

// threeTogether is a plan where 01-a ends first and its merge takes long
// enough for the three sub-agents that take the same turns (02-b, 03-c,
// 04-d) to end meanwhile: their ends are all in when the parent next
// looks. 05-e waits for two of them.
func threeTogether() *world {
	w := newWorld(subtask("01-a", 0), subtask("02-b", 0), subtask("03-c", 0), subtask("04-d", 0), subtask("05-e", 1, "02-b", "04-d"))
	w.scripts["01-a"] = toolsThenDone(0)
	w.fallback = toolsThenDone(2)
	w.stepDelay = time.Second
	w.mergeDelay = 10 * time.Second
	return w
}

// kinds lists the run's events of the given kinds as "kind:subtask".
func kinds(evs []control.Event, of ...string) []string {
	var out []string
	for _, e := range evs {
		if slices.Contains(of, e.Kind) {
			out = append(out, e.Kind+":"+e.Subtask)
		}
	}
	return out
}

func TestSwarmMergesEndsTogetherInOneActivity(t *testing.T) {
	w := threeTogether()
	env := newEnv(t, w)
	sa := recordUpserts(env)
	var mu sync.Mutex
	var batchQueues []string
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		mu.Lock()
		defer mu.Unlock()
		if info.ActivityType.Name == "MergeSubtasks" {
			batchQueues = append(batchQueues, info.TaskQueue)
		}
	})
	in := swarmInput()
	in.Visibility = workflows.Visibility{SearchAttributes: true}
	res := runSwarm(t, env, in)
	if !res.Success {
		t.Fatalf("run failed: %s", res.Error)
	}
	if len(w.batches) != 1 || len(w.batches[0].Items) != 3 {
		t.Fatalf("batches = %+v; want one of three", w.batches)
	}
	if !slices.Equal(batchQueues, []string{wsQueue}) {
		t.Errorf("MergeSubtasks ran on %v; want the run's host, %s", batchQueues, wsQueue)
	}
	var order []string
	for _, it := range w.batches[0].Items {
		order = append(order, it.SubtaskID)
	}
	if !slices.Equal(order, []string{"02-b", "03-c", "04-d"}) {
		t.Errorf("batch order = %v; want plan order", order)
	}
	if b := w.batches[0]; b.RunID != testRunID || b.IntegrationBranch == "" || b.RepoPath == "" {
		t.Errorf("batch input = %+v", b)
	}
	// 01-a's merge alone, the batch's three, then 05-e's alone.
	if got := w.count("merge:"); got != 5 || len(w.merges) != 5 {
		t.Errorf("%d merges; want 5", got)
	}
	// Each merged onto the head the one before left: the fake head counts merges.
	for i, id := range []string{"01-a", "02-b", "03-c", "04-d", "05-e"} {
		r := subtaskResult(t, res, id)
		if want := fmt.Sprintf("merge-%d-%s", i+1, id); r.Merge != activities.MergeMerged || r.MergeCommit != want {
			t.Errorf("%s: merge %q at %q; want merged at %q", id, r.Merge, r.MergeCommit, want)
		}
	}
	evs := runEvents(t, env)
	wantEvents := []string{
		"finished:01-a", "merged:01-a",
		"finished:02-b", "finished:03-c", "finished:04-d",
		"merged:02-b", "merged:03-c", "merged:04-d",
		"finished:05-e", "merged:05-e",
	}
	if got := kinds(evs, "finished", "merged"); !slices.Equal(got, wantEvents) {
		t.Errorf("events = %v\nwant %v", got, wantEvents)
	}
	// One upsert for the batch: none saw only some of its three done.
	var done []int64
	for _, u := range sa.upserts {
		n, _ := u.GetInt64(control.SASubtasksDoneKey)
		done = append(done, n)
	}
	if slices.Contains(done, 2) || slices.Contains(done, 3) || !slices.Contains(done, 4) {
		t.Errorf("subtasks done per upsert = %v; want the batch's three in one upsert", done)
	}
}

// runEvents are the run's events, from its progress query.
func runEvents(t *testing.T, env *testsuite.TestWorkflowEnvironment) []control.Event {
	t.Helper()
	return progress(t, env, 0).Events
}

// eventMessages are the messages of one subtask's events of one kind.
func eventMessages(evs []control.Event, kind, id string) []string {
	var out []string
	for _, e := range evs {
		if e.Kind == kind && e.Subtask == id {
			out = append(out, e.Message)
		}
	}
	return out
}

func TestSwarmBatchConflictInTheMiddle(t *testing.T) {
	for _, resolve := range []bool{true, false} {
		t.Run(map[bool]string{true: "re-run", false: "reported"}[resolve], func(t *testing.T) {
			w := threeTogether()
			firstC := commitOf("/wt/03-c-a1")
			w.mergeFn = func(in activities.MergeSubtaskInput) (activities.MergeSubtaskResult, bool) {
				if in.Commit == firstC {
					return activities.MergeSubtaskResult{Status: activities.MergeConflict, Conflicts: []string{"shared.go"}}, true
				}
				return activities.MergeSubtaskResult{}, false
			}
			in := swarmInput()
			in.ResolveConflicts = resolve
			env := newEnv(t, w)
			res := runSwarm(t, env, in)
			evs := runEvents(t, env)

			if len(w.batches) == 0 || len(w.batches[0].Items) != 3 {
				t.Fatalf("batches = %+v; want the first of three", w.batches)
			}
			for _, id := range []string{"02-b", "04-d"} {
				if r := subtaskResult(t, res, id); r.Merge != activities.MergeMerged || !r.Success {
					t.Errorf("%s: merge %q success %v; want merged despite 03-c's conflict", id, r.Merge, r.Success)
				}
			}
			c := subtaskResult(t, res, "03-c")
			if !slices.Equal(c.Conflicts, []string{"shared.go"}) {
				t.Errorf("03-c conflicts = %v", c.Conflicts)
			}
			if resolve {
				if !c.Success || c.Merge != activities.MergeMerged || c.Attempts != 2 || !res.Success {
					t.Errorf("03-c: success %v merge %q attempts %d; want merged by its re-run", c.Success, c.Merge, c.Attempts)
				}
				// The re-run starts from the head the batch left, 04-d included.
				msgs := eventMessages(evs, "started", "03-c")
				if len(msgs) != 2 || !strings.Contains(msgs[1], "restarted to resolve a merge conflict") ||
					!strings.Contains(msgs[1], activities.ShortSHA(subtaskResult(t, res, "04-d").MergeCommit)) {
					t.Errorf("03-c started events = %q", msgs)
				}
			} else {
				if c.Success || c.Merge != activities.MergeConflict || c.Attempts != 1 || !strings.Contains(c.Error, "merge conflict in shared.go") {
					t.Errorf("03-c: success %v merge %q attempts %d error %q; want the conflict reported", c.Success, c.Merge, c.Attempts, c.Error)
				}
				if res.Success {
					t.Error("run succeeded with an unresolved conflict")
				}
			}
			want := []string{"merged:01-a", "merged:02-b", "merged:04-d", "conflict:03-c"}
			if got := kinds(evs, "merged", "conflict"); len(got) < 4 || !slices.Equal(got[:4], want) {
				t.Errorf("events = %v; want to begin %v", got, want)
			}
		})
	}
}

func TestSwarmVerifyEachMergesOneAtATime(t *testing.T) {
	w := threeTogether()
	in := swarmInput()
	in.VerifyCommand, in.VerifyMode = "go test ./...", "each"
	env := newEnv(t, w)
	res := runSwarm(t, env, in)
	if !res.Success {
		t.Fatalf("run failed: %s", res.Error)
	}
	if len(w.batches) != 0 {
		t.Errorf("batches = %+v; want none when every merge is verified", w.batches)
	}
	if len(w.merges) != 5 || len(w.verifies) != 5 {
		t.Errorf("%d merges, %d verifies; want 5 of each", len(w.merges), len(w.verifies))
	}
	// Each merge is followed by its own verify before the next merge.
	got := kinds(runEvents(t, env), "merged", "verify")
	if len(got) != 10 {
		t.Fatalf("events = %v; want five merges each followed by its verify", got)
	}
	for i := 0; i < len(got); i += 2 {
		id := strings.TrimPrefix(got[i], "merged:")
		if got[i] == id || got[i+1] != "verify:"+id {
			t.Errorf("events = %v; want five merges each followed by its verify", got)
			break
		}
	}
}

// TestContinuedRunMergesInheritedEndsTogether: in a run continued as new,
// the ends of sub-agents an earlier run started come as signals; those in
// together (here, while e's merge runs) are merged in one activity, in the
// order they were reported.
func TestContinuedRunMergesInheritedEndsTogether(t *testing.T) {
	w := newWorld()
	w.mergeDelay = 10 * time.Second
	env := newEnv(t, w)
	in := swarmInput()
	in.Carry = inheritedCarry([]string{"b", "c", "e"})
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(activities.ChildDoneSignal, childDone(t, "e", agentResult("e")))
	}, time.Minute)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(activities.ChildDoneSignal, childDone(t, "c", agentResult("c")))
		env.SignalWorkflow(activities.ChildDoneSignal, childDone(t, "b", agentResult("b")))
		env.SignalWorkflow(activities.ChildDoneSignal, childDone(t, "c", agentResult("c"))) // a repeat
	}, time.Minute+time.Second)
	res := runSwarm(t, env, in)
	if !res.Success {
		t.Fatalf("run failed: %s", res.Error)
	}
	if len(w.batches) != 1 || len(w.merges) != 3 {
		t.Fatalf("batches %+v, %d merges; want e alone, then one batch of two", w.batches, len(w.merges))
	}
	var order []string
	for _, it := range w.batches[0].Items {
		order = append(order, it.SubtaskID)
	}
	if !slices.Equal(order, []string{"c", "b"}) || w.batches[0].Head != "merge-1-e" {
		t.Errorf("batch order %v from %q; want c b, as reported, from e's merge", order, w.batches[0].Head)
	}
	for _, id := range []string{"b", "c", "e"} {
		if r := subtaskResult(t, res, id); r.Merge != activities.MergeMerged || r.Steps != 3 {
			t.Errorf("%s: merge %q steps %d; want merged once with 3 steps", id, r.Merge, r.Steps)
		}
	}
}

// TestSwarmBatchMergeFails: a batch that fails fails the merge of each of
// its subtasks, as a single merge's failure does; their work is kept.
func TestSwarmBatchMergeFails(t *testing.T) {
	w := threeTogether()
	w.mergeFn = func(in activities.MergeSubtaskInput) (activities.MergeSubtaskResult, bool) {
		if in.SubtaskID == "01-a" {
			// 01-a merges alone; everything after fails (mergeFn runs under w.mu).
			w.mergeErr = temporal.NewNonRetryableApplicationError("integration branch moved", "Git", nil)
		}
		return activities.MergeSubtaskResult{}, false
	}
	res := runSwarm(t, newEnv(t, w), swarmInput())
	if len(w.batches) != 1 || len(w.batches[0].Items) != 3 {
		t.Fatalf("batches = %+v; want one of three", w.batches)
	}
	if a := subtaskResult(t, res, "01-a"); a.Merge != activities.MergeMerged {
		t.Errorf("01-a merge = %q; want merged", a.Merge)
	}
	for _, id := range []string{"02-b", "03-c", "04-d"} {
		r := subtaskResult(t, res, id)
		if r.Success || r.Merge != activities.MergeSkipped || !strings.Contains(r.Error, "merge failed") || r.Commit == "" {
			t.Errorf("%s = success %v merge %q error %q commit %q; want a failed merge with its commit kept", id, r.Success, r.Merge, r.Error, r.Commit)
		}
	}
	if e := subtaskResult(t, res, "05-e"); e.Status != activities.StatusBlocked {
		t.Errorf("05-e status = %q; want blocked", e.Status)
	}
}
