package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/sdk/client"

	"codeswarm/activities"
	"codeswarm/control"
	"codeswarm/workflows"
)

// eventPrinter prints run events once each; a zero printer prints nothing.
// With tools set (--verbose) it prints every sub-agent tool call too.
type eventPrinter struct {
	out   io.Writer
	seen  int
	tools *toolTracker
}

func (p *eventPrinter) poll(ctx context.Context, c client.Client, id string) {
	if p.out == nil {
		return
	}
	v, err := p.read(ctx, c, id)
	if err != nil {
		return // the workflow may not have run its first task yet
	}
	var lines []line
	if p.tools != nil {
		lines = p.tools.collect(ctx, c, id, v)
	}
	for _, e := range v.prog.Events {
		lines = append(lines, line{e.Time, eventLine(e)})
		p.seen = e.Seq
	}
	sortLines(lines)
	for _, l := range lines {
		fmt.Fprintln(p.out, l.text)
	}
}

// read asks only the parent unless tool calls are printed.
func (p *eventPrinter) read(ctx context.Context, c client.Client, id string) (liveView, error) {
	if p.tools != nil {
		return fetchLive(ctx, c, id, p.seen)
	}
	prog, err := queryProgress(ctx, c, id, p.seen)
	return liveView{prog: prog}, err
}

// eventLine is one event as watch prints it.
func eventLine(e control.Event) string {
	who := e.Kind
	if e.Subtask != "" {
		who += " " + e.Subtask
	}
	return fmt.Sprintf("%s %s: %s", e.Time.Local().Format("15:04:05"), who, e.Message)
}

func queryProgress(ctx context.Context, c client.Client, id string, since int) (control.Progress, error) {
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := c.QueryWorkflow(qctx, id, "", control.ProgressQueryName, since)
	if err != nil {
		return control.Progress{}, err
	}
	var p control.Progress
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
		status := s.Status
		if s.Cached {
			status += " (cached)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%d\t%d\n", s.ID, s.Stage, status, s.Merge, s.Steps, s.ToolCalls, len(s.FilesChanged))
	}
	_ = tw.Flush()
	st := r.Stats
	if r.Branch == "" {
		fmt.Fprintf(stdio.Out, "no integration branch: nothing was merged (base %s)\n", activities.ShortSHA(r.BaseCommit))
	} else {
		fmt.Fprintf(stdio.Out, "integration branch %s at %s (base %s)\n", r.Branch, activities.ShortSHA(r.HeadCommit), activities.ShortSHA(r.BaseCommit))
	}
	cached := ""
	if st.CachedPromptTokens > 0 {
		cached = fmt.Sprintf(" (%d prompt tokens from the provider's cache)", st.CachedPromptTokens)
	}
	fmt.Fprintf(stdio.Out, "%d LLM calls, %d tool calls, %d+%d tokens%s, %.1fs, speedup %.2fx\n",
		st.TotalLLMCalls, st.TotalToolCalls, st.PromptTokens, st.CompletionTokens, cached, float64(st.ExecutionTimeMs)/1000, st.SpeedupFactor)
	if st.SubagentsCached > 0 || st.PlanCached {
		plan := ""
		if st.PlanCached {
			plan = " and the plan"
		}
		fmt.Fprintf(stdio.Out, "result cache: %d of %d sub-agents%s reused earlier work (run --no-cache to redo them)\n", st.SubagentsCached, len(r.SubtaskResults), plan)
	}
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
		Use:   use,
		Short: short,
		Args:  args,
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
			fmt.Fprintf(stdio.Out, "run %s: %s (workflow %s, started %s)\n", args[0], runState(info), statusName(info), e.runStarted(info).Local().Format(time.DateTime))
			if info.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
				fmt.Fprintf(stdio.Out, "state %s\n", runState(info))
			}
			if u := e.workflowURL(args[0]); u != "" {
				fmt.Fprintf(stdio.Out, "Web UI: %s\n", u)
			}
			if info.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
				// A closed run's progress query would need a worker to replay
				// it; its result says everything.
				if res, err := activities.RunResult(ctx, e.client, args[0]); err == nil {
					printSummary(stdio, res)
				}
				return nil
			}
			if !workerServing(ctx, e.client, d.GetExecutionConfig().GetTaskQueue().GetName()) {
				queue := d.GetExecutionConfig().GetTaskQueue().GetName()
				fmt.Fprintln(stdio.Out, noWorkerLine(args[0], queue == workflows.RunQueue(e.cfg.Temporal.TaskQueue, args[0])))
				return nil
			}
			v, err := fetchLive(ctx, e.client, args[0], 0)
			v.slowAfter = e.cfg.Watch.SlowCallAfter
			if err != nil {
				// No worker has run its first task yet, or none is up.
				fmt.Fprintf(stdio.Out, "progress not available yet: %v\n", err)
				return nil
			}
			v.printTable(stdio.Out, time.Now())
			events := v.prog.Events
			if len(events) > statusEvents {
				events = events[len(events)-statusEvents:]
			}
			fmt.Fprintf(stdio.Out, "last %d of %d events:\n", len(events), len(v.prog.Events))
			(&eventPrinter{out: stdio.Out}).print(events)
			return nil
		})
}

func (p *eventPrinter) print(events []control.Event) {
	for _, e := range events {
		fmt.Fprintf(p.out, "  %s %-9s %s %s\n", e.Time.Local().Format("15:04:05"), e.Kind, e.Subtask, e.Message)
	}
}

func statusName(info *workflowpb.WorkflowExecutionInfo) string {
	return strings.ToLower(strings.TrimPrefix(info.GetStatus().String(), "WORKFLOW_EXECUTION_STATUS_"))
}

// statusEvents is how many of the latest events status prints.
const statusEvents = 10

func newWatchCmd(g *globalOpts, stdio IO) *cobra.Command {
	var mode followMode
	var plain bool
	cmd := clientCmd(g, "watch ID", "Follow a run until it ends: a live table in a terminal, event lines otherwise (starts a worker for it when it needs one)", cobra.ExactArgs(1), false,
		func(ctx context.Context, e *env, args []string) error {
			if err := e.watchWorker(ctx, args[0]); err != nil {
				return err
			}
			mode.live = !plain && !mode.json && isTerminal(stdio.Out)
			if !mode.live && !mode.json {
				printStart(stdio, e, args[0])
			}
			return followAndReport(ctx, e, args[0], mode, stdio)
		})
	cmd.Flags().BoolVar(&mode.json, "json", false, "print only the result JSON")
	cmd.Flags().BoolVar(&plain, "plain", false, "print event lines, also in a terminal")
	cmd.Flags().BoolVar(&mode.verbose, "verbose", false, "print every sub-agent tool call too")
	return cmd
}

func newResultCmd(g *globalOpts, stdio IO) *cobra.Command {
	var asJSON bool
	cmd := clientCmd(g, "result ID", "Print a run's result (waits for it to end)", cobra.ExactArgs(1), false,
		func(ctx context.Context, e *env, args []string) error {
			res, err := activities.RunResult(ctx, e.client, args[0])
			if err != nil {
				return noResult(args[0], err)
			}
			if asJSON {
				return printJSON(stdio, res)
			}
			printSummary(stdio, res)
			return resultErr(res)
		})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result JSON")
	return cmd
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
