package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"codeswarm/activities"
	"codeswarm/control"
	"codeswarm/workflows"
)

// controlTimeout bounds how long a steering command waits for a worker to
// run the run's update handler.
const controlTimeout = 30 * time.Second

func newPauseCmd(g *globalOpts, stdio IO) *cobra.Command {
	var reason string
	cmd := clientCmd(g, "pause ID", "Pause a run: running sub-agents stop after their current step, nothing new starts", cobra.ExactArgs(1), false,
		func(ctx context.Context, e *env, args []string) error {
			return steer(ctx, e, stdio, args[0], control.PauseUpdateName, control.PauseRequest{Reason: reason})
		})
	cmd.Flags().StringVar(&reason, "reason", "", "why, shown in status and the Web UI")
	return cmd
}

func newResumeCmd(g *globalOpts, stdio IO) *cobra.Command {
	var req control.ResumeRequest
	cmd := clientCmd(g, "resume ID", "Resume a paused run, optionally raising its token or cost cap", cobra.ExactArgs(1), false,
		func(ctx context.Context, e *env, args []string) error {
			if req.AddTokens < 0 {
				return badInput("--add-tokens %d: must be 0 or more", req.AddTokens)
			}
			if req.AddUSD < 0 {
				return badInput("--add-usd %g: must be 0 or more", req.AddUSD)
			}
			return steer(ctx, e, stdio, args[0], control.ResumeUpdateName, req)
		})
	cmd.Flags().Int64Var(&req.AddTokens, "add-tokens", 0, "raise the run's token cap (swarm.max_tokens) by N")
	cmd.Flags().Float64Var(&req.AddUSD, "add-usd", 0, "raise the run's cost cap (swarm.max_cost_usd) by X dollars")
	return cmd
}

func newApproveCmd(g *globalOpts, stdio IO) *cobra.Command {
	return clientCmd(g, "approve ID", "Approve the plan of a run started with --approve-plan", cobra.ExactArgs(1), false,
		func(ctx context.Context, e *env, args []string) error {
			return steer(ctx, e, stdio, args[0], control.ApproveUpdateName, control.ApproveRequest{})
		})
}

func newRejectCmd(g *globalOpts, stdio IO) *cobra.Command {
	var reason string
	cmd := clientCmd(g, "reject ID --reason TEXT", "Reject the plan of a run started with --approve-plan: it ends, no subtask runs", cobra.ExactArgs(1), false,
		func(ctx context.Context, e *env, args []string) error {
			if strings.TrimSpace(reason) == "" {
				return badInput("reject needs --reason TEXT")
			}
			return steer(ctx, e, stdio, args[0], control.RejectUpdateName, control.RejectRequest{Reason: reason})
		})
	cmd.Flags().StringVar(&reason, "reason", "", "why the plan is rejected (in the run's result)")
	return cmd
}

func newTellCmd(g *globalOpts, stdio IO) *cobra.Command {
	var subtask string
	cmd := clientCmd(g, "tell ID [--subtask S] TEXT", "Send a steering note a sub-agent reads before its next model call", tellArgs, false,
		func(ctx context.Context, e *env, args []string) error {
			msg := strings.TrimSpace(strings.Join(args[1:], " "))
			if msg == "" {
				return badInput("the note is empty")
			}
			return steer(ctx, e, stdio, args[0], control.TellUpdateName, control.TellRequest{
				Subtask: subtask,
				Message: msg,
			})
		})
	cmd.Flags().StringVar(&subtask, "subtask", "", "subtask ID (default: every running sub-agent); one that has not started reads it when it starts")
	return cmd
}

// tellArgs wants a run ID and a note.
func tellArgs(_ *cobra.Command, args []string) error {
	if len(args) < 2 {
		return badInput("tell needs a run ID and a note: codeswarm tell ID [--subtask S] TEXT")
	}
	return nil
}

