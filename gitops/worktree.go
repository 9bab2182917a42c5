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

// Worktree is a working tree of the repository.
type Worktree struct {
	// Dir is the worktree's absolute path.
	Dir string `json:"dir"`
	// Branch is the short name of its branch, "" if HEAD is detached.
	Branch string `json:"branch"`
	// BaseCommit is the commit it was created from (set by AddWorktree).
	BaseCommit string `json:"base_commit,omitempty"`
	// Head is the commit its HEAD points at.
	Head string `json:"head"`
	// Claimed marks a worktree that AddWorktreeFrom made from a parked one:
	// every file is as the last sub-agent's commit left it (the park's
	// clean removed the rest) but for those the checkout rewrote.
	Claimed bool `json:"claimed,omitempty"`

	// initializing marks a worktree whose `git worktree add` never finished
	// (git leaves it locked with reason "initializing").
	initializing bool
	// locked marks a worktree git keeps locked (`git worktree lock`, or an
	// add that never finished): `git worktree prune` leaves its record.
	locked bool
}

// AddWorktree creates a worktree at dir on a new branch starting at
// startSHA (`git worktree add -b branch dir startSHA`). dir must be outside
// the repository's working tree; its parent is created as needed.
//
// It is idempotent: if dir already is a worktree on branch it is returned as
// is; if branch exists without a worktree (say, a retry after a crash, or a
// resumed subtask) it is checked out at its own head, not moved to startSHA.
func (r *Repo) AddWorktree(ctx context.Context, dir, branch, startSHA string) (Worktree, error) {
	return r.AddWorktreeFrom(ctx, dir, branch, startSHA, "")
}

// AddWorktreeFrom is AddWorktree that, in the common case (nothing at dir,
// no such branch), reuses the worktree ParkWorktree parked at parked instead
// of checking the whole tree out afresh. A parked worktree that cannot be
// claimed is left where it is and the worktree is created as AddWorktree
// does; parked "" is AddWorktree.
func (r *Repo) AddWorktreeFrom(ctx context.Context, dir, branch, startSHA, parked string) (Worktree, error) {
	abs, err := r.worktreePath(dir)
	if err != nil {
		return Worktree{}, err
	}
	if err := checkBranchName(ctx, branch); err != nil {
		return Worktree{}, err
	}
	if parked != "" {
		unlock := r.lockWorktrees()
		finish, ok := r.claimParked(ctx, abs, branch, startSHA, parked)
		unlock()
		if ok {
			// The checkout runs outside the lock: it touches only this
			// worktree's index and files. A failed one leaves a detached
			// worktree at abs, which the careful path below replaces.
			if wt, err := finish(); err == nil {
				return wt, nil
			}
		}
	}
	if wt, ok := r.addFresh(ctx, abs, branch, startSHA); ok {
		return wt, nil
	}
	defer r.lockWorktrees()()
	existing, err := r.listWorktrees(ctx)
	if err != nil {
		return Worktree{}, err
	}
	if wt, ok := findWorktree(existing, abs); ok {
		done, err := r.reuseWorktree(ctx, wt, branch)
		if err != nil {
			return Worktree{}, err
		}
		if done {
			wt.Dir, wt.BaseCommit = abs, startSHA
			return wt, nil
		}
	} else if wt, ok := findBranch(existing, branch); ok {
		return Worktree{}, fmt.Errorf("add worktree %q: branch %q is already checked out at %q", abs, branch, wt.Dir)
	}
	return r.createWorktree(ctx, abs, branch, startSHA)
}

// initializingReason is the lock reason of a worktree whose files are
// not checked out yet; git uses the same one while `git worktree add` runs,
// and the careful path of AddWorktreeFrom removes such a worktree and
// creates it again.
const initializingReason = "initializing"

// addFresh is AddWorktree's common case: nothing at dir and no such branch
// yet. Only `git worktree add -b --no-checkout`, which registers the
// worktree and creates the branch, runs under the worktree lock, which
// every other starting (or claiming, or parking) sub-agent waits for; the
// checkout of the whole tree (seconds for a large repository) runs outside
// it, touching only this worktree's index and files. Until the checkout is
// done the worktree stays locked as "initializing", so a crash in between
// leaves what a crash inside `git worktree add` would, which the careful
// path clears. Any failure reports !ok and the careful path finds out what
// is there: git checks -b before it creates anything.
func (r *Repo) addFresh(ctx context.Context, abs, branch, startSHA string) (Worktree, bool) {
	if _, err := os.Lstat(abs); !errors.Is(err, fs.ErrNotExist) {
		return Worktree{}, false
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return Worktree{}, false
	}
	unlock := r.lockWorktrees()
	_, err := git(ctx, r.Root, runOpts{identity: true}, "worktree", "add", "--quiet", "--no-track", "--no-checkout",
		"--lock", "--reason", initializingReason, "-b", branch, abs, startSHA)
	unlock()
	if err != nil {
		return Worktree{}, false
	}
	gd, err := worktreeGitDir(abs, false)
	if err == nil {
		_, err = git(ctx, abs, runOpts{gitDir: gd}, "read-tree", "--reset", "-u", "HEAD")
	}
	if err == nil {
		// `git worktree unlock` in a process of its own does no more.
		err = os.Remove(filepath.Join(gd, "locked"))
	}
	if err != nil {
		return Worktree{}, false
	}
	return Worktree{Dir: abs, Branch: branch, BaseCommit: startSHA, Head: startSHA}, true
}

