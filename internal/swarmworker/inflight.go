package swarmworker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"
)

// A SIGKILLed worker's activities stay "started" on the server until their
// heartbeat timeout (20 s) expires. The journal lets the next incarnation
// fail them at once: every activity writes a small record (its task token)
// when it starts and removes it when it returns, and at start-up a worker
// fails the records a dead process left behind, so the server retries them
// right away. A host that never comes back is still caught by the timeout.
//
// Each process claims its own directory under <state>/.inflight and holds
// an flock on it for its whole life: a worker only recovers directories
// whose lock it can take, so two live workers sharing a state directory never
// fail each other's activities. Records are keyed by task token, which
// names one attempt: failing an attempt that already completed, or that the
// server already retried elsewhere, is answered NotFound and changes nothing.

// InflightDir is where the in-flight journal lives under a state directory.
const InflightDir = ".inflight"

// ErrTypeWorkerRestarted is the type of the retryable error a restarted
// worker fails its dead predecessor's activities with.
const ErrTypeWorkerRestarted = "WorkerRestarted"

// restartRetryDelay overrides the retry policy's first interval (2 s for
// LLM calls): the failure is known to be the worker's, not the activity's.
const restartRetryDelay = 100 * time.Millisecond

// inflightRecord is what the journal keeps of one running activity attempt.
// For a local activity TaskToken is the token of the workflow task it runs
// in (see TaskTracker), and Local is set: recovery fails that workflow task.
type inflightRecord struct {
	WorkflowID   string `json:"workflow_id"`
	RunID        string `json:"run_id"`
	ActivityID   string `json:"activity_id"`
	ActivityType string `json:"activity_type"`
	Attempt      int32  `json:"attempt"`
	TaskToken    []byte `json:"task_token"`
	Local        bool   `json:"local,omitempty"`
	// Running are the types of the local activities the workflow task
	// runs now (Local only).
	Running   []string `json:"running,omitempty"`
	Namespace string   `json:"namespace,omitempty"`
}

// journal is this process's in-flight directory.
type journal struct {
	root string   // <state>/.inflight
	dir  string   // this process's directory in root
	lock *os.File // holds the flock that marks dir as alive
	// namespace is the workers' Temporal namespace (a workflow task is
	// failed in it).
	namespace string
	// tracker follows the workflow tasks of the workers' client (nil:
	// local activities are journaled without their task's token).
	tracker *TaskTracker

	mu sync.Mutex
	// local are the records of the workflow tasks running local
	// activities, by workflow run: they follow their task's token.
	local map[string]*localTask // run ID → its record
}

// localTask is the record of a workflow run's task that runs local
// activities. One record stands for all of them: recovery fails the task,
// which runs them all again. It is written when the task's first local
// activity starts and removed when the task ends (the server took its
// answer) with none running, not when each activity returns: a
// sub-agent's steps are local activities back to back in one task, and a
// file created and removed per step cost more CPU (ext4's inode allocation
// after many deletes) than the step's own tool call.
type localTask struct {
	path string
	f    *os.File // open for writes in place while local activities run
	size int      // bytes written so far
	rec  inflightRecord
}

// write brings the record's file up to rec in place: the JSON, padded with
// spaces to the longest version written (a decoder skips them). One write
// of a few hundred bytes is never torn by a kill; a machine crash may tear
// it, and then recovery skips it and the task's timeout applies.
func (lt *localTask) write() error {
	data, err := json.Marshal(&lt.rec)
	if err != nil {
		return err
	}
	if pad := lt.size - len(data); pad > 0 {
		data = append(data, bytes.Repeat([]byte{' '}, pad)...)
	}
	if lt.f == nil {
		if lt.f, err = os.OpenFile(lt.path, os.O_WRONLY, 0); err != nil {
			return err
		}
	}
	if _, err := lt.f.WriteAt(data, 0); err != nil {
		return err
	}
	lt.size = len(data)
	if len(lt.rec.Running) == 0 {
		// None runs: a task that never ends here (it timed out and its
		// run went on elsewhere) keeps its small file until Close, but no
		// descriptor.
		err = lt.f.Close()
		lt.f = nil
	}
	return err
}

