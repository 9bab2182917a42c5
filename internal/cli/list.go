package cli

import (
	"cmp"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"codeswarm/control"
	"codeswarm/gitops"
	"codeswarm/workflows"
)

// listOpts are the filters of `codeswarm list`.
type listOpts struct {
	status, repo, query string
}

func newListCmd(g *globalOpts, stdio IO) *cobra.Command {
	o := &listOpts{}
	cmd := clientCmd(g, "list", "List runs, newest first; filter by state, repository or a visibility query", cobra.NoArgs, false,
		func(ctx context.Context, e *env, _ []string) error {
			query, err := o.build(ctx, e)
			if err != nil {
				return err
			}
			resp, err := e.client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
				Query:    query,
				PageSize: 100,
			})
			if err != nil {
				return fmt.Errorf("list runs (query %s): %w", query, err)
			}
			tw := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATE\tHOST\tDONE\tTOKENS\tCOST\tSTARTED\tTASK")
			for _, info := range resp.GetExecutions() {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", info.GetExecution().GetWorkflowId(), runState(info),
					cmp.Or(e.runHost(info), "-"), doneCell(info), intCell(info, control.SATokens), costCell(info),
					e.runStarted(info).Local().Format(time.DateTime), e.memoString(info, "task"))
			}
			return tw.Flush()
		})
	f := cmd.Flags()
	f.StringVar(&o.status, "status", "", "only runs in this state: "+strings.Join(runStates, ", "))
	f.StringVar(&o.repo, "repo", "", "only runs of this repository")
	f.StringVar(&o.query, "query", "", "a Temporal visibility query ANDed to the others, e.g. \"CodeswarmCostUSD > 1\"")
	return cmd
}

// runStates are the states a run can be in: the live ones, then the final.
var runStates = append(append([]string{}, liveStates...),
	control.RunStateSucceeded, control.RunStateFailed, control.RunStateCancelled, control.RunStateRejected,
	control.RunStateTerminated, control.RunStateTimedOut)

// liveStates are the states of a run whose workflow is running.
var liveStates = []string{
	control.RunStateRunning, control.RunStatePaused, control.RunStateBudgetPaused, control.RunStateAwaitingApproval,
	control.RunStateWaitingHost,
}

// runState is a run's state as every view shows it: its CodeswarmStatus,
// unless Temporal ended the run in a way the run could not record
// (terminated, timed out), or the attribute still shows a live state.
func runState(info *workflowpb.WorkflowExecutionInfo) string {
	sa := saString(info, control.SAStatus)
	final := sa != "" && !slices.Contains(liveStates, sa)
	switch info.GetStatus() {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return cmp.Or(sa, control.RunStateRunning)
	case enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED:
		return control.RunStateTerminated
	case enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:
		return control.RunStateTimedOut
	case enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED:
		return control.RunStateCancelled
	case enumspb.WORKFLOW_EXECUTION_STATUS_FAILED:
		if final {
			return sa
		}
		return control.RunStateFailed
	}
	if final {
		return sa
	}
	return control.RunStateSucceeded
}

// stateQuery is the visibility query of the runs in state (see runState).
func stateQuery(state string) string {
	sa := fmt.Sprintf("%s = '%s'", control.SAStatus, state)
	switch state {
	case control.RunStateTerminated:
		return "ExecutionStatus = 'Terminated'"
	case control.RunStateTimedOut:
		return "ExecutionStatus = 'TimedOut'"
	case control.RunStateCancelled:
		return "(" + sa + " OR ExecutionStatus = 'Canceled')"
	}
	if slices.Contains(liveStates, state) {
		return sa + " AND ExecutionStatus = 'Running'"
	}
	return sa + " AND ExecutionStatus IN ('Completed', 'Failed')"
}

// build turns the filters into one visibility query.
func (o *listOpts) build(ctx context.Context, e *env) (string, error) {
	// A run that continued as new is listed once: by its current run.
	parts := []string{fmt.Sprintf("WorkflowType = '%s'", workflows.SwarmWorkflowName), "ExecutionStatus != 'ContinuedAsNew'"}
	if o.status != "" {
		if !slices.Contains(runStates, o.status) {
			return "", badInput("--status %q: want one of %s", o.status, strings.Join(runStates, ", "))
		}
		parts = append(parts, stateQuery(o.status))
	}
	if o.repo != "" {
		root, err := repoRoot(ctx, o.repo, e.cfg.Codec.Key != "")
		if err != nil {
			return "", err
		}
		parts = append(parts, fmt.Sprintf("%s = '%s'", control.SARepo, root))
	}
	if strings.TrimSpace(o.query) != "" {
		parts = append(parts, "("+o.query+")")
	}
	return strings.Join(parts, " AND "), nil
}

// repoRoot is the repository as runs record it: its top-level directory.
func repoRoot(ctx context.Context, path string, private bool) (string, error) {
	if private {
		return "", badInput("--repo: runs with encrypted payloads (codec.key) keep their repository out of search attributes; list them without --repo")
	}
	root := path
	if r, err := gitops.Open(ctx, path); err == nil {
		root = r.Root
	} else if abs, aerr := filepath.Abs(path); aerr == nil {
		root = abs
	}
	if strings.ContainsAny(root, "'\\") {
		return "", badInput("--repo %q: a path with a quote or backslash cannot be matched; use --query", root)
	}
	return root, nil
}

// saString reads a keyword or text search attribute of a listed run.
func saString(info *workflowpb.WorkflowExecutionInfo, name string) string {
	var s string
	saValue(info, name, &s)
	return s
}

func saValue(info *workflowpb.WorkflowExecutionInfo, name string, v any) bool {
	p, ok := info.GetSearchAttributes().GetIndexedFields()[name]
	return ok && converter.GetDefaultDataConverter().FromPayload(p, v) == nil
}

func intCell(info *workflowpb.WorkflowExecutionInfo, name string) string {
	var n int64
	if !saValue(info, name, &n) {
		return "-"
	}
	return fmt.Sprint(n)
}

func doneCell(info *workflowpb.WorkflowExecutionInfo) string {
	var done, total int64
	if !saValue(info, control.SASubtasksTotal, &total) {
		return "-"
	}
	saValue(info, control.SASubtasksDone, &done)
	return fmt.Sprintf("%d/%d", done, total)
}

func costCell(info *workflowpb.WorkflowExecutionInfo) string {
	var c float64
	if !saValue(info, control.SACostUSD, &c) {
		return "-"
	}
	return fmt.Sprintf("$%.4f", c)
}

// memoString decodes a memo field with the client's converter: the SDK
// encodes memos with it, so with codec.key set they are ciphertext.
func (e *env) memoString(info *workflowpb.WorkflowExecutionInfo, key string) string {
	p, ok := info.GetMemo().GetFields()[key]
	if !ok {
		return ""
	}
	var s string
	_ = e.dc.FromPayload(p, &s)
	return s
}

// memoStarted is the memo entry holding when the run began (RFC 3339).
const memoStarted = "started"

// runStarted is when the run began: its memo's start time, which the SDK
// carries across continue-as-new with the rest of the memo, or, for a run
// started without it, its current run's start time.
func (e *env) runStarted(info *workflowpb.WorkflowExecutionInfo) time.Time {
	if t, err := time.Parse(time.RFC3339, e.memoString(info, memoStarted)); err == nil {
		return t
	}
	return info.GetStartTime().AsTime()
}
