package gitops

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestAddWorktree(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t)
	base := tr.head("HEAD")
	later := tr.commitOn("main-later", "main", map[string]string{"a.txt": "later\n"})
	tr.dirtyUserTree()
	tr.assertUserUntouched()
	dir := filepath.Join(t.TempDir(), "work", "sub-1")

	wt, err := tr.repo.AddWorktree(ctx, dir, "codeswarm/sub-1", base)
	if err != nil {
		t.Fatalf("AddWorktree: %v", err)
	}
	want := Worktree{Dir: dir, Branch: "codeswarm/sub-1", BaseCommit: base, Head: base}
	if wt != want {
		t.Errorf("AddWorktree = %+v, want %+v", wt, want)
	}
	if got := readFile(t, filepath.Join(dir, "b.txt")); got != "bravo\n" {
		t.Errorf("worktree b.txt = %q, want the committed content", got)
	}

	// Second call (a retry) returns the same worktree, even if the caller
	// now passes a newer start commit.
	again, err := tr.repo.AddWorktree(ctx, dir, "codeswarm/sub-1", later)
	if err != nil {
		t.Fatalf("AddWorktree again: %v", err)
	}
	if again != (Worktree{Dir: dir, Branch: "codeswarm/sub-1", BaseCommit: later, Head: base}) {
		t.Errorf("AddWorktree again = %+v, want %+v", again, wt)
	}
	if n := len(mustList(t, tr.repo)); n != 2 {
		t.Errorf("%d worktrees, want 2 (main + sub-1)", n)
	}
	assertUnlocked(t, tr, dir)
}

// assertUnlocked fails if git still keeps the worktree at dir locked (an
// add that never finished its checkout): `git worktree prune` would never
// clear its record.
func assertUnlocked(t *testing.T, tr *testRepo, dir string) {
	t.Helper()
	wt, ok := findWorktree(mustList(t, tr.repo), dir)
	if !ok {
		t.Fatalf("no worktree at %s", dir)
	}
	if wt.locked {
		t.Errorf("worktree %s is still locked (initializing %v)", dir, wt.initializing)
	}
}

func TestAddWorktreeRecovers(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		crash func(t *testing.T, tr *testRepo, dir string) // leaves what a crash would
		head  func(tr *testRepo) string
	}{
		{
			name: "branch exists without worktree",
			crash: func(t *testing.T, tr *testRepo, dir string) {
				tr.commitOn("codeswarm/sub", "main", map[string]string{"x.txt": "x\n"})
			},
			head: func(tr *testRepo) string { return tr.head("codeswarm/sub") },
		},
		{
			name: "worktree directory deleted",
			crash: func(t *testing.T, tr *testRepo, dir string) {
				mustAdd(t, tr, dir)
				if err := os.RemoveAll(dir); err != nil {
					t.Fatal(err)
				}
			},
			head: func(tr *testRepo) string { return tr.head("main") },
		},
		{
			name: "add interrupted while initializing",
			crash: func(t *testing.T, tr *testRepo, dir string) {
				mustAdd(t, tr, dir)
				writeFile(t, filepath.Join(tr.dir, ".git", "worktrees", filepath.Base(dir), "locked"), "initializing")
				if err := os.Remove(filepath.Join(dir, "a.txt")); err != nil {
					t.Fatal(err)
				}
			},
			head: func(tr *testRepo) string { return tr.head("main") },
		},
		{
			// What AddWorktree itself leaves when it dies between
			// registering the worktree and checking its files out.
			name: "registered but not checked out yet",
			crash: func(t *testing.T, tr *testRepo, dir string) {
				tr.git("worktree", "add", "--quiet", "--no-checkout", "--lock", "--reason", initializingReason, "-b", "codeswarm/sub", dir, "main")
			},
			head: func(tr *testRepo) string { return tr.head("main") },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTestRepo(t)
			dir := filepath.Join(t.TempDir(), "sub")
			tt.crash(t, tr, dir)
			wt, err := tr.repo.AddWorktree(ctx, dir, "codeswarm/sub", tr.head("main"))
			if err != nil {
				t.Fatalf("AddWorktree after crash: %v", err)
			}
			if want := tt.head(tr); wt.Head != want {
				t.Errorf("Head = %s, want %s", wt.Head, want)
			}
			if clean, err := tr.repo.IsClean(ctx, dir); err != nil || !clean {
				t.Errorf("recovered worktree clean = %v, %v; want a complete checkout", clean, err)
			}
			if got := readFile(t, filepath.Join(dir, "a.txt")); got == "" {
				t.Error("recovered worktree has an empty a.txt")
			}
			assertUnlocked(t, tr, dir)
		})
	}
}

