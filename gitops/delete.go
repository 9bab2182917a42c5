package gitops

import (
	"context"
	"fmt"
)

// DeleteBranch deletes branch whatever it holds (codeswarm clean --all, on
// the user's request). A missing branch is success; a branch checked out in
// some worktree is refused.
func (r *Repo) DeleteBranch(ctx context.Context, branch string) error {
	ref, head, err := r.deletable(ctx, branch)
	if err != nil || head == "" {
		return err
	}
	return r.deleteRef(ctx, ref, head)
}

// deletable returns branch's full ref and head ("" when it does not
// exist), refusing a branch checked out in some worktree.
func (r *Repo) deletable(ctx context.Context, branch string) (ref, head string, err error) {
	ref = fullRef(branch)
	head, err = r.RefSHA(ctx, ref)
	if err != nil || head == "" {
		return ref, "", err
	}
	wts, err := r.ListWorktrees(ctx)
	if err != nil {
		return ref, "", err
	}
	if wt, ok := findBranch(wts, shortBranch(ref)); ok {
		return ref, "", fmt.Errorf("delete branch %q: it is checked out at %q", branch, wt.Dir)
	}
	return ref, head, nil
}
