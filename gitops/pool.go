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

// A parked worktree is a finished sub-agent's worktree made ready for the
// next one: detached from its branch (which keeps the commit), emptied of
// everything git does not track, and moved out of the sub-agent's path.
// Checking a parked worktree out at a new start commit rewrites only the
// files that differ, where `git worktree add` writes every file of the
// tree (BENCHMARKS.md: 20 ms against 2.2 s for 10,000 files), and the add
// runs under the repository's worktree lock, so it bounded how fast
// sub-agents could start.

// ParkWorktree readies the clean worktree at dir for reuse and moves it to
// to (which must not exist). The worktree is hostile input: its .git file
// must lead to its own record in this repository, it must have no
// uncommitted or untracked change (its work is committed, or the user
// would want to see it), and `git clean -ffdx` then removes what the
// sub-agent left that git ignores (build output, nested repositories),
// if the status listed any.
// Nothing in the worktree is run or followed: every git command is
// hardened and names the worktree's git directory itself. On an error the
// worktree is where it was or at to, registered and with its branch; the
// caller removes it as it would have without parking.
func (r *Repo) ParkWorktree(ctx context.Context, dir, to string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("park worktree %q: %w", dir, err)
	}
	dest, err := r.worktreePath(to)
	if err != nil {
		return err
	}
	gd, err := worktreeGitDir(abs, false)
	if err != nil {
		return fmt.Errorf("park worktree %q: %w", dir, err)
	}
	if realPath(filepath.Dir(filepath.Dir(gd))) != realPath(r.commonDir()) {
		return errorf(ErrUntrustedGitDir, "park worktree %q: it is not a worktree of %q", dir, r.Root)
	}
	opts := runOpts{gitDir: gd, identity: true}
	// One status that lists ignored files too: the park needs a clean
	// only when there are some, and most sub-agents leave none.
	out, err := git(ctx, abs, opts, "status", "--porcelain", "-z", "--ignore-submodules=all", "--ignored")
	if err != nil {
		return fmt.Errorf("park worktree %q: status: %w", dir, err)
	}
	ignored := false
	for _, entry := range splitNUL(out) {
		if !strings.HasPrefix(entry, "!! ") {
			return errorf(ErrDirtyWorktree, "park worktree %q: it has uncommitted changes", dir)
		}
		ignored = true
	}
	// Detach HEAD at its commit by writing HEAD itself: `checkout --detach`
	// would compare every file with the index once more.
	if _, err := git(ctx, abs, opts, "update-ref", "--no-deref", "-m", "codeswarm: park", "HEAD", "HEAD"); err != nil {
		return fmt.Errorf("park worktree %q: %w", dir, err)
	}
	if ignored {
		if _, err := git(ctx, abs, opts, "clean", "-ffdxq"); err != nil {
			return fmt.Errorf("park worktree %q: %w", dir, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return fmt.Errorf("park worktree %q: %w", dir, err)
	}
	defer r.lockWorktrees()()
	if _, err := git(ctx, r.Root, runOpts{}, "worktree", "move", abs, dest); err != nil {
		return fmt.Errorf("park worktree %q: %w", dir, err)
	}
	return nil
}

// claimParked makes the parked worktree at parked the worktree at abs on a
// new branch at startSHA: moved there under the worktree lock (held by the
// caller), then, once the lock is released (the returned function), checked
// out with -f, which rewrites what differs. ok=false: parked was not usable
// (gone, moved, not parked by ParkWorktree) and nothing changed at abs.
// A crash between the move and the checkout leaves a detached worktree at
// abs, which AddWorktree's careful path recreates.
func (r *Repo) claimParked(ctx context.Context, abs, branch, startSHA, parked string) (finish func() (Worktree, error), ok bool) {
	if _, err := os.Lstat(abs); !errors.Is(err, fs.ErrNotExist) {
		return nil, false
	}
	src, err := filepath.Abs(parked)
	if err != nil {
		return nil, false
	}
	if head, err := r.RefSHA(ctx, branch); err != nil || head != "" {
		return nil, false
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return nil, false
	}
	if _, err := git(ctx, r.Root, runOpts{}, "worktree", "move", src, abs); err != nil {
		return nil, false
	}
	return func() (Worktree, error) {
		gd, err := worktreeGitDir(abs, false)
		if err == nil {
			err = switchParked(ctx, abs, runOpts{gitDir: gd, identity: true}, branch, startSHA)
		}
		if err != nil {
			return Worktree{}, fmt.Errorf("check out parked worktree %q at %s: %w", abs, shortSHA(startSHA), err)
		}
		return Worktree{Dir: abs, Branch: branch, BaseCommit: startSHA, Head: startSHA, Claimed: true}, nil
	}, true
}

// switchParked checks the parked worktree at abs out at startSHA on the new
// branch. ParkWorktree left it clean, so a two-way `read-tree -m -u` from
// its HEAD rewrites just the files that differ and compares no other file
// with the index (`checkout` compares all of them: a third of a claim's
// time in a 10,000-file tree); the branch is then created and HEAD pointed
// at it. Should the worktree not be clean after all, read-tree refuses
// before it writes anything, and `checkout --force` makes it so. A claim
// stopped in between leaves a detached worktree, which AddWorktree's
// careful path recreates, at the branch if it was created.
func switchParked(ctx context.Context, abs string, opts runOpts, branch, startSHA string) error {
	ref := "refs/heads/" + branch
	if _, err := git(ctx, abs, opts, "read-tree", "-m", "-u", "HEAD", startSHA); err != nil {
		_, err = git(ctx, abs, opts, "checkout", "--quiet", "--force", "--no-track", "-b", branch, startSHA)
		return err
	}
	if _, err := git(ctx, abs, opts, "update-ref", "-m", "codeswarm: claim", ref, startSHA, ""); err != nil {
		return err
	}
	_, err := git(ctx, abs, opts, "symbolic-ref", "-m", "codeswarm: claim", "HEAD", ref)
	return err
}

// commonDir is the repository's shared git directory.
func (r *Repo) commonDir() string {
	if r.CommonDir != "" {
		return r.CommonDir
	}
	return filepath.Join(r.Root, ".git")
}
