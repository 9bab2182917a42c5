package gitops

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// finishedWorktree is a sub-agent's worktree after its work was committed:
// a.txt changed on its branch, plus what an agent leaves that git ignores
// (build output, a symlink out of the worktree, a nested repository).
func finishedWorktree(t *testing.T, tr *testRepo, dir, branch string) (commit, outside string) {
	t.Helper()
	ctx := context.Background()
	if _, err := tr.repo.AddWorktree(ctx, dir, branch, tr.head("main")); err != nil {
		t.Fatalf("AddWorktree: %v", err)
	}
	writeFile(t, filepath.Join(dir, ".gitignore"), "build/\n")
	writeFile(t, filepath.Join(dir, "a.txt"), "alpha, edited by the agent\n")
	runGit(t, dir, nil, "add", "-A")
	runGit(t, dir, nil, "-c", "user.name=a", "-c", "user.email=a@b", "commit", "--quiet", "-m", "agent work")
	outside = filepath.Join(t.TempDir(), "outside")
	writeFile(t, filepath.Join(outside, "keep.txt"), "not the worktree's\n")
	writeFile(t, filepath.Join(dir, "build", "out.bin"), "built\n")
	if err := os.Symlink(outside, filepath.Join(dir, "build", "link")); err != nil {
		t.Fatal(err)
	}
	runGit(t, "", nil, "init", "--quiet", filepath.Join(dir, "build", "nested"))
	return runGit(t, dir, nil, "rev-parse", "HEAD"), outside
}

// TestParkAndReuseWorktree: a finished worktree, parked, becomes the next
// sub-agent's worktree on its own branch at its start commit, with exactly
// the start commit's files; the finished branch keeps its commit, and what
// the agent left ignored is gone without anything outside being touched.
func TestParkAndReuseWorktree(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t)
	tr.dirtyUserTree()
	work := t.TempDir()
	first := filepath.Join(work, "sub-1")
	commit, outside := finishedWorktree(t, tr, first, "codeswarm/sub-1")
	later := tr.commitOn("main", "main", map[string]string{"c.txt": "merged by another\n"})

	parked := filepath.Join(work, ".state", "pool", "1")
	if err := tr.repo.ParkWorktree(ctx, first, parked); err != nil {
		t.Fatalf("ParkWorktree: %v", err)
	}
	if _, err := os.Lstat(first); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the finished worktree's path still exists (%v)", err)
	}
	if _, err := os.Lstat(filepath.Join(parked, "build")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the ignored build/ survived parking (%v)", err)
	}
	if got := readFile(t, filepath.Join(outside, "keep.txt")); got != "not the worktree's\n" {
		t.Errorf("a file the agent's symlink pointed at changed: %q", got)
	}
	if got := tr.head("codeswarm/sub-1"); got != commit {
		t.Errorf("the finished branch is at %s, want its commit %s", got, commit)
	}
	if wt, ok := findWorktree(mustList(t, tr.repo), parked); !ok || wt.Branch != "" || wt.Head != commit {
		t.Errorf("parked worktree %+v (registered: %v); want it detached at %s", wt, ok, commit)
	}

	next := filepath.Join(work, "sub-2")
	wt, err := tr.repo.AddWorktreeFrom(ctx, next, "codeswarm/sub-2", later, parked)
	if err != nil {
		t.Fatalf("AddWorktreeFrom: %v", err)
	}
	if want := (Worktree{Dir: next, Branch: "codeswarm/sub-2", BaseCommit: later, Head: later, Claimed: true}); wt != want {
		t.Errorf("AddWorktreeFrom = %+v, want %+v", wt, want)
	}
	if _, err := os.Lstat(parked); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the parked worktree is still in the pool (%v)", err)
	}
	for file, want := range map[string]string{"a.txt": "alpha\n", "b.txt": "bravo\n", "c.txt": "merged by another\n"} {
		if got := readFile(t, filepath.Join(next, file)); got != want {
			t.Errorf("%s = %q, want the start commit's %q", file, got, want)
		}
	}
	if _, err := os.Lstat(filepath.Join(next, ".gitignore")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the finished sub-agent's .gitignore is in the new worktree (%v)", err)
	}
	if got := runGit(t, next, nil, "status", "--porcelain"); got != "" {
		t.Errorf("the reused worktree is not clean:\n%s", got)
	}
	if got := runGit(t, next, nil, "symbolic-ref", "--short", "HEAD"); got != "codeswarm/sub-2" {
		t.Errorf("the reused worktree is on %q", got)
	}
	list := mustList(t, tr.repo)
	if len(list) != 2 || realPath(list[1].Dir) != realPath(next) {
		t.Errorf("worktrees %+v, want the main one and %s", list, next)
	}
	tr.assertUserUntouched()
}

