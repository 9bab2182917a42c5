package swarmworker

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// failingClient records the task tokens a journal fails; tokens in done are
// answered NotFound, as the server does for a completed or retried attempt.
type failingClient struct {
	client.Client
	failed [][]byte
	done   map[string]bool
}

func (c *failingClient) CompleteActivity(_ context.Context, token []byte, _ any, err error) error {
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != ErrTypeWorkerRestarted || appErr.NonRetryable() || appErr.NextRetryDelay() != restartRetryDelay {
		return errors.New("not a retryable worker-restarted failure")
	}
	if c.done[string(token)] {
		return serviceerror.NewNotFound("activity task not found")
	}
	c.failed = append(c.failed, token)
	return nil
}

func info(token string) activity.Info {
	return activity.Info{TaskToken: []byte(token), ActivityID: "a-" + token, Attempt: 1,
		WorkflowExecution: workflow.Execution{ID: "wf", RunID: "run"}, ActivityType: activity.Type{Name: "AgentStep"}}
}

// die simulates a SIGKILL: the lock goes with the process, records stay.
func (j *journal) die() { _ = j.lock.Close() }

func TestJournalRecoversOnlyDeadWorkers(t *testing.T) {
	state := t.TempDir()
	dead, err := openJournal(state, nil)
	if err != nil {
		t.Fatal(err)
	}
	live, err := openJournal(state, nil)
	if err != nil {
		t.Fatal(err)
	}
	dead.begin(info("running"))
	dead.begin(info("completed-meanwhile"))
	dead.begin(info("returned"))() // removed when it returned
	local := info("")
	local.IsLocalActivity = true
	dead.begin(local) // its workflow task is unknown: not journaled
	if recs, _ := filepath.Glob(filepath.Join(dead.dir, "*.json")); len(recs) != 2 {
		t.Fatalf("records %v, want the two running activities with a task token", recs)
	}
	live.begin(info("live"))
	dead.die()

	c := &failingClient{done: map[string]bool{"completed-meanwhile": true}}
	next, err := openJournal(state, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	next.recover(context.Background(), c, zap.NewNop())
	if got := names(c.failed); !slices.Equal(got, []string{"running"}) {
		t.Errorf("failed %v, want only the dead worker's running activity", got)
	}
	if _, err := os.Stat(dead.dir); !os.IsNotExist(err) {
		t.Errorf("dead worker's directory still there: %v", err)
	}
	if recs, _ := filepath.Glob(filepath.Join(live.dir, "*.json")); len(recs) != 1 {
		t.Errorf("live worker's records = %v, want its one record untouched", recs)
	}

	// Recovering again does nothing: the dead worker's records are gone.
	c.failed = nil
	next.recover(context.Background(), c, zap.NewNop())
	if len(c.failed) != 0 {
		t.Errorf("second recovery failed %v again", names(c.failed))
	}
	live.Close()
}

func TestJournalCleanCloseLeavesNothing(t *testing.T) {
	state := t.TempDir()
	wfTasks := NewTaskTracker()
	j, err := openJournal(state, wfTasks)
	if err != nil {
		t.Fatal(err)
	}
	j.begin(info("x"))()
	wfTasks.started("run", []byte("wft"))
	j.begin(localInfo("run", "1"))() // returned; its task's record stays until the task ends or the worker stops
	if recs, _ := filepath.Glob(filepath.Join(j.dir, "*.json")); len(recs) != 1 {
		t.Fatalf("records %v, want the task's", recs)
	}
	j.Close()
	if entries, _ := os.ReadDir(filepath.Join(state, InflightDir)); len(entries) != 0 {
		t.Errorf("left %v after a clean close", entries)
	}
}

func names(tokens [][]byte) []string {
	var out []string
	for _, t := range tokens {
		out = append(out, string(t))
	}
	slices.Sort(out)
	return out
}

// taskFailer is the workflow service of failingClient: it records the
// workflow tasks a journal fails.
type taskFailer struct {
	workflowservice.WorkflowServiceClient
	failed []*workflowservice.RespondWorkflowTaskFailedRequest
	reset  []string // runs sent back to their normal queue
}

func (f *taskFailer) ResetStickyTaskQueue(_ context.Context, req *workflowservice.ResetStickyTaskQueueRequest, _ ...grpc.CallOption) (*workflowservice.ResetStickyTaskQueueResponse, error) {
	f.reset = append(f.reset, req.GetNamespace()+"/"+req.GetExecution().GetRunId())
	return &workflowservice.ResetStickyTaskQueueResponse{}, nil
}

func (f *taskFailer) RespondWorkflowTaskFailed(_ context.Context, req *workflowservice.RespondWorkflowTaskFailedRequest, _ ...grpc.CallOption) (*workflowservice.RespondWorkflowTaskFailedResponse, error) {
	f.failed = append(f.failed, req)
	return &workflowservice.RespondWorkflowTaskFailedResponse{}, nil
}

type serviceClient struct {
	failingClient
	svc *taskFailer
}

func (c *serviceClient) WorkflowService() workflowservice.WorkflowServiceClient { return c.svc }

func localInfo(run, id string) activity.Info {
	return activity.Info{IsLocalActivity: true, ActivityID: id, Attempt: 1,
		WorkflowExecution: workflow.Execution{ID: "wf-" + run, RunID: run}, ActivityType: activity.Type{Name: "AgentStep"}}
}

// TestJournalFailsTheWorkflowTaskOfALocalActivity: a workflow task that
// runs local activities is journaled with its token once, however many of
// them it runs, follows the task when it heartbeats (a new token), stays
// between its activities and goes when the task ends; a restarted worker
// fails every task its predecessor was running local activities in.
func TestJournalFailsTheWorkflowTaskOfALocalActivity(t *testing.T) {
	state := t.TempDir()
	wfTasks := NewTaskTracker()
	dead, err := openJournal(state, wfTasks)
	if err != nil {
		t.Fatal(err)
	}
	dead.namespace = "ns"
	wfTasks.started("run-1", []byte("wft-1"))
	dead.begin(localInfo("run-1", "1"))
	dead.begin(localInfo("unknown-run", "1"))() // no task known: nothing to fail, nothing written
	wfTasks.finished([]byte("wft-1"))           // a heartbeat while 1 runs: the record stays
	wfTasks.started("run-1", []byte("wft-2"))   // and follows the new task
	dead.begin(localInfo("run-1", "2"))
	wfTasks.started("run-3", []byte("wft-3"))
	dead.begin(localInfo("run-3", "1"))() // returned, but its task goes on: its record stays
	wfTasks.started("run-4", []byte("wft-4"))
	dead.begin(localInfo("run-4", "1"))()
	wfTasks.finished([]byte("wft-4")) // run-4's task ended: its record is gone
	dead.begin(info("act"))           // an activity of run "run"
	dead.begin(info("act-2"))         // and another one of it
	if recs, _ := filepath.Glob(filepath.Join(dead.dir, "*.json")); len(recs) != 4 {
		t.Fatalf("records %v, want run-1's and run-3's tasks and two activities", recs)
	}
	for run, want := range map[string][]string{"run-1": {"AgentStep", "AgentStep"}, "run-3": nil} {
		data, err := os.ReadFile(dead.local[run].path)
		var rec inflightRecord
		if err != nil || json.Unmarshal(data, &rec) != nil {
			t.Fatalf("%s's record %q: %v", run, data, err)
		}
		if !slices.Equal(rec.Running, want) {
			t.Errorf("%s's record lists %v running, want %v", run, rec.Running, want)
		}
		if open := dead.local[run].f != nil; open != (want != nil) {
			t.Errorf("%s's record file open: %v; want it open only while local activities run", run, open)
		}
	}
	dead.die()

	c := &serviceClient{svc: &taskFailer{}}
	next, err := openJournal(state, NewTaskTracker())
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	next.recover(context.Background(), c, zap.NewNop())
	var tasks []string
	for _, req := range c.svc.failed {
		tasks = append(tasks, string(req.GetTaskToken()))
		if req.GetNamespace() != "ns" || req.GetFailure().GetApplicationFailureInfo().GetType() != ErrTypeWorkerRestarted {
			t.Errorf("failed %q in %q with %v, want it in ns, type %s", req.GetTaskToken(), req.GetNamespace(), req.GetFailure(), ErrTypeWorkerRestarted)
		}
	}
	slices.Sort(tasks)
	if !slices.Equal(tasks, []string{"wft-2", "wft-3"}) {
		t.Fatalf("failed workflow tasks %v, want run-1's latest task wft-2 and run-3's wft-3, once each", tasks)
	}
	if got := names(c.failed); !slices.Equal(got, []string{"act", "act-2"}) {
		t.Errorf("failed activities %v, want act and act-2 (local activities have no task of their own)", got)
	}
	// The activities' workflow would send its next task to the dead
	// worker's sticky queue: it goes back to its normal queue, once.
	if !slices.Equal(c.svc.reset, []string{"ns/run"}) {
		t.Errorf("sticky queues reset %v, want run's once, in ns", c.svc.reset)
	}
}

// TestTrackerForgetsFinishedTasks: a task whose completion the server took
// is forgotten, so a local activity of a later task is never journaled
// with it.
func TestTrackerForgetsFinishedTasks(t *testing.T) {
	tr := NewTaskTracker()
	tr.started("run", []byte("a"))
	tr.started("run", []byte("b"))
	tr.finished([]byte("a")) // a stale answer does not forget the newer task
	if got := string(tr.token("run")); got != "b" {
		t.Fatalf("token %q, want b", got)
	}
	tr.finished([]byte("b"))
	if got := tr.token("run"); got != nil {
		t.Errorf("token %q after the task finished, want none", got)
	}
}
