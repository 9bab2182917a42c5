package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"

	"codeswarm/config"
	"codeswarm/gitops"
	"codeswarm/workflows"
)

type cleanOpts struct {
	repo string
	// all undoes the run entirely: every worktree (even with changes),
	// every branch (the integration branch and unmerged work included) and
	// its workspace directory (transcripts, journals).
	all bool
}

func newCleanCmd(g *globalOpts, stdio IO) *cobra.Command {
	o := &cleanOpts{}
	cmd := clientCmd(g, "clean RUN", "Remove a finished run's worktrees and merged branches; unmerged work and dirty worktrees are kept", cobra.ExactArgs(1), false,
		func(ctx context.Context, e *env, args []string) error {
			return clean(ctx, e, args[0], o, stdio)
		})
	cmd.Flags().StringVar(&o.repo, "repo", "", "the run's repository (default: the one recorded with the run)")
	cmd.Flags().BoolVar(&o.all, "all", false, "undo the run entirely: also its integration branch, unmerged branches, worktrees with changes, transcripts and journals")
	return cmd
}

// clean removes what a run left behind, and nothing that holds the only copy
// of some work: a dirty worktree is kept, and a branch is deleted only if its
// head is reachable from the integration branch or another branch.
func clean(ctx context.Context, e *env, runID string, o *cleanOpts, stdio IO) error {
	repoPath, err := runRepo(ctx, e, runID, o.repo)
	if err != nil {
		return err
	}
	repo, err := gitops.Open(ctx, repoPath)
	if err != nil {
		return badInput("--repo: %v", err)
	}
	// Builds before this one set gc.auto=0 in the repository for the run
	// and restored it only when the run ended; a killed run left it.
	if err := repo.RestoreSavedConfig(ctx, "gc.auto"); err != nil {
		fmt.Fprintf(stdio.Out, "could not restore gc.auto left by an interrupted run: %v\n", err)
	}
	if o.all {
		return cleanAll(ctx, e.cfg, repo, runID, stdio)
	}
	kept := 0
	n, err := cleanWorktrees(ctx, e.cfg, repo, runID, stdio)
	kept += n
	if err != nil {
		return err
	}
	n, err = cleanBranches(ctx, e.cfg, repo, runID, stdio)
	kept += n
	if err != nil {
		return err
	}
	if kept == 0 {
		_ = os.RemoveAll(filepath.Join(config.ExpandHome(e.cfg.Workspace.Root), runID))
	}
	fmt.Fprintf(stdio.Out, "integration branch %s kept (it is the run's result)\n", workflows.IntegrationBranch(e.cfg.Git.BranchPrefix, runID))
	if kept > 0 {
		return fmt.Errorf("kept %d worktrees or branches that hold work found nowhere else", kept)
	}
	return nil
}

// runRepo finds the run's repository and refuses a run that is still going.
func runRepo(ctx context.Context, e *env, runID, flagRepo string) (string, error) {
	d, err := e.client.DescribeWorkflowExecution(ctx, runID, "")
	if err != nil {
		if flagRepo == "" {
			return "", badInput("run %s not found (%v); give --repo to clean up after it anyway", runID, err)
		}
		return flagRepo, nil
	}
	info := d.GetWorkflowExecutionInfo()
	if info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return "", badInput("run %s is still running; cancel it first (codeswarm cancel %s)", runID, runID)
	}
	if flagRepo != "" {
		return flagRepo, nil
	}
	if repo := e.memoString(info, "repo"); repo != "" {
		return repo, nil
	}
	return "", badInput("run %s has no recorded repository; give --repo", runID)
}

func cleanWorktrees(ctx context.Context, cfg *config.Config, repo *gitops.Repo, runID string, stdio IO) (int, error) {
	runDir := filepath.Join(config.ExpandHome(cfg.Workspace.Root), runID) + string(filepath.Separator)
	wts, err := repo.ListWorktrees(ctx)
	if err != nil {
		return 0, err
	}
	kept := 0
	for _, wt := range wts {
		if !strings.HasPrefix(wt.Dir+string(filepath.Separator), runDir) {
			continue
		}
		err := repo.RemoveWorktree(ctx, wt.Dir, false)
		switch {
		case errors.Is(err, gitops.ErrDirtyWorktree):
			kept++
			fmt.Fprintf(stdio.Out, "kept worktree %s: it has uncommitted changes\n", wt.Dir)
		case errors.Is(err, gitops.ErrUntrustedGitDir):
			kept++
			fmt.Fprintf(stdio.Out, "kept worktree %s: its .git no longer leads to its own worktree record (%v); look at it and remove it by hand\n", wt.Dir, err)
		case err != nil:
			return kept, fmt.Errorf("remove worktree %s: %w", wt.Dir, err)
		default:
			fmt.Fprintf(stdio.Out, "removed worktree %s\n", wt.Dir)
		}
	}
	return kept, nil
}

func cleanBranches(ctx context.Context, cfg *config.Config, repo *gitops.Repo, runID string, stdio IO) (int, error) {
	prefix := cfg.Git.BranchPrefix + "/" + runID + "/"
	integration := workflows.IntegrationBranch(cfg.Git.BranchPrefix, runID)
	branches, err := repo.Branches(ctx, prefix)
	if err != nil {
		return 0, err
	}
	others, err := repo.Branches(ctx, "")
	if err != nil {
		return 0, err
	}
	var into []string
	for _, b := range others {
		if b == integration || !strings.HasPrefix(b, prefix) {
			into = append(into, b)
		}
	}
	kept := 0
	for _, b := range branches {
		if b == integration {
			continue
		}
		err := repo.DeleteBranchIfMerged(ctx, b, into)
		switch {
		case errors.Is(err, gitops.ErrNotMerged):
			kept++
			fmt.Fprintf(stdio.Out, "kept branch %s: its commits are not merged anywhere\n", b)
		case err != nil:
			kept++
			fmt.Fprintf(stdio.Out, "kept branch %s: %v\n", b, err)
		default:
			fmt.Fprintf(stdio.Out, "deleted branch %s\n", b)
		}
	}
	return kept, nil
}

// cleanAll removes everything the run left in the repository and the
// workspace, its result included: the user asked for it by name (--all).
// The user's own branches and working tree are not touched.
func cleanAll(ctx context.Context, cfg *config.Config, repo *gitops.Repo, runID string, stdio IO) error {
	runDir := filepath.Join(config.ExpandHome(cfg.Workspace.Root), runID)
	wts, err := repo.ListWorktrees(ctx)
	if err != nil {
		return err
	}
	for _, wt := range wts {
		if !strings.HasPrefix(wt.Dir+string(filepath.Separator), runDir+string(filepath.Separator)) {
			continue
		}
		if err := repo.RemoveWorktree(ctx, wt.Dir, true); err != nil {
			return fmt.Errorf("remove worktree %s: %w", wt.Dir, err)
		}
		fmt.Fprintf(stdio.Out, "removed worktree %s\n", wt.Dir)
	}
	branches, err := repo.Branches(ctx, cfg.Git.BranchPrefix+"/"+runID+"/")
	if err != nil {
		return err
	}
	for _, b := range branches {
		if err := repo.DeleteBranch(ctx, b); err != nil {
			return err
		}
		fmt.Fprintf(stdio.Out, "deleted branch %s\n", b)
	}
	if err := os.RemoveAll(runDir); err != nil {
		return fmt.Errorf("remove %s: %w", runDir, err)
	}
	fmt.Fprintf(stdio.Out, "removed %s (transcripts, journals); the run's history stays in Temporal until its retention ends\n", runDir)
	return nil
}
