package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"codeswarm/activities"
	"codeswarm/workflows"
)

// eventPrinter prints run events once each; a zero printer prints nothing.
type eventPrinter struct {
	out  interface{ Write([]byte) (int, error) }
	seen int
}

func (p *eventPrinter) poll(ctx context.Context, c client.Client, id string) {
	if p.out == nil {
		return
	}
	prog, err := queryProgress(ctx, c, id, p.seen)
	if err != nil {
		return // the workflow may not have run its first task yet
	}
	for _, e := range prog.Events {
		who := e.Kind
		if e.Subtask != "" {
			who += " " + e.Subtask
		}
		fmt.Fprintf(p.out, "%s %s: %s\n", e.Time.Local().Format("15:04:05"), who, e.Message)
		p.seen = e.Seq
	}
}

func queryProgress(ctx context.Context, c client.Client, id string, since int) (activities.Progress, error) {
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := c.QueryWorkflow(qctx, id, "", activities.ProgressQueryName, since)
	if err != nil {
		return activities.Progress{}, err
	}
	var p activities.Progress
	return p, v.Get(&p)
}

func printSummary(stdio IO, r activities.SwarmResult) {
	verdict := "FAILED"
	if r.Success {
		verdict = "SUCCEEDED"
	}
	fmt.Fprintf(stdio.Out, "\nrun %s %s\n", r.RunID, verdict)
	tw := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SUBTASK\tSTAGE\tSTATUS\tMERGE\tSTEPS\tTOOLS\tFILES")
	for _, s := range r.SubtaskResults {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%d\t%d\n", s.ID, s.Stage, s.Status, s.Merge, s.Steps, s.ToolCalls, len(s.FilesChanged))
	}
	_ = tw.Flush()
	st := r.Stats
	fmt.Fprintf(stdio.Out, "integration branch %s at %s (base %s)\n", r.Branch, activities.ShortSHA(r.HeadCommit), activities.ShortSHA(r.BaseCommit))
	fmt.Fprintf(stdio.Out, "%d LLM calls, %d tool calls, %d+%d tokens, %.1fs, speedup %.2fx\n",
		st.TotalLLMCalls, st.TotalToolCalls, st.PromptTokens, st.CompletionTokens, float64(st.ExecutionTimeMs)/1000, st.SpeedupFactor)
	if r.Verify != nil {
		fmt.Fprintf(stdio.Out, "verify %q: exit %d\n", r.Verify.Command, r.Verify.ExitCode)
	}
	if r.Applied {
		fmt.Fprintln(stdio.Out, "applied: your branch was fast-forwarded to the result")
	} else if r.ApplyError != "" {
		fmt.Fprintln(stdio.Out, r.ApplyError)
	}
	for _, w := range r.KeptWorktrees {
		fmt.Fprintf(stdio.Out, "kept worktree: %s\n", w)
	}
	if r.Error != "" {
		fmt.Fprintf(stdio.Out, "error: %s\n", r.Error)
	}
}

// clientCmd builds a command that needs a client (and, for commands that
// wait on a run, a worker so that the run can make progress).
func clientCmd(g *globalOpts, use, short string, args cobra.PositionalArgs, worker bool,
	fn func(ctx context.Context, e *env, args []string) error) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Args: args,
		RunE: func(cmd *cobra.Command, argv []string) error {
			cfg, logger, err := loadConfig(g, cmd, nil)
			if err != nil {
				return err
			}
			e, err := connect(cmd.Context(), cfg, logger, connectOpts{worker: worker})
			if err != nil {
				return err
			}
			defer e.close()
			return fn(cmd.Context(), e, argv)
		},
	}
}

