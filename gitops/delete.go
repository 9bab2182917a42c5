package gitops

import (
	"context"
	"fmt"
)

// DeleteBranch deletes branch whatever it holds (codeswarm clean --all, on
// the user's request). A missing branch is success; a branch checked out in
// some worktree is refused.
func (r *Repo) DeleteBranch(ctx context.Context, branch string) error {
	ref := fullRef(branch)
	head, err := r.RefSHA(ctx, ref)
	if err != nil || head == "" {
		return err
	}
	wts, err := r.ListWorktrees(ctx)
	if err != nil {
		return err
	}
	if wt, ok := findBranch(wts, shortBranch(ref)); ok {
		return fmt.Errorf("delete branch %q: it is checked out at %q", branch, wt.Dir)
	}
	return r.deleteRef(ctx, ref, head)
}
