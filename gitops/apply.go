package gitops

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// FastForwardCheckedOut fast-forwards the user's checked-out branch to
// newSHA (`git merge --ff-only` in Root); it is what --apply does. It refuses,
// with a distinct error each, when:
//   - branch is not the branch checked out in Root (ErrNotCheckedOut);
//   - branch no longer points at expectedOld (ErrBaseMoved);
//   - tracked files have uncommitted changes, or an untracked file sits where
//     the update adds a file (ErrDirtyWorktree);
//   - newSHA does not descend from expectedOld (ErrNotFastForward).
//
// Untracked files elsewhere are left alone and do not block the update:
// nothing would touch them. A branch already at newSHA is success (retry).
func (r *Repo) FastForwardCheckedOut(ctx context.Context, branch, expectedOld, newSHA string) error {
	head, err := r.checkApplyTarget(ctx, branch, expectedOld, newSHA)
	if err != nil || head == newSHA {
		return err
	}
	ff, err := r.isAncestor(ctx, expectedOld, newSHA)
	if err != nil {
		return err
	}
	if !ff {
		return errorf(ErrNotFastForward, "apply to %q: %s does not descend from %s", branch, shortSHA(newSHA), shortSHA(expectedOld))
	}
	if err := r.checkApplyClean(ctx, expectedOld, newSHA); err != nil {
		return err
	}
	if _, err := git(ctx, r.Root, runOpts{identity: true}, "merge", "--ff-only", "--quiet", "--no-edit", newSHA); err != nil {
		return fmt.Errorf("fast-forward %q to %s: %w", branch, shortSHA(newSHA), err)
	}
	return nil
}

// checkApplyTarget checks that branch is checked out in Root and sits at
// expectedOld or, after an earlier successful attempt, at newSHA; it
// returns the branch head.
func (r *Repo) checkApplyTarget(ctx context.Context, branch, expectedOld, newSHA string) (string, error) {
	current, err := r.CurrentBranch(ctx)
	if err != nil {
		return "", err
	}
	if current != shortBranch(branch) {
		return "", errorf(ErrNotCheckedOut, "apply to %q: %q has %s checked out", branch, r.Root, describeBranch(current))
	}
	head, err := r.RefSHA(ctx, branch)
	if err != nil {
		return "", err
	}
	if head != expectedOld && head != newSHA {
		return "", errorf(ErrBaseMoved, "apply to %q: branch is at %s, the run started from %s", branch, shortSHA(head), shortSHA(expectedOld))
	}
	return head, nil
}

// checkApplyClean refuses tracked changes in Root and untracked files that
// the update from oldSHA to newSHA would have to overwrite.
func (r *Repo) checkApplyClean(ctx context.Context, oldSHA, newSHA string) error {
	out, err := git(ctx, r.Root, runOpts{}, "status", "--porcelain", "-z", "--untracked-files=no")
	if err != nil {
		return fmt.Errorf("status of %q: %w", r.Root, err)
	}
	if dirty := statusPaths(out); len(dirty) > 0 {
		return errorf(ErrDirtyWorktree, "apply in %q: uncommitted changes to %s", r.Root, summarize(dirty))
	}
	added, err := git(ctx, r.Root, runOpts{}, "diff-tree", "-r", "--name-only", "-z", "--no-renames", "--diff-filter=A", oldSHA, newSHA)
	if err != nil {
		return fmt.Errorf("diff %s..%s: %w", shortSHA(oldSHA), shortSHA(newSHA), err)
	}
	var collide []string
	for _, p := range splitNUL(added) {
		if _, err := os.Lstat(filepath.Join(r.Root, filepath.FromSlash(p))); !errors.Is(err, fs.ErrNotExist) {
			collide = append(collide, p)
		}
	}
	if len(collide) > 0 {
		return errorf(ErrDirtyWorktree, "apply in %q: untracked files would be overwritten: %s", r.Root, summarize(collide))
	}
	return nil
}

// DeleteBranchIfMerged deletes branch if its head is reachable from at least
// one of the into refs (branch names, refs or SHAs); otherwise it refuses
// with ErrNotMerged. A missing branch is success (retry); a branch checked
// out in some worktree is refused.
func (r *Repo) DeleteBranchIfMerged(ctx context.Context, branch string, into []string) error {
	ref, head, err := r.deletable(ctx, branch)
	if err != nil || head == "" {
		return err
	}
	for _, target := range into {
		sha, err := r.resolveCommit(ctx, target)
		if errors.Is(err, ErrUnknownRef) {
			continue
		}
		if err != nil {
			return err
		}
		merged, err := r.isAncestor(ctx, head, sha)
		if err != nil {
			return err
		}
		if merged {
			return r.deleteRef(ctx, ref, head)
		}
	}
	return errorf(ErrNotMerged, "delete branch %q: its head %s is not merged into any of [%s]",
		branch, shortSHA(head), strings.Join(into, ", "))
}

// deleteRef deletes ref only if it still points at old.
func (r *Repo) deleteRef(ctx context.Context, ref, old string) error {
	if _, err := git(ctx, r.Root, runOpts{identity: true}, "update-ref", "-d", ref, old); err != nil {
		cur, rerr := r.RefSHA(ctx, ref)
		if rerr == nil && cur == "" {
			return nil
		}
		if rerr == nil && cur != old {
			return errorf(ErrRefMoved, "delete %s: ref moved to %s", ref, shortSHA(cur))
		}
		return fmt.Errorf("delete %s: %w", ref, err)
	}
	return nil
}

// statusPaths extracts paths from `git status --porcelain -z` output. A
// rename entry is followed by its source path, which is skipped.
func statusPaths(out []byte) []string {
	var paths []string
	fields := strings.Split(string(out), "\x00")
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		if len(f) < 4 {
			continue
		}
		paths = append(paths, f[3:])
		if f[0] == 'R' || f[0] == 'C' {
			i++
		}
	}
	return paths
}

// summarize lists up to 10 paths for an error message.
func summarize(paths []string) string {
	const limit = 10
	if len(paths) <= limit {
		return strings.Join(paths, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(paths[:limit], ", "), len(paths)-limit)
}

func describeBranch(name string) string {
	if name == "" {
		return "a detached HEAD"
	}
	return fmt.Sprintf("branch %q", name)
}
