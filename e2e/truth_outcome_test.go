package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"

	"codeswarm/activities"
	"codeswarm/llm/scripted"
)

// TestFailedRunIsAFailedWorkflow: a run with a failed subtask closes as a
// Failed workflow (what the Web UI, `temporal workflow list` and an
// ExecutionStatus filter show), its failure non-retryable with the run's
// reason as message, while `codeswarm result` still prints the whole result.
func TestFailedRunIsAFailedWorkflow(t *testing.T) {
	names := []string{"too-long", "fine-a"}
	h := newHarness(t, scripted.Script{
		Planner: []scripted.Reply{{Content: faultPlan(names...)}},
		Agents: []scripted.Agent{
			faultAgent("too-long", withFaults(writeTurns("too-long"), 1, scripted.Fault{ContextLength: true})),
			faultAgent("fine-a", writeTurns("fine-a")),
		},
	})
	fastSwarmEnv(t)
	repo := faultRepo(t)
	code, res := h.runJSON("run", "--repo", repo, "--task", "a run that fails")
	if code != 1 || res.Success || res.Error == "" {
		t.Fatalf("exit %d, success %v, error %q; want a failed run with a reason", code, res.Success, res.Error)
	}
	ctx := context.Background()

	t.Run("Temporal says Failed, with the reason", func(t *testing.T) {
		d, err := h.client.DescribeWorkflowExecution(ctx, res.RunID, "")
		if err != nil {
			t.Fatal(err)
		}
		if st := d.GetWorkflowExecutionInfo().GetStatus(); st != enumspb.WORKFLOW_EXECUTION_STATUS_FAILED {
			t.Fatalf("execution status %s, want FAILED", st)
		}
		hist := history(t, h.client, res.RunID, "")
		last := hist.Events[len(hist.Events)-1].GetWorkflowExecutionFailedEventAttributes()
		if last == nil {
			t.Fatalf("last event is %s, want WorkflowExecutionFailed", hist.Events[len(hist.Events)-1].GetEventType())
		}
		f := last.GetFailure()
		app := f.GetApplicationFailureInfo()
		if f.GetMessage() != res.Error || app.GetType() != activities.RunFailedType || !app.GetNonRetryable() {
			t.Errorf("failure %q type %q non-retryable %v; want %q, %s, non-retryable", f.GetMessage(), app.GetType(), app.GetNonRetryable(), res.Error, activities.RunFailedType)
		}
	})

	t.Run("an ExecutionStatus filter finds it", func(t *testing.T) {
		query := fmt.Sprintf("WorkflowId = '%s' AND ExecutionStatus = 'Failed'", res.RunID)
		waitFor(t, 20*time.Second, func() bool {
			resp, err := h.client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query})
			return err == nil && len(resp.GetExecutions()) == 1
		})
	})

	t.Run("codeswarm result still prints the result", func(t *testing.T) {
		code, out := h.run("result", res.RunID, "--json")
		var again activities.SwarmResult
		if err := json.Unmarshal([]byte(out), &again); err != nil {
			t.Fatalf("result --json (exit %d) is not JSON: %v\n%s", code, err, out)
		}
		if code != 1 || again.RunID != res.RunID || again.Error != res.Error || len(again.SubtaskResults) != 2 {
			t.Errorf("exit %d, run %q, error %q, %d subtasks; want exit 1 and the run's result", code, again.RunID, again.Error, len(again.SubtaskResults))
		}
		_, status := h.run("status", res.RunID)
		mustContain(t, "status", status, "failed")
	})
}
