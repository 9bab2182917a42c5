package swarmworker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

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
type inflightRecord struct {
	WorkflowID   string `json:"workflow_id"`
	RunID        string `json:"run_id"`
	ActivityID   string `json:"activity_id"`
	ActivityType string `json:"activity_type"`
	Attempt      int32  `json:"attempt"`
	TaskToken    []byte `json:"task_token"`
}

// journal is this process's in-flight directory.
type journal struct {
	root string   // <state>/.inflight
	dir  string   // this process's directory in root
	lock *os.File // holds the flock that marks dir as alive
}

// openJournal claims a fresh directory under state/.inflight. The directory
// is created and locked under a temporary name and then renamed into place,
// so no other worker ever sees it unlocked.
func openJournal(state string) (*journal, error) {
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
	dir := filepath.Join(root, "w-"+strings.TrimPrefix(filepath.Base(tmp), ".new-"))
	if err := os.Rename(tmp, dir); err != nil {
		_ = lock.Close()
		_ = os.RemoveAll(tmp)
		return nil, fmt.Errorf("in-flight journal: %w", err)
	}
	return &journal{root: root, dir: dir, lock: lock}, nil
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
// A record that cannot be written only costs the fast recovery. Local
// activities have no task token: their workflow task re-runs them anyway.
func (j *journal) begin(info activity.Info) func() {
	if info.IsLocalActivity || len(info.TaskToken) == 0 {
		return func() {}
	}
	rec := inflightRecord{
		WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID, ActivityID: info.ActivityID,
		ActivityType: info.ActivityType.Name, Attempt: info.Attempt, TaskToken: info.TaskToken,
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return func() {}
	}
	path := filepath.Join(j.dir, recordName(info.TaskToken))
	if os.WriteFile(path, data, 0o600) != nil {
		return func() {}
	}
	return func() { _ = os.Remove(path) }
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
	for _, f := range files {
		data, err := os.ReadFile(f)
		var rec inflightRecord
		if err != nil || json.Unmarshal(data, &rec) != nil || len(rec.TaskToken) == 0 {
			continue // torn by the kill: the heartbeat timeout still covers it
		}
		cause := temporal.NewApplicationErrorWithOptions(
			"the worker running this activity was killed; a restarted worker failed it so that it retries at once",
			ErrTypeWorkerRestarted, temporal.ApplicationErrorOptions{NextRetryDelay: restartRetryDelay})
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = c.CompleteActivity(cctx, rec.TaskToken, nil, cause)
		cancel()
		fields := []zap.Field{zap.String("workflow_id", rec.WorkflowID), zap.String("activity_id", rec.ActivityID),
			zap.String("activity_type", rec.ActivityType), zap.Int32("attempt", rec.Attempt)}
		if err != nil {
			// NotFound: it completed, or was already retried; nothing to do.
			logger.Debug("in-flight activity of a dead worker not failed", append(fields, zap.Error(err))...)
			continue
		}
		logger.Info("failed an activity the previous worker was running, for an immediate retry", fields...)
	}
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
