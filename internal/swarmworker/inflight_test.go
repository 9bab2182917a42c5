package swarmworker

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
	"go.uber.org/zap"
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
	dead, err := openJournal(state)
	if err != nil {
		t.Fatal(err)
	}
	live, err := openJournal(state)
	if err != nil {
		t.Fatal(err)
	}
	dead.begin(info("running"))
	dead.begin(info("completed-meanwhile"))
	dead.begin(info("returned"))() // removed when it returned
	local := info("")
	local.IsLocalActivity = true
	dead.begin(local) // no token: not journaled
	if recs, _ := filepath.Glob(filepath.Join(dead.dir, "*.json")); len(recs) != 2 {
		t.Fatalf("records %v, want the two running activities with a task token", recs)
	}
	live.begin(info("live"))
	dead.die()

	c := &failingClient{done: map[string]bool{"completed-meanwhile": true}}
	next, err := openJournal(state)
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
	j, err := openJournal(state)
	if err != nil {
		t.Fatal(err)
	}
	j.begin(info("x"))()
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
