package activities

import (
	"context"
	"errors"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
)

// RunClosedType is the failure of a sub-agent's model call refused because
// its run has closed (terminated, or timed out): nobody waits for the
// sub-agent, so it stops before paying for another call (its work is
// committed, as for a cancel). The sub-agents are started with
// ParentClosePolicy ABANDON, so that the run's continue-as-new does not end
// them; this check is what ends them when the run itself ends without
// cancelling them.
const RunClosedType = "CodeswarmRunClosed"

// runCheckEvery is how long a run seen open is taken to be open: a model
// call costs one DescribeWorkflowExecution per run and worker at most this
// often, and a terminated run's sub-agents stop within it.
const runCheckEvery = time.Second

// openRuns remembers when each run was last seen open.
var openRuns struct {
	sync.Mutex
	seen map[string]time.Time
}

// stopIfRunClosed fails a model call of a sub-agent whose run runID has
// closed. The run's own calls (the planner's) are never checked; a run that
// cannot be described for another reason (the server busy) counts as open.
func (a *Activities) stopIfRunClosed(ctx context.Context, runID string) error {
	if a.Temporal == nil || runID == "" || !activity.IsActivity(ctx) || activity.GetInfo(ctx).WorkflowExecution.ID == runID {
		return nil
	}
	openRuns.Lock()
	last, ok := openRuns.seen[runID]
	openRuns.Unlock()
	if ok && time.Since(last) < runCheckEvery {
		return nil
	}
	d, err := a.Temporal.DescribeWorkflowExecution(ctx, runID, "")
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		return runClosed(runID, "no longer exists")
	case err != nil:
		return nil
	}
	switch st := d.GetWorkflowExecutionInfo().GetStatus(); st {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW:
		openRuns.Lock()
		if openRuns.seen == nil {
			openRuns.seen = map[string]time.Time{}
		}
		openRuns.seen[runID] = time.Now()
		openRuns.Unlock()
		return nil
	default:
		return runClosed(runID, "has closed ("+statusWord(st)+")")
	}
}

func runClosed(runID, how string) error {
	return temporal.NewNonRetryableApplicationError("stopped: its run "+runID+" "+how+", so nobody waits for this sub-agent", RunClosedType, nil)
}

// statusWord is a workflow status as one lower-case word ("terminated").
func statusWord(st enumspb.WorkflowExecutionStatus) string {
	switch st {
	case enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED:
		return "terminated"
	case enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:
		return "timed out"
	case enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED:
		return "cancelled"
	case enumspb.WORKFLOW_EXECUTION_STATUS_FAILED:
		return "failed"
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		return "completed"
	}
	return st.String()
}
