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
)

// Exit codes.
const (
	ExitOK        = 0
	ExitRunFailed = 1
	ExitUsage     = 2
)

// ErrRunFailed marks a run that finished without success.
var ErrRunFailed = errors.New("run did not succeed")

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
	err := root.ExecuteContext(ctx)
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, ErrRunFailed):
		return ExitRunFailed
	}
	fmt.Fprintln(stdio.Err, "codeswarm:", err)
	var ue usageError
	if errors.As(err, &ue) {
		return ExitUsage
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
