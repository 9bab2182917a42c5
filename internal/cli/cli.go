// Package cli implements the codeswarm command line: run, status, watch,
// result, list, cancel, pause, resume, plan, approve, reject, tell, server,
// dev and demo.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"codeswarm/activities"
	"codeswarm/control"
)

// Exit codes.
const (
	ExitOK        = 0
	ExitRunFailed = 1
	ExitUsage     = 2
	// ExitCancelled: the run was stopped by a user (cancel, terminate).
	ExitCancelled = 3
	// ExitApplyRefused: the run succeeded but --apply did not fast-forward
	// the checked-out branch (dirty tree, moved branch, detached HEAD).
	ExitApplyRefused = 4
)

// ErrRunFailed marks a run that finished without success.
var ErrRunFailed = errors.New("run did not succeed")

// ErrRunCancelled marks a run a user stopped (codeswarm cancel, temporal
// workflow terminate): not a failure of the run itself.
var ErrRunCancelled = errors.New("run was cancelled")

// ErrApplyRefused marks a run that succeeded whose result --apply could
// not apply: the integration branch holds it, the user's branch does not.
var ErrApplyRefused = errors.New("the run succeeded but its result was not applied")

// stoppedRun is the error of a run Temporal ended (terminated) without a
// result to print.
type stoppedRun struct{ msg string }

func (e stoppedRun) Error() string { return e.msg }

// resultErr turns a run's result into the command's error (and exit code).
func resultErr(res activities.SwarmResult) error {
	switch {
	case res.Success && !res.Applied && res.ApplyError != "":
		return ErrApplyRefused
	case res.Success:
		return nil
	case res.State == control.RunStateCancelled:
		return ErrRunCancelled
	}
	return ErrRunFailed
}

// usageError is bad input: a one-line message and exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func badInput(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// IO is where commands write.
type IO struct {
	Out, Err io.Writer
}

// Execute runs the CLI with args and returns the process exit code.
func Execute(ctx context.Context, args []string, stdio IO) int {
	root := newRoot(stdio)
	root.SetArgs(args)
	root.SetOut(stdio.Out)
	root.SetErr(stdio.Err)
	ctx, stop := withStopCommand(ctx)
	defer stop(nil)
	err := root.ExecuteContext(ctx)
	if died, ok := diedOf(ctx); ok {
		// Whatever the command made of its cancelled context, this is why.
		fmt.Fprintln(stdio.Err, "codeswarm:", died)
		return ExitRunFailed
	}
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, ErrRunFailed):
		return ExitRunFailed
	case errors.Is(err, ErrRunCancelled):
		return ExitCancelled
	case errors.Is(err, ErrApplyRefused):
		return ExitApplyRefused
	}
	var left detachedErr
	if errors.As(err, &left) {
		fmt.Fprintln(stdio.Err, left.msg)
		return left.code
	}
	fmt.Fprintln(stdio.Err, "codeswarm:", err)
	var ue usageError
	if errors.As(err, &ue) {
		return ExitUsage
	}
	var stopped stoppedRun
	if errors.As(err, &stopped) {
		return ExitCancelled
	}
	return ExitRunFailed
}

type globalOpts struct {
	configFile string
}

func newRoot(stdio IO) *cobra.Command {
	g := &globalOpts{}
	root := &cobra.Command{
		Use:           "codeswarm",
		Short:         "Run long code refactors as a durable swarm of LLM sub-agents on Temporal",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.configFile, "config", "", "config file (default ./codeswarm.yaml if present)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		newRunCmd(g, stdio), newStatusCmd(g, stdio), newWatchCmd(g, stdio), newResultCmd(g, stdio),
		newListCmd(g, stdio), newCancelCmd(g, stdio),
		newPauseCmd(g, stdio), newResumeCmd(g, stdio), newPlanCmd(g, stdio), newApproveCmd(g, stdio), newRejectCmd(g, stdio), newTellCmd(g, stdio),
		newCleanCmd(g, stdio), newServerCmd(g, stdio), newDevCmd(g, stdio), newDemoCmd(g, stdio),
		newMoveCmd(g, stdio), newWorkersCmd(g, stdio),
	)
	return root
}