// remove deletes the record.
func (lt *localTask) remove() {
	if lt.f != nil {
		_ = lt.f.Close()
		lt.f = nil
	}
	_ = os.Remove(lt.path)
}

// openJournal claims a fresh directory under state/.inflight. The directory
// is created and locked under a temporary name and then renamed into place,
// so no other worker ever sees it unlocked.
func openJournal(state string, tracker *TaskTracker) (*journal, error) {
	root := filepath.Join(state, InflightDir)
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("in-flight journal: %w", err)
	}
	tmp, err := os.MkdirTemp(root, ".new-")
	if err != nil {
		return nil, fmt.Errorf("in-flight journal: %w", err)
	}
	lock, err := lockFile(filepath.Join(tmp, "lock"), os.O_CREATE|os.O_RDWR)
	if err != nil {
		_ = os.RemoveAll(tmp)
		return nil, fmt.Errorf("in-flight journal: %w", err)
	}
	// The pid in the name says whose it is to someone looking (the crash
	// tests count a worker's model calls in flight from it).
	dir := filepath.Join(root, fmt.Sprintf("w-%d-%s", os.Getpid(), strings.TrimPrefix(filepath.Base(tmp), ".new-")))
	if err := os.Rename(tmp, dir); err != nil {
		_ = lock.Close()
		_ = os.RemoveAll(tmp)
		return nil, fmt.Errorf("in-flight journal: %w", err)
	}
	j := &journal{root: root, dir: dir, lock: lock, local: map[string]*localTask{}}
	j.tracker = tracker
	tracker.watch(j)
	return j, nil
}

// lockFile opens path and takes an exclusive flock without waiting.
func lockFile(path string, flag int) (*os.File, error) {
	f, err := os.OpenFile(path, flag, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}

// Close releases the journal. Its directory goes only when no record is
// left; otherwise, unlocked, it is the next worker's to recover.
func (j *journal) Close() {
	j.tracker.unwatch(j)
	j.mu.Lock()
	for run, lt := range j.local {
		if len(lt.rec.Running) == 0 {
			lt.remove()
			delete(j.local, run)
		}
	}
	j.mu.Unlock()
	if recs, _ := filepath.Glob(filepath.Join(j.dir, "*.json")); len(recs) == 0 {
		_ = os.RemoveAll(j.dir)
	}
	_ = j.lock.Close()
}

func recordName(token []byte) string {
	sum := sha256.Sum256(token)
	return hex.EncodeToString(sum[:12]) + ".json"
}

// begin records a started activity; the returned func removes the record.
// A record that cannot be written only costs the fast recovery.
func (j *journal) begin(info activity.Info) func() {
	if info.IsLocalActivity {
		return j.beginLocal(info)
	}
	if len(info.TaskToken) == 0 {
		return func() {}
	}
	rec := inflightRecord{
		WorkflowID:   info.WorkflowExecution.ID,
		RunID:        info.WorkflowExecution.RunID,
		ActivityID:   info.ActivityID,
		ActivityType: info.ActivityType.Name,
		Attempt:      info.Attempt,
		TaskToken:    info.TaskToken,
		Namespace:    j.namespace,
	}
	path := filepath.Join(j.dir, recordName(info.TaskToken))
	if writeRecord(path, &rec) != nil {
		return func() {}
	}
	return func() { _ = os.Remove(path) }
}

// beginLocal records a local activity in the record of the workflow task
// it runs in, written by the task's first one. Without a known token (a
// client dialed without ConnectionOptions) there is nothing to fail, and
// the workflow task's timeout recovers it.
func (j *journal) beginLocal(info activity.Info) func() {
	run := info.WorkflowExecution.RunID
	j.mu.Lock()
	defer j.mu.Unlock()
	token := j.tracker.token(run)
	if len(token) == 0 {
		return func() {}
	}
	lt := j.local[run]
	if lt == nil {
		path := filepath.Join(j.dir, "l-"+recordName([]byte(run)))
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return func() {}
		}
		lt = &localTask{path: path, f: f, rec: inflightRecord{
			WorkflowID: info.WorkflowExecution.ID,
			RunID:      run,
			Local:      true,
			Namespace:  j.namespace,
		}}
		j.local[run] = lt
	}
	// The latest local activity names the record; a task the tracker
	// never saw end (it timed out) gives way to the one in progress.
	lt.rec.ActivityID, lt.rec.ActivityType, lt.rec.Attempt = info.ActivityID, info.ActivityType.Name, info.Attempt
	lt.rec.TaskToken = token
	lt.rec.Running = append(lt.rec.Running, info.ActivityType.Name)
	if lt.write() != nil {
		lt.remove()
		delete(j.local, run)
		return func() {}
	}
	return func() {
		j.mu.Lock()
		defer j.mu.Unlock()
		if i := slices.Index(lt.rec.Running, info.ActivityType.Name); i >= 0 {
			lt.rec.Running = slices.Delete(lt.rec.Running, i, i+1)
		}
		if j.local[run] == lt {
			_ = lt.write()
		}
	}
}

