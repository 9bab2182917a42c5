package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"

	"codeswarm/config"
	"codeswarm/gitops"
)

// checkRunID refuses a run ID that an earlier run has used. A run's ID names
// its transcripts, tool journals and branches; a second run under the same
// ID would replay the first one's model answers and count its tool calls as
// done. Starting afresh under the same ID would need new names for all of
// that and would hide the old run's result (its integration branch), so
// the ID is refused instead. A run that is still going is fine: `run --id`
// attaches to it, which crash recovery depends on.
//
// A running run's ID attaches to it: queue is then the task queue the run
// was started on ("" for a new run).
func checkRunID(ctx context.Context, e *env, id, repoPath string) (queue string, err error) {
	// The leftovers' check (a stat and two git processes) runs beside the
	// lookup; its answer counts only for an ID Temporal does not know.
	leftovers := make(chan error, 1)
	go func() { leftovers <- checkNoLeftovers(ctx, e.cfg, id, repoPath) }()
	d, err := e.client.DescribeWorkflowExecution(ctx, id, "")
	lerr := <-leftovers
	var notFound *serviceerror.NotFound
	switch {
	case err == nil:
		info := d.GetWorkflowExecutionInfo()
		if info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			return d.GetExecutionConfig().GetTaskQueue().GetName(), nil
		}
		return "", badInput("run ID %s is taken: that run %s at %s (repository %s). An ID names one run's transcripts, journals and branches, "+
			"so it is never reused: give a new --id (or none). `codeswarm result %s` shows the old run; `codeswarm clean %s` removes its worktrees and merged branches",
			id, statusName(info), info.GetCloseTime().AsTime().Local().Format(time.DateTime), orUnknown(e.memoString(info, "repo")), id, id)
	case !errors.As(err, &notFound):
		return "", fmt.Errorf("look up run %s: %w", id, err)
	}
	return "", lerr
}

// checkNoLeftovers refuses an ID Temporal does not know (its history expired,
// or another server ran it) when the run's files or branches are still there.
func checkNoLeftovers(ctx context.Context, cfg *config.Config, id, repoPath string) error {
	dir := filepath.Join(config.ExpandHome(cfg.Workspace.Root), id)
	if _, err := os.Stat(dir); err == nil {
		return badInput("run ID %s was used by an earlier run whose state is still in %s: give a new --id (or none), "+
			"or remove what it left with `codeswarm clean %s --repo %s`", id, dir, id, repoPath)
	}
	repo, err := gitops.Open(ctx, repoPath)
	if err != nil {
		return badInput("--repo: %v", err)
	}
	branches, err := repo.Branches(ctx, cfg.Git.BranchPrefix+"/"+id+"/")
	if err != nil {
		return err
	}
	if len(branches) > 0 {
		return badInput("run ID %s was used by an earlier run: its branches are still in the repository (%s): give a new --id (or none)",
			id, strings.Join(branches, ", "))
	}
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