func newStatusCmd(g *globalOpts, stdio IO) *cobra.Command {
	return clientCmd(g, "status ID", "Show a run's state and progress", cobra.ExactArgs(1), false,
		func(ctx context.Context, e *env, args []string) error {
			d, err := e.client.DescribeWorkflowExecution(ctx, args[0], "")
			if err != nil {
				return fmt.Errorf("status %s: %w", args[0], err)
			}
			info := d.GetWorkflowExecutionInfo()
			fmt.Fprintf(stdio.Out, "run %s: %s (started %s)\n", args[0], statusName(info), info.GetStartTime().AsTime().Local().Format(time.DateTime))
			if u := e.workflowURL(args[0]); u != "" {
				fmt.Fprintf(stdio.Out, "Web UI: %s\n", u)
			}
			if info.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
				// A closed run's progress query would need a worker to replay
				// it; its result says everything.
				var res activities.SwarmResult
				if err := e.client.GetWorkflow(ctx, args[0], "").Get(ctx, &res); err == nil {
					printSummary(stdio, res)
				}
				return nil
			}
			if p, err := queryProgress(ctx, e.client, args[0], 0); err == nil {
				fmt.Fprintf(stdio.Out, "phase %s, %d subtasks, %d events\n", p.Phase, p.Subtasks, len(p.Events))
				if p.State != "" {
					fmt.Fprintf(stdio.Out, "state %s%s, host %s\n", p.State, prefixed(": ", p.StateReason), orDash(p.Host))
				}
				(&eventPrinter{out: stdio.Out}).print(p.Events)
			}
			return nil
		})
}

func (p *eventPrinter) print(events []activities.Event) {
	for _, e := range events {
		fmt.Fprintf(p.out, "  %s %-9s %s %s\n", e.Time.Local().Format("15:04:05"), e.Kind, e.Subtask, e.Message)
	}
}

func statusName(info *workflowpb.WorkflowExecutionInfo) string {
	return strings.ToLower(strings.TrimPrefix(info.GetStatus().String(), "WORKFLOW_EXECUTION_STATUS_"))
}

func newWatchCmd(g *globalOpts, stdio IO) *cobra.Command {
	var asJSON bool
	cmd := clientCmd(g, "watch ID", "Follow a run until it ends (starts a worker so it can progress)", cobra.ExactArgs(1), true,
		func(ctx context.Context, e *env, args []string) error {
			printStart(stdio, e, args[0])
			return awaitAndReport(ctx, e, args[0], asJSON, stdio)
		})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print only the result JSON")
	return cmd
}

func newResultCmd(g *globalOpts, stdio IO) *cobra.Command {
	var asJSON bool
	cmd := clientCmd(g, "result ID", "Print a run's result (waits for it to end)", cobra.ExactArgs(1), false,
		func(ctx context.Context, e *env, args []string) error {
			var res activities.SwarmResult
			if err := e.client.GetWorkflow(ctx, args[0], "").Get(ctx, &res); err != nil {
				return fmt.Errorf("result %s: %w", args[0], err)
			}
			if asJSON {
				return printJSON(stdio, res)
			}
			printSummary(stdio, res)
			if !res.Success {
				return ErrRunFailed
			}
			return nil
		})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result JSON")
	return cmd
}

func newListCmd(g *globalOpts, stdio IO) *cobra.Command {
	return clientCmd(g, "list", "List runs", cobra.NoArgs, false,
		func(ctx context.Context, e *env, _ []string) error {
			resp, err := e.client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
				Query: fmt.Sprintf("WorkflowType = '%s'", workflows.SwarmWorkflowName), PageSize: 100,
			})
			if err != nil {
				return fmt.Errorf("list runs: %w", err)
			}
			tw := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATUS\tHOST\tSTARTED\tTASK")
			for _, info := range resp.GetExecutions() {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", info.GetExecution().GetWorkflowId(), statusName(info), orDash(e.runHost(info)),
					info.GetStartTime().AsTime().Local().Format(time.DateTime), e.memoString(info, "task"))
			}
			return tw.Flush()
		})
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

func newCancelCmd(g *globalOpts, stdio IO) *cobra.Command {
	return clientCmd(g, "cancel ID", "Cancel a run: sub-agents stop, their work is kept", cobra.ExactArgs(1), false,
		func(ctx context.Context, e *env, args []string) error {
			if err := e.client.CancelWorkflow(ctx, args[0], ""); err != nil {
				return fmt.Errorf("cancel %s: %w", args[0], err)
			}
			fmt.Fprintf(stdio.Out, "cancellation requested for %s\n", args[0])
			return nil
		})
}

func prefixed(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}