// retoken moves run's record to its new workflow task.
func (j *journal) retoken(run string, token []byte) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if lt := j.local[run]; lt != nil {
		lt.rec.TaskToken = token
		_ = lt.write()
	}
}

// taskEnded removes run's record once the server took the answer of its
// task token, unless a local activity still runs (a heartbeat: the next
// task of the run follows at once, and retoken moves the record to it).
func (j *journal) taskEnded(run string, token []byte) {
	j.mu.Lock()
	defer j.mu.Unlock()
	lt := j.local[run]
	if lt == nil || len(lt.rec.Running) > 0 || !bytes.Equal(lt.rec.TaskToken, token) {
		return
	}
	lt.remove()
	delete(j.local, run)
}

// writeRecord writes a new record rec to path, in place: a torn one is
// skipped at recovery, and the timeouts still apply. Records are not
// synced, for the same reason.
func writeRecord(path string, rec *inflightRecord) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

// recover fails the activities of every dead process's directory and removes
// it. Directories still locked belong to live workers and are left alone.
func (j *journal) recover(ctx context.Context, c client.Client, logger *zap.Logger) {
	entries, err := os.ReadDir(j.root)
	if err != nil {
		logger.Warn("read in-flight journal", zap.Error(err))
		return
	}
	for _, e := range entries {
		dir := filepath.Join(j.root, e.Name())
		if !e.IsDir() || dir == j.dir || !strings.HasPrefix(e.Name(), "w-") {
			continue
		}
		lock, err := lockFile(filepath.Join(dir, "lock"), os.O_RDWR)
		if errors.Is(err, os.ErrNotExist) {
			_ = os.RemoveAll(dir) // a cleanly closed journal's leftovers
			continue
		}
		if err != nil {
			continue // a live worker's
		}
		j.failRecords(ctx, c, dir, logger)
		_ = os.RemoveAll(dir)
		_ = lock.Close()
	}
}

