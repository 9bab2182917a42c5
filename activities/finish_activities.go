package activities

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"go.temporal.io/sdk/temporal"

	"codeswarm/gitops"
)

// FinishRunInput ends a run: restore gc.auto, remove merged worktrees, apply.
type FinishRunInput struct {
	RunID           string   `json:"run_id"`
	RepoPath        string   `json:"repo_path"`
	GCAutoPrev      string   `json:"gc_auto_prev"`
	GCAutoHad       bool     `json:"gc_auto_had"`
	RemoveWorktrees []string `json:"remove_worktrees"`
	// WorktreesUnder and RemoveNames are more worktrees to remove, each
	// WorktreesUnder/name: a run's worktrees share their directory, and
	// 10,000 full paths made this input (and its event in the parent's
	// history) about 1 MB, half of Temporal's 2 MB payload limit.
	WorktreesUnder  string   `json:"worktrees_under,omitempty"`
	RemoveNames     []string `json:"remove_names,omitempty"`
	Apply           bool     `json:"apply"`
	BaseBranch      string   `json:"base_branch"`
	BaseCommit      string   `json:"base_commit"`
	IntegrationHead string   `json:"integration_head"`
	// DropEmptyBranch names the integration branch of a run that did not
	// succeed: it is deleted when nothing was merged into it (it holds
	// only the base commit, so it would be a branch with no content).
	DropEmptyBranch string `json:"drop_empty_branch,omitempty"`
}

// FinishRunResult says what the end of the run did.
type FinishRunResult struct {
	Applied    bool   `json:"applied"`
	ApplyError string `json:"apply_error,omitempty"`
	// RemovedCount is how many of the worktrees to remove are gone (a
	// count: their paths were the input's again).
	RemovedCount int      `json:"removed_count,omitempty"`
	Kept         []string `json:"kept,omitempty"`
	// DroppedBranch: DropEmptyBranch was deleted.
	DroppedBranch bool `json:"dropped_branch,omitempty"`
}

// FinishRun restores the repository settings, removes the worktrees of merged
// subtasks (never a dirty one) and, if asked, fast-forwards the user's branch.
func (a *Activities) FinishRun(ctx context.Context, in FinishRunInput) (FinishRunResult, error) {
	defer keepAlive(ctx)()
	remove, err := in.worktreesToRemove()
	if err != nil {
		return FinishRunResult{}, temporal.NewNonRetryableApplicationError(err.Error(), "finish.input", nil)
	}
	repo, err := gitops.Open(ctx, in.RepoPath)
	if err != nil {
		return FinishRunResult{}, err
	}
	// Builds before v0.1.0 set gc.auto=0 in the user's config and saved
	// the original next to it; restore it when that is still there, so a
	// repository such a build touched gets its setting back. The config and the worktrees are separate
	// files: restore while the worktrees go, off the run's critical path.
	restored := make(chan error, 1)
	go func() { restored <- repo.RestoreSavedConfig(ctx, "gc.auto") }()
	var out FinishRunResult
	// The parked worktrees go too; they are clean (parking refuses a dirty
	// one) and not the run's result, so they are not reported.
	parked := a.drainParked(in.RunID)
	if len(remove)+len(parked) > 0 {
		// In bulk: one at a time took about 3 minutes for 1,000 worktrees.
		// A failure to list or prune leaves them for `codeswarm clean`, as
		// a failed single removal did: it never fails the run.
		var removed []string
		removed, out.Kept, err = repo.RemoveWorktrees(ctx, append(remove, parked...))
		if err != nil {
			out.Kept = remove
		} else {
			out.RemovedCount = len(removed) - countIn(removed, parked)
		}
	}
	if err := <-restored; err != nil {
		return FinishRunResult{}, fmt.Errorf("restore gc.auto: %w", err)
	}
	if in.Apply {
		out.Applied, out.ApplyError = applyResult(ctx, repo, in)
	}
	if in.DropEmptyBranch != "" && (in.IntegrationHead == "" || in.IntegrationHead == in.BaseCommit) {
		head, err := repo.RefSHA(ctx, "refs/heads/"+in.DropEmptyBranch)
		switch {
		case err != nil:
			return out, err
		case head == "":
			out.DroppedBranch = true // a retry after the delete
		case head == in.BaseCommit:
			if err := repo.DeleteBranch(ctx, in.DropEmptyBranch); err != nil {
				return out, err
			}
			out.DroppedBranch = true
		}
	}
	return out, nil
}