func newPlanCmd(g *globalOpts, stdio IO) *cobra.Command {
	return clientCmd(g, "plan ID", "Print a run's plan: subtasks, stages, dependencies", cobra.ExactArgs(1), false,
		func(ctx context.Context, e *env, args []string) error {
			if _, err := describeRun(ctx, e, args[0]); err != nil {
				return err
			}
			qctx, cancel := context.WithTimeout(ctx, controlTimeout)
			defer cancel()
			v, err := e.client.QueryWorkflow(qctx, args[0], "", control.PlanQueryName)
			if err != nil {
				return controlError(args[0], "plan", err, e)
			}
			var plan workflows.PlanView
			if err := v.Get(&plan); err != nil {
				return fmt.Errorf("plan %s: %w", args[0], err)
			}
			printPlan(stdio, args[0], plan)
			return nil
		})
}

func printPlan(stdio IO, id string, p workflows.PlanView) {
	fmt.Fprintf(stdio.Out, "plan of run %s (%s): %d subtasks\n", id, p.State, len(p.Subtasks))
	if p.Note != "" {
		fmt.Fprintf(stdio.Out, "note: %s\n", p.Note)
	}
	if len(p.Subtasks) == 0 {
		fmt.Fprintln(stdio.Out, "(not planned yet)")
		return
	}
	tw := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSTAGE\tDEPENDS ON\tINSTRUCTION")
	for _, s := range p.Subtasks {
		deps := strings.Join(s.Dependencies, ",")
		if deps == "" {
			deps = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", s.ID, s.Name, s.Stage, deps, activities.FirstLine(s.Instruction, 80))
	}
	_ = tw.Flush()
}

// describeRun refuses an ID that names no run, another kind of workflow, or
// a run that has ended, before anything is sent to it.
func describeRun(ctx context.Context, e *env, id string) (*enumspb.WorkflowExecutionStatus, error) {
	d, err := e.client.DescribeWorkflowExecution(ctx, id, "")
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		return nil, badInput("no run %s in namespace %s (see `codeswarm list`)", id, e.cfg.Temporal.Namespace)
	case err != nil:
		return nil, fmt.Errorf("look up run %s: %w", id, err)
	}
	info := d.GetWorkflowExecutionInfo()
	if info.GetType().GetName() != workflows.SwarmWorkflowName {
		return nil, badInput("%s is a %s, not a codeswarm run", id, info.GetType().GetName())
	}
	st := info.GetStatus()
	return &st, nil
}

// steer sends a steering update to a running run and prints its reply. A
// request the run refuses changes nothing (its validator runs before
// anything is written to the run's history).
func steer(ctx context.Context, e *env, stdio IO, id, update string, arg any) error {
	st, err := describeRun(ctx, e, id)
	if err != nil {
		return err
	}
	if *st != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return badInput("run %s has ended: %s", id, strings.ToLower(strings.TrimPrefix(st.String(), "WORKFLOW_EXECUTION_STATUS_")))
	}
	uctx, cancel := context.WithTimeout(ctx, controlTimeout)
	defer cancel()
	h, err := e.client.UpdateWorkflow(uctx, client.UpdateWorkflowOptions{
		WorkflowID:   id,
		UpdateName:   update,
		Args:         []any{arg},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	var reply control.ControlReply
	if err == nil {
		err = h.Get(uctx, &reply)
	}
	if err != nil {
		return controlError(id, update, err, e)
	}
	fmt.Fprintf(stdio.Out, "%s (state %s)\n", reply.Message, reply.State)
	return nil
}

// controlError turns a refusal into the run's own words, and a timeout into
// the likely cause.
func controlError(id, what string, err error, e *env) error {
	var appErr *temporal.ApplicationError
	switch {
	case errors.As(err, &appErr):
		return badInput("%s %s: %s", what, id, appErr.Message())
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s %s: no worker answered within %s: is a worker (codeswarm dev, or a worker process) polling task queue %s?",
			what, id, controlTimeout, e.cfg.Temporal.TaskQueue)
	}
	return fmt.Errorf("%s %s: %w", what, id, err)
}