// reuseWorktree decides what to do with a worktree already registered at
// the target path: done=true means it is usable as is; done=false means it
// was a leftover of a crashed attempt and has been cleared for re-creation.
func (r *Repo) reuseWorktree(ctx context.Context, wt Worktree, branch string) (done bool, err error) {
	if wt.Branch == "" && !wt.locked {
		// Detached: a parked worktree whose claim stopped between the
		// move and the checkout (a sub-agent's worktree is always on its
		// branch). Its files are a parked tree's, not this branch's.
		if _, err := git(ctx, r.Root, runOpts{}, "worktree", "remove", "--force", "--force", wt.Dir); err != nil {
			return false, fmt.Errorf("clear half-claimed worktree %q: %w", wt.Dir, err)
		}
		return false, r.pruneWorktrees(ctx)
	}
	if wt.Branch != branch {
		return false, fmt.Errorf("add worktree %q: it is already a worktree on branch %q, not %q", wt.Dir, wt.Branch, branch)
	}
	_, statErr := os.Stat(wt.Dir)
	if !wt.initializing && statErr == nil {
		return true, nil
	}
	if wt.initializing && statErr == nil {
		// Double force removes a locked worktree.
		if _, err := git(ctx, r.Root, runOpts{}, "worktree", "remove", "--force", "--force", wt.Dir); err != nil {
			return false, fmt.Errorf("clear half-created worktree %q: %w", wt.Dir, err)
		}
	}
	if _, err := git(ctx, r.Root, runOpts{}, "worktree", "prune"); err != nil {
		return false, fmt.Errorf("prune worktrees: %w", err)
	}
	return false, nil
}

// createWorktree runs `git worktree add`, creating branch at startSHA unless
// the branch already exists.
func (r *Repo) createWorktree(ctx context.Context, dir, branch, startSHA string) (Worktree, error) {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return Worktree{}, fmt.Errorf("add worktree %q: %w", dir, err)
	}
	head, err := r.RefSHA(ctx, branch)
	if err != nil {
		return Worktree{}, err
	}
	args := []string{"worktree", "add", "--quiet", dir, branch}
	if head == "" {
		head = startSHA
		args = []string{"worktree", "add", "--quiet", "--no-track", "-b", branch, dir, startSHA}
	}
	if _, err := git(ctx, r.Root, runOpts{identity: true}, args...); err != nil {
		return Worktree{}, fmt.Errorf("add worktree %q on branch %q: %w", dir, branch, err)
	}
	return Worktree{Dir: dir, Branch: branch, BaseCommit: startSHA, Head: head}, nil
}

// RemoveWorktree removes the worktree at dir and prunes stale worktree
// records. It refuses a worktree with uncommitted or untracked changes
// (ErrDirtyWorktree) unless force. A missing dir is not an error. The
// worktree's branch is kept.
func (r *Repo) RemoveWorktree(ctx context.Context, dir string, force bool) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("remove worktree %q: %w", dir, err)
	}
	defer r.lockWorktrees()()
	if _, err := os.Stat(abs); errors.Is(err, fs.ErrNotExist) {
		return r.pruneWorktrees(ctx)
	}
	existing, err := r.listWorktrees(ctx)
	if err != nil {
		return err
	}
	wt, ok := findWorktree(existing, abs)
	if !ok {
		return fmt.Errorf("remove worktree %q: not a worktree of %q", dir, r.Root)
	}
	if !force {
		clean, err := isClean(ctx, wt.Dir)
		if err != nil {
			return err
		}
		if !clean {
			return errorf(ErrDirtyWorktree, "remove worktree %q: it has uncommitted changes", wt.Dir)
		}
	}
	// Force here only skips git's own cleanliness check (done above); double
	// force also removes a worktree left locked by a crashed add.
	if _, err := git(ctx, r.Root, runOpts{}, "worktree", "remove", "--force", "--force", wt.Dir); err != nil {
		return fmt.Errorf("remove worktree %q: %w", wt.Dir, err)
	}
	return r.pruneWorktrees(ctx)
}