// worktreesToRemove is RemoveWorktrees and each of RemoveNames under
// WorktreesUnder. A name is one path element: nothing outside
// WorktreesUnder is named.
func (in FinishRunInput) worktreesToRemove() ([]string, error) {
	out := slices.Clip(in.RemoveWorktrees)
	if len(in.RemoveNames) > 0 && in.WorktreesUnder == "" {
		return nil, fmt.Errorf("finish run: %d worktree names and no directory they are under", len(in.RemoveNames))
	}
	for _, n := range in.RemoveNames {
		if n == "" || n == "." || n == ".." || strings.ContainsRune(n, filepath.Separator) {
			return nil, fmt.Errorf("finish run: worktree name %q is not one path element", n)
		}
		out = append(out, filepath.Join(in.WorktreesUnder, n))
	}
	return out, nil
}

// countIn is how many of xs are in set.
func countIn(xs, set []string) int {
	in := make(map[string]bool, len(set))
	for _, x := range set {
		in[x] = true
	}
	n := 0
	for _, x := range xs {
		if in[x] {
			n++
		}
	}
	return n
}

func applyResult(ctx context.Context, repo *gitops.Repo, in FinishRunInput) (bool, string) {
	switch {
	case in.BaseBranch == "":
		return false, "not applied: the repository had no branch checked out (detached HEAD)"
	case in.IntegrationHead == "" || in.IntegrationHead == in.BaseCommit:
		return false, "not applied: the integration branch has no changes"
	}
	if err := repo.FastForwardCheckedOut(ctx, in.BaseBranch, in.BaseCommit, in.IntegrationHead); err != nil {
		return false, "not applied: " + err.Error()
	}
	return true, ""
}

// runGit runs git through gitops, so activities get the same sanitised
// environment as every other codeswarm git command (no GIT_DIR or
// GIT_WORK_TREE of the worker's own environment, C locale, no prompts).
func runGit(ctx context.Context, dir string, args ...string) (string, error) {
	return gitops.Run(ctx, dir, args...)
}

func capLines(s string, maxLines, maxBytes int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	var b strings.Builder
	for i, l := range lines {
		if i >= maxLines || b.Len()+len(l) > maxBytes {
			fmt.Fprintf(&b, "... (%d more files)\n", len(lines)-i)
			break
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// SaveMovedWorkInput names the sub-agent whose uncommitted work a move
// saves on the host the run leaves.
type SaveMovedWorkInput struct {
	RunID     string `json:"run_id"`
	RepoPath  string `json:"repo_path"`
	SubtaskID string `json:"subtask_id"`
	Name      string `json:"name"`
	// Branch is the sub-agent's branch: its worktree is the one that has
	// it checked out.
	Branch string `json:"branch"`
	// ToHost is where the run moves, for the commit message.
	ToHost string `json:"to_host"`
}

// SaveMovedWorkResult says what was saved.
type SaveMovedWorkResult struct {
	// Commit is the branch's head after the save ("" if no worktree has
	// the branch checked out here).
	Commit string `json:"commit,omitempty"`
	// Changed: the worktree held uncommitted work, now committed.
	Changed      bool     `json:"changed"`
	FilesChanged []string `json:"files_changed,omitempty"`
	// FilesOmitted counts changed files beyond MaxListedPaths, not listed.
	FilesOmitted int `json:"files_changed_omitted,omitempty"`
}

// SaveMovedWork commits what a sub-agent had not committed yet in its
// worktree on this (the old) host, once the move has stopped it, so that
// its restart on the new host resumes from the branch with that work in
// it. It runs on the old host's workspace queue; a host that does not
// answer leaves the work on its disk (the move goes on without it).
func (a *Activities) SaveMovedWork(ctx context.Context, in SaveMovedWorkInput) (SaveMovedWorkResult, error) {
	defer keepAlive(ctx)()
	repo, err := gitops.Open(ctx, in.RepoPath)
	if err != nil {
		return SaveMovedWorkResult{}, fmt.Errorf("save moved work of %s: %w", in.SubtaskID, err)
	}
	list, err := repo.ListWorktrees(ctx)
	if err != nil {
		return SaveMovedWorkResult{}, fmt.Errorf("save moved work of %s: %w", in.SubtaskID, err)
	}
	for _, w := range list {
		if w.Branch != in.Branch {
			continue
		}
		msg := fmt.Sprintf("codeswarm: %s (work in progress, saved when the run moved to host %s)\n\nSubtask %s of run %s.", in.Name, in.ToHost, in.SubtaskID, in.RunID)
		res, err := gitops.CommitAll(ctx, w.Dir, w.Head, msg, trailers(in.RunID, in.SubtaskID))
		if err != nil {
			return SaveMovedWorkResult{}, fmt.Errorf("save moved work of %s: %w", in.SubtaskID, err)
		}
		out := SaveMovedWorkResult{Commit: res.Commit, Changed: res.Changed}
		out.FilesChanged, out.FilesOmitted = listPaths(res.FilesChanged)
		return out, nil
	}
	return SaveMovedWorkResult{}, nil
}