func TestAddWorktreeRefusals(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t)
	base := tr.head("HEAD")
	dir := filepath.Join(t.TempDir(), "sub")
	mustAdd(t, tr, dir)

	tests := []struct {
		name   string
		dir    string
		branch string
	}{
		{name: "inside the repository", dir: filepath.Join(tr.dir, ".worktrees", "x"), branch: "x"},
		{name: "dir is a worktree on another branch", dir: dir, branch: "other"},
		{name: "branch checked out elsewhere", dir: filepath.Join(t.TempDir(), "y"), branch: "codeswarm/sub"},
		{name: "branch checked out by the user", dir: filepath.Join(t.TempDir(), "z"), branch: "main"},
		{name: "invalid branch", dir: filepath.Join(t.TempDir(), "w"), branch: "a..b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tr.repo.AddWorktree(ctx, tt.dir, tt.branch, base); err == nil {
				t.Fatalf("AddWorktree(%q, %q) succeeded, want an error", tt.dir, tt.branch)
			}
		})
	}
}

func TestRemoveWorktree(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t)
	tr.dirtyUserTree()
	tr.assertUserUntouched()
	dir := filepath.Join(t.TempDir(), "sub")
	wt := mustAdd(t, tr, dir)
	writeFile(t, filepath.Join(dir, "new.txt"), "untracked work")

	if clean, err := tr.repo.IsClean(ctx, dir); err != nil || clean {
		t.Fatalf("IsClean = %v, %v; want false", clean, err)
	}
	if err := tr.repo.RemoveWorktree(ctx, dir, false); !errors.Is(err, ErrDirtyWorktree) {
		t.Fatalf("RemoveWorktree dirty error = %v, want ErrDirtyWorktree", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "new.txt")); err != nil {
		t.Fatalf("refused removal lost work: %v", err)
	}
	if err := tr.repo.RemoveWorktree(ctx, dir, true); err != nil {
		t.Fatalf("RemoveWorktree force: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("worktree dir still exists: %v", err)
	}
	if err := tr.repo.RemoveWorktree(ctx, dir, false); err != nil {
		t.Errorf("RemoveWorktree of a missing dir: %v", err)
	}
	if n := len(mustList(t, tr.repo)); n != 1 {
		t.Errorf("%d worktrees after removal, want 1", n)
	}
	if got := tr.head(wt.Branch); got != wt.Head {
		t.Errorf("branch moved to %s by removal, want %s kept", got, wt.Head)
	}
	if err := tr.repo.RemoveWorktree(ctx, t.TempDir(), true); err == nil {
		t.Error("RemoveWorktree of a plain directory succeeded")
	}
}

func TestListWorktrees(t *testing.T) {
	tr := newTestRepo(t)
	dir := filepath.Join(t.TempDir(), "sub")
	wt := mustAdd(t, tr, dir)
	list := mustList(t, tr.repo)
	if len(list) != 2 {
		t.Fatalf("ListWorktrees = %+v, want 2 entries", list)
	}
	if list[0].Dir != tr.repo.Root || list[0].Branch != "main" || list[0].Head != tr.head("main") {
		t.Errorf("main worktree = %+v", list[0])
	}
	if realPath(list[1].Dir) != realPath(dir) || list[1].Branch != wt.Branch || list[1].Head != wt.Head {
		t.Errorf("sub worktree = %+v, want %+v", list[1], wt)
	}
}

func mustAdd(t *testing.T, tr *testRepo, dir string) Worktree {
	t.Helper()
	wt, err := tr.repo.AddWorktree(context.Background(), dir, "codeswarm/sub", tr.head("main"))
	if err != nil {
		t.Fatalf("AddWorktree: %v", err)
	}
	return wt
}

func mustList(t *testing.T, r *Repo) []Worktree {
	t.Helper()
	list, err := r.ListWorktrees(context.Background())
	if err != nil {
		t.Fatalf("ListWorktrees: %v", err)
	}
	return list
}

// TestAddWorktreeProcessCount: a fresh worktree costs the name check, one
// `git worktree add --no-checkout` (the only process run under the
// worktree lock that starting sub-agents queue on) and the checkout.
func TestAddWorktreeProcessCount(t *testing.T) {
	tr := newTestRepo(t)
	base := tr.head("main")
	dir := filepath.Join(t.TempDir(), "wt")
	var wt Worktree
	var err error
	n := countGit(t, func() { wt, err = tr.repo.AddWorktree(context.Background(), dir, "codeswarm/fresh", base) })
	if err != nil || wt.Head != base || wt.Branch != "codeswarm/fresh" || n != 3 {
		t.Fatalf("AddWorktree = %+v, %v in %d git processes; want a worktree at %s in 3", wt, err, n, base)
	}
	if got := runGit(t, dir, nil, "rev-parse", "HEAD"); got != base {
		t.Errorf("worktree HEAD %s; want %s", got, base)
	}
}