func (r *Repo) pruneWorktrees(ctx context.Context) error {
	if _, err := git(ctx, r.Root, runOpts{}, "worktree", "prune"); err != nil {
		return fmt.Errorf("prune worktrees of %q: %w", r.Root, err)
	}
	return nil
}

// ListWorktrees returns every worktree of the repository, the main one
// first. BaseCommit is not known here and stays empty.
func (r *Repo) ListWorktrees(ctx context.Context) ([]Worktree, error) {
	defer r.lockWorktrees()()
	return r.listWorktrees(ctx)
}

// AddDetachedWorktree checks commit out at dir with a detached HEAD (a
// scratch tree, e.g. for verification); dir must not exist yet.
func (r *Repo) AddDetachedWorktree(ctx context.Context, dir, commit string) error {
	abs, err := r.worktreePath(dir)
	if err != nil {
		return err
	}
	defer r.lockWorktrees()()
	if _, err := git(ctx, r.Root, runOpts{}, "worktree", "add", "--quiet", "--detach", abs, commit); err != nil {
		return fmt.Errorf("add worktree %q at %s: %w", abs, shortSHA(commit), err)
	}
	return nil
}

// listWorktrees is ListWorktrees for callers holding the worktree lock.
func (r *Repo) listWorktrees(ctx context.Context) ([]Worktree, error) {
	out, err := git(ctx, r.Root, runOpts{}, "worktree", "list", "--porcelain", "-z")
	if err != nil {
		return nil, fmt.Errorf("list worktrees of %q: %w", r.Root, err)
	}
	return parseWorktreeList(out), nil
}

// parseWorktreeList reads `git worktree list --porcelain -z`: attributes are
// NUL-terminated and an empty attribute ends each worktree.
func parseWorktreeList(out []byte) []Worktree {
	var (
		list []Worktree
		cur  *Worktree
	)
	for _, attr := range strings.Split(string(out), "\x00") {
		key, val, _ := strings.Cut(attr, " ")
		switch key {
		case "worktree":
			list = append(list, Worktree{Dir: val})
			cur = &list[len(list)-1]
		case "HEAD":
			if cur != nil {
				cur.Head = val
			}
		case "branch":
			if cur != nil {
				cur.Branch = shortBranch(val)
			}
		case "locked":
			if cur != nil {
				cur.locked = true
				cur.initializing = val == initializingReason
			}
		}
	}
	return list
}

// IsClean reports whether the working tree at dir (any worktree, or Root)
// has no staged, unstaged or untracked (non-ignored) changes.
func (r *Repo) IsClean(ctx context.Context, dir string) (bool, error) {
	return isClean(ctx, dir)
}

func isClean(ctx context.Context, dir string) (bool, error) {
	gitDir, err := worktreeGitDir(dir, true)
	if err != nil {
		return false, fmt.Errorf("status of %q: %w", dir, err)
	}
	out, err := git(ctx, dir, runOpts{gitDir: gitDir}, "status", "--porcelain", "-z", "--ignore-submodules=all")
	if err != nil {
		return false, fmt.Errorf("status of %q: %w", dir, err)
	}
	return len(out) == 0, nil
}

// worktreePath makes dir absolute and refuses a path inside the user's
// working tree, where it would show up in their `git status`.
func (r *Repo) worktreePath(dir string) (string, error) {
	if dir == "" {
		return "", errors.New("add worktree: empty directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("add worktree %q: %w", dir, err)
	}
	root := realPath(r.Root)
	if rel, err := filepath.Rel(root, realPath(abs)); err == nil && !strings.HasPrefix(rel, "..") {
		return "", fmt.Errorf("add worktree %q: directory is inside the repository %q; worktrees must live outside it", dir, r.Root)
	}
	return abs, nil
}

// findWorktree finds the worktree registered at dir, comparing real paths
// because git records resolved paths (/tmp may be a symlink).
func findWorktree(list []Worktree, dir string) (Worktree, bool) {
	want := realPath(dir)
	for _, wt := range list {
		if realPath(wt.Dir) == want {
			return wt, true
		}
	}
	return Worktree{}, false
}

// findBranch finds the worktree that has branch checked out.
func findBranch(list []Worktree, branch string) (Worktree, bool) {
	for _, wt := range list {
		if wt.Branch == branch {
			return wt, true
		}
	}
	return Worktree{}, false
}

// realPath resolves symlinks in the longest existing prefix of p, so paths
// that do not exist yet still compare equal to their resolved form.
func realPath(p string) string {
	p = filepath.Clean(p)
	if resolved, err := filepath.EvalSymlinks(p); err == nil {
		return resolved
	}
	parent := filepath.Dir(p)
	if parent == p {
		return p
	}
	return filepath.Join(realPath(parent), filepath.Base(p))
}
