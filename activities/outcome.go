package activities

import (
	"cmp"
	"context"
	"errors"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

// RunFailedType is the failure type of a run that ended without success:
// the workflow fails with it (non-retryable, its message the reason), so
// Temporal's own views (ExecutionStatus, the Web UI, `temporal workflow
// list`) say Failed, and the failure's details carry the run's SwarmResult.
const RunFailedType = "CodeswarmRunFailed"

// RunFailure is the error a run that did not succeed ends its workflow with.
func RunFailure(res SwarmResult) error {
	return temporal.NewNonRetryableApplicationError(cmp.Or(res.Error, "the run did not succeed"), RunFailedType, nil, res)
}

// RunCancelled is the error a cancelled run ends its workflow with: the
// workflow closes as Canceled, its details carrying the SwarmResult.
func RunCancelled(res SwarmResult) error {
	return temporal.NewCanceledError(res)
}

// ResultOf returns the SwarmResult a run's closing error carries (a failed or
// cancelled run's), or false when err carries none (a terminated or timed
// out run, an older run that failed for another reason, a client error).
func ResultOf(err error) (SwarmResult, bool) {
	var res SwarmResult
	var app *temporal.ApplicationError
	if errors.As(err, &app) && app.Type() == RunFailedType && app.HasDetails() {
		if app.Details(&res) == nil && res.Unpack() == nil {
			return res, true
		}
	}
	var cancelled *temporal.CanceledError
	if errors.As(err, &cancelled) && cancelled.HasDetails() {
		if cancelled.Details(&res) == nil && res.Unpack() == nil {
			return res, true
		}
	}
	return SwarmResult{}, false
}

// RunResult waits for a run and returns its result: also when the run failed
// or was cancelled (err is nil then; the result says so), so every client
// reads a closed run the same way. err is set when no result exists (the
// run was terminated or timed out) or the client failed.
func RunResult(ctx context.Context, c client.Client, runID string) (SwarmResult, error) {
	var res SwarmResult
	err := c.GetWorkflow(ctx, runID, "").Get(ctx, &res)
	if err == nil {
		return res, res.Unpack()
	}
	if r, ok := ResultOf(err); ok {
		return r, nil
	}
	return res, err
}