func (j *journal) failRecords(ctx context.Context, c client.Client, dir string, logger *zap.Logger) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	failedTasks, unstuck := map[string]bool{}, map[string]inflightRecord{}
	// The retries come first: the sticky queues only matter for the
	// workflow tasks after them.
	defer func() {
		for _, rec := range unstuck {
			resetSticky(ctx, c, rec, logger)
		}
	}()
	for _, f := range files {
		data, err := os.ReadFile(f)
		var rec inflightRecord
		if err != nil || json.Unmarshal(data, &rec) != nil || len(rec.TaskToken) == 0 {
			continue // torn by the kill: the timeouts still cover it
		}
		fields := []zap.Field{zap.String("workflow_id", rec.WorkflowID), zap.String("activity_id", rec.ActivityID),
			zap.String("activity_type", rec.ActivityType), zap.Int32("attempt", rec.Attempt)}
		if rec.Local {
			if failedTasks[string(rec.TaskToken)] {
				continue // another local activity of the same workflow task
			}
			failedTasks[string(rec.TaskToken)] = true
			if err := failWorkflowTask(ctx, c, rec); err != nil {
				// NotFound: the task completed, or already timed out.
				logger.Debug("workflow task of a dead worker not failed", append(fields, zap.Error(err))...)
				continue
			}
			logger.Info("failed the workflow task the previous worker was running a local activity in, so that it runs again at once", fields...)
			continue
		}
		cause := temporal.NewApplicationErrorWithOptions(
			"the worker running this activity was killed; a restarted worker failed it so that it retries at once",
			ErrTypeWorkerRestarted, temporal.ApplicationErrorOptions{NextRetryDelay: restartRetryDelay})
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = c.CompleteActivity(cctx, rec.TaskToken, nil, cause)
		cancel()
		if _, ok := unstuck[rec.RunID]; !ok {
			unstuck[rec.RunID] = rec
		}
		if err != nil {
			// NotFound: it completed, or was already retried; nothing to do.
			logger.Debug("in-flight activity of a dead worker not failed", append(fields, zap.Error(err))...)
			continue
		}
		logger.Info("failed an activity the previous worker was running, for an immediate retry", fields...)
	}
}

// resetSticky sends the workflow of an activity the dead worker ran back to
// its normal queue: its next workflow task (the retried activity's end)
// would otherwise go to the dead worker's sticky queue and wait there for
// the SDK's 5 s schedule-to-start timeout. The worker that has it cached
// (this one died; another live one only replays it once) loses nothing.
func resetSticky(ctx context.Context, c client.Client, rec inflightRecord, logger *zap.Logger) {
	if rec.Namespace == "" {
		return // a record written before the namespace was: the timeout applies
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := c.WorkflowService().ResetStickyTaskQueue(cctx, &workflowservice.ResetStickyTaskQueueRequest{
		Namespace: rec.Namespace,
		Execution: &commonpb.WorkflowExecution{WorkflowId: rec.WorkflowID, RunId: rec.RunID},
	})
	if err != nil {
		logger.Debug("sticky queue of a dead worker's workflow not reset", zap.String("workflow_id", rec.WorkflowID), zap.Error(err))
	}
}

// failWorkflowTask fails the workflow task a killed worker was running a
// local activity in. The server then schedules the task again on the
// workflow's normal queue (a failure also ends its stickiness to the dead
// worker), and the worker that takes it replays the history and runs the
// local activity again.
func failWorkflowTask(ctx context.Context, c client.Client, rec inflightRecord) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := c.WorkflowService().RespondWorkflowTaskFailed(cctx, &workflowservice.RespondWorkflowTaskFailedRequest{
		TaskToken: rec.TaskToken,
		Cause:     enumspb.WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE,
		Failure: &failurepb.Failure{
			Message: "the worker running this workflow task (local activity " + rec.ActivityType + ") was killed; a restarted worker failed the task so that it runs again at once",
			FailureInfo: &failurepb.Failure_ApplicationFailureInfo{ApplicationFailureInfo: &failurepb.ApplicationFailureInfo{
				Type:         ErrTypeWorkerRestarted,
				NonRetryable: false,
			}},
		},
		Identity:  "codeswarm-worker-recovery",
		Namespace: rec.Namespace,
	})
	return err
}

// journalInterceptor records every activity of the worker in the journal.
type journalInterceptor struct {
	interceptor.WorkerInterceptorBase
	j *journal
}

// InterceptActivity wraps an activity's inbound calls.
func (w *journalInterceptor) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	i := &journalActivity{j: w.j}
	i.Next = next
	return i
}

type journalActivity struct {
	interceptor.ActivityInboundInterceptorBase
	j *journal
}

// ExecuteActivity journals the attempt for as long as it runs.
func (a *journalActivity) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	done := a.j.begin(activity.GetInfo(ctx))
	defer done()
	return a.Next.ExecuteActivity(ctx, in)
}
