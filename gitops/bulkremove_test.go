package gitops

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// RemoveWorktrees deletes clean worktrees in one pass and keeps every one
// that holds work (modified or untracked files), and anything that is not a
// worktree of the repository; branches stay.
func TestRemoveWorktrees(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t)
	base := tr.head("HEAD")
	root := t.TempDir()
	var dirs []string
	for i := range 12 {
		dir := filepath.Join(root, fmt.Sprintf("sub-%02d", i))
		if _, err := tr.repo.AddWorktree(ctx, dir, fmt.Sprintf("codeswarm/sub-%02d", i), base); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
	}
	writeFile(t, filepath.Join(dirs[3], "a.txt"), "uncommitted edit\n")
	writeFile(t, filepath.Join(dirs[5], "new.txt"), "untracked\n")
	runGit(t, tr.dir, nil, "worktree", "lock", "--reason", "in use", dirs[7])
	if err := os.RemoveAll(dirs[9]); err != nil { // already gone: counts as removed
		t.Fatal(err)
	}
	notWorktree := filepath.Join(root, "plain-dir")
	writeFile(t, filepath.Join(notWorktree, "keep.txt"), "not a worktree\n")
	input := append(slices.Clone(dirs), notWorktree, tr.dir)

	removed, kept, err := tr.repo.RemoveWorktrees(ctx, input)
	if err != nil {
		t.Fatalf("RemoveWorktrees: %v", err)
	}
	wantKept := []string{dirs[3], dirs[5], notWorktree, tr.dir}
	if !slices.Equal(kept, wantKept) {
		t.Errorf("kept = %v, want %v", kept, wantKept)
	}
	if len(removed) != len(dirs)-2 {
		t.Errorf("removed %d worktrees, want %d: %v", len(removed), len(dirs)-2, removed)
	}
	for _, d := range removed {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s still exists after removal (err %v)", d, err)
		}
	}
	if got := readFile(t, filepath.Join(dirs[3], "a.txt")); got != "uncommitted edit\n" {
		t.Errorf("dirty worktree's file = %q", got)
	}
	if got := readFile(t, filepath.Join(notWorktree, "keep.txt")); got != "not a worktree\n" {
		t.Errorf("plain directory's file = %q", got)
	}
	list := mustList(t, tr.repo)
	var listed []string
	for _, wt := range list[1:] {
		listed = append(listed, realPath(wt.Dir))
	}
	if want := []string{realPath(dirs[3]), realPath(dirs[5])}; !slices.Equal(listed, want) {
		t.Errorf("worktrees left registered = %v, want only the dirty ones %v", listed, want)
	}
	for i := range dirs {
		if sha := tr.head(fmt.Sprintf("codeswarm/sub-%02d", i)); sha != base {
			t.Errorf("branch %d moved or vanished: %s", i, sha)
		}
	}
}
