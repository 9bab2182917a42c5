package swarmworker

import (
	"context"
	"sync"

	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/grpc"
)

// A local activity runs inside its workflow task and has no task token of
// its own: if the worker dies during one, the server only notices when the
// workflow task times out (10 s by default). The worker's gRPC connection
// sees every workflow task it is handed, so it knows, per workflow run,
// the token of the task in progress; the in-flight journal records it with
// each local activity, and a restarted worker fails that workflow task by
// token (RespondWorkflowTaskFailed), so that the server hands it out again
// at once and the local activity runs again, as an activity's retry would.

// TaskTracker follows the workflow tasks a client's workers are handed: it
// maps a workflow run to the token of its workflow task in progress on this
// process, and tells the journals when it changes (a workflow task that
// heartbeats while a long local activity runs is completed and replaced by
// a new one). Its owner makes one per client, dials the client with
// ConnectionOptions(addr, tracker) and gives the same tracker to New.
type TaskTracker struct {
	mu       sync.Mutex
	byRun    map[string][]byte // run ID → token of its task in progress
	runOf    map[string]string // token → run ID, to forget a finished task
	watchers map[*journal]struct{}
}

// NewTaskTracker makes a tracker for one client.
func NewTaskTracker() *TaskTracker {
	return &TaskTracker{
		byRun:    map[string][]byte{},
		runOf:    map[string]string{},
		watchers: map[*journal]struct{}{},
	}
}

// token returns the token of run's workflow task in progress, or nil (also
// for a nil tracker).
func (t *TaskTracker) token(runID string) []byte {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.byRun[runID]
}

// started notes that this process was handed run's workflow task token.
func (t *TaskTracker) started(runID string, token []byte) {
	if runID == "" || len(token) == 0 {
		return
	}
	t.mu.Lock()
	if old, ok := t.byRun[runID]; ok {
		delete(t.runOf, string(old))
	}
	t.byRun[runID] = token
	t.runOf[string(token)] = runID
	watchers := t.watchersLocked()
	t.mu.Unlock()
	for _, j := range watchers {
		j.retoken(runID, token)
	}
}

// finished forgets the task of token once the server has taken its answer.
func (t *TaskTracker) finished(token []byte) {
	t.mu.Lock()
	run, ok := t.runOf[string(token)]
	if !ok {
		t.mu.Unlock()
		return
	}
	delete(t.runOf, string(token))
	if string(t.byRun[run]) == string(token) {
		delete(t.byRun, run)
	}
	watchers := t.watchersLocked()
	t.mu.Unlock()
	for _, j := range watchers {
		j.taskEnded(run, token)
	}
}

func (t *TaskTracker) watchersLocked() []*journal {
	watchers := make([]*journal, 0, len(t.watchers))
	for j := range t.watchers {
		watchers = append(watchers, j)
	}
	return watchers
}

func (t *TaskTracker) watch(j *journal) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.watchers[j] = struct{}{}
}

func (t *TaskTracker) unwatch(j *journal) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.watchers, j)
}

// intercept is a gRPC client interceptor that watches the workflow tasks
// the worker polls, and the ones it gets back when it completes a task
// (a local activity's heartbeat, or a task the server hands back at once).
func (t *TaskTracker) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	if err != nil {
		return err
	}
	switch r := reply.(type) {
	case *workflowservice.PollWorkflowTaskQueueResponse:
		t.started(r.GetWorkflowExecution().GetRunId(), r.GetTaskToken())
	case *workflowservice.RespondWorkflowTaskCompletedResponse:
		if q, ok := req.(*workflowservice.RespondWorkflowTaskCompletedRequest); ok {
			t.finished(q.GetTaskToken())
		}
		if next := r.GetWorkflowTask(); next != nil {
			t.started(next.GetWorkflowExecution().GetRunId(), next.GetTaskToken())
		}
	case *workflowservice.RespondWorkflowTaskFailedResponse:
		if q, ok := req.(*workflowservice.RespondWorkflowTaskFailedRequest); ok {
			t.finished(q.GetTaskToken())
		}
	}
	return nil
}
