package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
)

// ChildDoneSignal carries a ChildDone to a run: the server tells a parent
// that continued as new nothing about the children an earlier run started.
const ChildDoneSignal = "child_done"

// AwaitChildrenInput lists the sub-agents a run inherited from the run it
// continued: AwaitChildren reports each one's end to ParentID.
type AwaitChildrenInput struct {
	ParentID string   `json:"parent_id"`
	Children []string `json:"children"`
}

// ChildDone is how an inherited sub-agent ended: its result (the sub-agent's
// own JSON, decoded by the workflow that knows its type), or why it has none.
type ChildDone struct {
	ChildWorkflowID string          `json:"child_workflow_id"`
	Result          json.RawMessage `json:"result,omitempty"`
	Error           string          `json:"error,omitempty"`
	Cancelled       bool            `json:"cancelled,omitempty"`
}

// awaitHeartbeat is how often AwaitChildren heartbeats while it waits.
const awaitHeartbeat = 5 * time.Second

// AwaitChildren waits for every listed workflow to close, following its
// continue-as-new chain, and signals each one's end to the parent by
// workflow ID (so it reaches the parent's current run). Its heartbeat holds
// the children already reported, so a retry reports only the others; a
// parent that has closed ends the wait.
func (a *Activities) AwaitChildren(ctx context.Context, in AwaitChildrenInput) error {
	var signalled []string
	if activity.HasHeartbeatDetails(ctx) {
		_ = activity.GetHeartbeatDetails(ctx, &signalled) // none: report all again, the parent ignores repeats
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan ChildDone, len(in.Children))
	pending := 0
	for _, id := range in.Children {
		if slices.Contains(signalled, id) {
			continue
		}
		pending++
		go func() { results <- a.awaitChild(ctx, id) }()
	}
	tick := time.NewTicker(awaitHeartbeat)
	defer tick.Stop()
	for ; pending > 0; pending-- {
		var d ChildDone
		for wait := true; wait; {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-tick.C:
				activity.RecordHeartbeat(ctx, signalled)
			case d = <-results:
				wait = false
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		err := a.Temporal.SignalWorkflow(ctx, in.ParentID, "", ChildDoneSignal, d)
		var notFound *serviceerror.NotFound
		if errors.As(err, &notFound) {
			return nil // the run has ended: nobody is waiting
		}
		if err != nil {
			return fmt.Errorf("tell %s that %s ended: %w", in.ParentID, d.ChildWorkflowID, err)
		}
		signalled = append(signalled, d.ChildWorkflowID)
		activity.RecordHeartbeat(ctx, signalled)
	}
	return nil
}

// awaitChild waits for one workflow's last run to close.
func (a *Activities) awaitChild(ctx context.Context, id string) ChildDone {
	var raw json.RawMessage
	err := a.Temporal.GetWorkflow(ctx, id, "").Get(ctx, &raw)
	d := ChildDone{ChildWorkflowID: id}
	var canceled *temporal.CanceledError
	switch {
	case err == nil:
		d.Result = raw
	case errors.As(err, &canceled):
		d.Cancelled, d.Error = true, err.Error()
	default:
		// Terminated, timed out, failed or unknown: the run books it as
		// failed rather than wait for it.
		d.Error = err.Error()
	}
	return d
}