// TestParkWorktreeRefuses: a worktree with uncommitted work, or whose .git
// file leads somewhere else, is not parked and stays where it was.
func TestParkWorktreeRefuses(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name  string
		spoil func(t *testing.T, dir string)
		want  error
	}{
		{"untracked file", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "new.txt"), "not committed\n")
		}, ErrDirtyWorktree},
		{"modified file", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "b.txt"), "not committed\n")
		}, ErrDirtyWorktree},
		{".git points at a planted repository", func(t *testing.T, dir string) {
			planted := filepath.Join(t.TempDir(), "planted")
			runGit(t, "", nil, "init", "--quiet", planted)
			writeFile(t, filepath.Join(dir, ".git"), "gitdir: "+filepath.Join(planted, ".git")+"\n")
		}, ErrUntrustedGitDir},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr := newTestRepo(t)
			dir := filepath.Join(t.TempDir(), "sub")
			if _, err := tr.repo.AddWorktree(ctx, dir, "codeswarm/sub", tr.head("main")); err != nil {
				t.Fatal(err)
			}
			c.spoil(t, dir)
			to := filepath.Join(t.TempDir(), "pool", "1")
			if err := tr.repo.ParkWorktree(ctx, dir, to); !errors.Is(err, c.want) {
				t.Fatalf("ParkWorktree = %v, want %v", err, c.want)
			}
			if _, err := os.Lstat(to); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("something was parked at %s (%v)", to, err)
			}
			if _, err := os.Lstat(filepath.Join(dir, "a.txt")); err != nil {
				t.Errorf("the refused worktree lost its files: %v", err)
			}
		})
	}
}

// TestAddWorktreeFromFallsBack: a parked path that is not there, and a claim
// that stopped after the move (a detached worktree at the sub-agent's
// path), both end in a worktree on the branch at the start commit.
func TestAddWorktreeFromFallsBack(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t)
	work := t.TempDir()
	base := tr.head("main")

	wt, err := tr.repo.AddWorktreeFrom(ctx, filepath.Join(work, "a"), "codeswarm/a", base, filepath.Join(work, "pool", "gone"))
	if err != nil || wt.Head != base || wt.Branch != "codeswarm/a" {
		t.Fatalf("AddWorktreeFrom with a missing parked worktree = %+v, %v", wt, err)
	}

	first := filepath.Join(work, "first")
	finishedWorktree(t, tr, first, "codeswarm/first")
	parked := filepath.Join(work, "pool", "1")
	if err := tr.repo.ParkWorktree(ctx, first, parked); err != nil {
		t.Fatal(err)
	}
	half := filepath.Join(work, "b")
	runGit(t, tr.dir, nil, "worktree", "move", parked, half) // the claim's move, then a crash
	wt, err = tr.repo.AddWorktree(ctx, half, "codeswarm/b", base)
	if err != nil || wt.Head != base || wt.Branch != "codeswarm/b" {
		t.Fatalf("AddWorktree over a half-claimed worktree = %+v, %v", wt, err)
	}
	if got := readFile(t, filepath.Join(half, "a.txt")); got != "alpha\n" {
		t.Errorf("a.txt = %q, want the start commit's", got)
	}
	if got := runGit(t, half, nil, "status", "--porcelain", "--ignored"); strings.TrimSpace(got) != "" {
		t.Errorf("the recreated worktree is not clean:\n%s", got)
	}

	// A parked worktree written to after parking: the two-way read-tree
	// refuses it (a changed file it would replace, an untracked file where
	// the start commit has one), and the claim forces the start commit.
	second := filepath.Join(work, "second")
	finishedWorktree(t, tr, second, "codeswarm/second")
	parked = filepath.Join(work, "pool", "2")
	if err := tr.repo.ParkWorktree(ctx, second, parked); err != nil {
		t.Fatal(err)
	}
	later := tr.commitOn("main", "main", map[string]string{"c.txt": "merged by another\n", "n.txt": "new on main\n"})
	writeFile(t, filepath.Join(parked, "c.txt"), "written after parking\n")
	writeFile(t, filepath.Join(parked, "n.txt"), "untracked, written after parking\n")
	c := filepath.Join(work, "c")
	wt, err = tr.repo.AddWorktreeFrom(ctx, c, "codeswarm/c", later, parked)
	if err != nil || !wt.Claimed || wt.Head != later || wt.Branch != "codeswarm/c" {
		t.Fatalf("AddWorktreeFrom a parked worktree written to = %+v, %v; want it claimed at %s", wt, err, later)
	}
	for file, want := range map[string]string{"a.txt": "alpha\n", "c.txt": "merged by another\n", "n.txt": "new on main\n"} {
		if got := readFile(t, filepath.Join(c, file)); got != want {
			t.Errorf("%s = %q, want the start commit's %q", file, got, want)
		}
	}
	if got := runGit(t, c, nil, "status", "--porcelain"); got != "" {
		t.Errorf("the claimed worktree is not clean:\n%s", got)
	}
}
