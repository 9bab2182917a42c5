package gitops

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
)

func TestFastForwardCheckedOut(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		setup  func(tr *testRepo) // runs after integ = main + 1 commit
		branch string
		old    func(tr *testRepo) string
		want   error
	}{
		{name: "success", branch: "main"},
		{name: "success with unrelated untracked file", branch: "main", setup: func(tr *testRepo) { tr.write("notes.txt", "mine\n") }},
		{name: "branch not checked out", branch: "integ", want: ErrNotCheckedOut},
		{name: "detached head", branch: "main", setup: func(tr *testRepo) { tr.git("checkout", "--quiet", "--detach") }, want: ErrNotCheckedOut},
		{name: "base moved", branch: "main", setup: func(tr *testRepo) { tr.git("commit", "--quiet", "--allow-empty", "-m", "user work") }, want: ErrBaseMoved},
		{name: "dirty tracked file", branch: "main", setup: func(tr *testRepo) { tr.write("b.txt", "edited\n") }, want: ErrDirtyWorktree},
		{name: "staged change", branch: "main", setup: func(tr *testRepo) { tr.write("n.txt", "x"); tr.git("add", "n.txt") }, want: ErrDirtyWorktree},
		{name: "untracked file in the way", branch: "main", setup: func(tr *testRepo) { tr.write("new.txt", "mine\n") }, want: ErrDirtyWorktree},
		{name: "not a fast-forward", branch: "main", old: func(tr *testRepo) string {
			// Rewind main so that its head is no ancestor of integ.
			side := tr.commitOn("side", "main~0", map[string]string{"s.txt": "s\n"})
			tr.git("reset", "--quiet", "--hard", side)
			return side
		}, want: ErrNotFastForward},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTestRepo(t)
			base := tr.head("main")
			integ := tr.commitOn("integ", "main", map[string]string{"new.txt": "from the run\n", "a.txt": "alpha 2\n"})
			expectedOld := base
			if tt.old != nil {
				expectedOld = tt.old(tr)
			}
			if tt.setup != nil {
				tt.setup(tr)
			}
			var before userState
			if tt.want != nil {
				before = tr.userState()
			}

			err := tr.repo.FastForwardCheckedOut(ctx, tt.branch, expectedOld, integ)
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Fatalf("FastForwardCheckedOut error = %v, want %v", err, tt.want)
				}
				if after := tr.userState(); after != before {
					t.Errorf("refusal changed the user's repository: %+v -> %+v", before, after)
				}
				return
			}
			if err != nil {
				t.Fatalf("FastForwardCheckedOut: %v", err)
			}
			if got := tr.head("HEAD"); got != integ {
				t.Errorf("HEAD = %s, want %s", got, integ)
			}
			if got := readFile(t, filepath.Join(tr.dir, "new.txt")); got != "from the run\n" {
				t.Errorf("working tree new.txt = %q", got)
			}
			if st := tr.git("status", "--porcelain", "--untracked-files=no"); st != "" {
				t.Errorf("tracked files dirty after fast-forward: %q", st)
			}
			// A retry after success is a no-op success.
			if err := tr.repo.FastForwardCheckedOut(ctx, tt.branch, expectedOld, integ); err != nil {
				t.Errorf("retry: %v", err)
			}
		})
	}
}

func TestDeleteBranchIfMerged(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t)
	tr.dirtyUserTree()
	tr.assertUserUntouched()
	base := tr.head("main")
	tr.git("branch", "integ", base)
	merged := tr.commitOn("sub-merged", base, map[string]string{"a.txt": "A\n"})
	mustMerge(t, tr, merged)
	unmerged := tr.commitOn("sub-unmerged", base, map[string]string{"b.txt": "B\n"})

	err := tr.repo.DeleteBranchIfMerged(ctx, "sub-unmerged", []string{"integ", "main", "absent"})
	if !errors.Is(err, ErrNotMerged) {
		t.Fatalf("delete unmerged error = %v, want ErrNotMerged", err)
	}
	if got := tr.head("sub-unmerged"); got != unmerged {
		t.Errorf("unmerged branch moved to %s", got)
	}
	for range 2 { // the second call is a retry
		if err := tr.repo.DeleteBranchIfMerged(ctx, "sub-merged", []string{"main", "integ"}); err != nil {
			t.Fatalf("delete merged: %v", err)
		}
	}
	if sha, _ := tr.repo.RefSHA(ctx, "sub-merged"); sha != "" {
		t.Errorf("merged branch still at %s", sha)
	}

	// A branch checked out in a worktree is kept even when merged.
	mustAdd(t, tr, filepath.Join(t.TempDir(), "sub"))
	if err := tr.repo.DeleteBranchIfMerged(ctx, "codeswarm/sub", []string{"main"}); err == nil {
		t.Error("deleted a branch checked out in a worktree")
	}
}
