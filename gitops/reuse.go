package gitops

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// ReuseTree makes the worktree at dir hold tree as one commit whose parent
// is baseSHA, checked out: the result cache's hit reuses a finished
// sub-agent's work (its commit's tree) on a new base with the same tree, so
// the commit brings exactly the change it brought then, and merges as any
// sub-agent's commit does. The worktree must be clean at baseSHA (it was
// just created there); a retry that finds HEAD already a child of baseSHA
// with that tree reports it again instead of committing twice. A tree equal
// to the base's is no change: the worktree stays at baseSHA.
//
// The commit is made with commit-tree (no hooks, codeswarm's identity) and
// checked out with `reset --hard`, both through the hardened runner with the
// worktree's checked git directory (see worktreeGitDir).
func ReuseTree(ctx context.Context, dir, baseSHA, tree, message string, trailers [][2]string) (CommitResult, error) {
	if baseSHA == "" || tree == "" {
		return CommitResult{}, errors.New("reuse tree: empty base commit or tree")
	}
	gitDir, err := worktreeGitDir(dir, false)
	if err != nil {
		return CommitResult{}, fmt.Errorf("reuse tree: %w", err)
	}
	opts := runOpts{gitDir: gitDir}
	out, err := git(ctx, dir, opts, "rev-parse", "HEAD", "HEAD^{tree}")
	if err != nil {
		return CommitResult{}, fmt.Errorf("reuse tree: read HEAD of %q: %w", dir, err)
	}
	f := strings.Fields(string(out))
	if len(f) != 2 {
		return CommitResult{}, fmt.Errorf("reuse tree: unexpected rev-parse output %q", out)
	}
	head, headTree := f[0], f[1]
	if head != baseSHA {
		// A retry after the reset landed: HEAD is the reused commit.
		parent, perr := git(ctx, dir, opts, "rev-parse", "--verify", "--quiet", "HEAD^1")
		if perr == nil && strings.TrimSpace(string(parent)) == baseSHA && headTree == tree {
			return worktreeResult(ctx, dir, baseSHA, opts)
		}
		return CommitResult{}, fmt.Errorf("reuse tree: worktree %q is at %s, not at its base %s", dir, shortSHA(head), shortSHA(baseSHA))
	}
	if headTree == tree {
		// The reused work changed nothing (a read-only sub-agent's): no
		// empty commit, which would count as a change.
		return worktreeResult(ctx, dir, baseSHA, opts)
	}
	commitOpts := opts
	commitOpts.identity, commitOpts.stdin = true, strings.NewReader(formatMessage(message, trailers))
	out, err = git(ctx, dir, commitOpts, "commit-tree", tree, "-p", baseSHA, "-F", "-")
	if err != nil {
		return CommitResult{}, fmt.Errorf("reuse tree: commit-tree %s: %w", shortSHA(tree), err)
	}
	commit := strings.TrimSpace(string(out))
	if _, err := git(ctx, dir, runOpts{
		gitDir:   gitDir,
		identity: true,
	}, "reset", "--quiet", "--hard", commit); err != nil {
		return CommitResult{}, fmt.Errorf("reuse tree: check out %s in %q: %w", shortSHA(commit), dir, err)
	}
	return worktreeResult(ctx, dir, baseSHA, opts)
}
