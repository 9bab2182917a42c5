package gitops

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"
)

// ReuseTree puts another commit's tree on a worktree's base as one commit
// (a retry reports it again), makes no commit for the base's own tree, and
// refuses a worktree that has moved off its base to something else.
func TestReuseTree(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t)
	tr.dirtyUserTree()
	base := tr.head("main")
	done := tr.commitOn("earlier", base, map[string]string{"a.txt": "alpha, reused\n", "c.txt": ""})
	tree := tr.head(done + "^{tree}")
	trailers := [][2]string{{"Codeswarm-Run", "run-2"}, {"Codeswarm-Cached-From", done}}

	dir := filepath.Join(t.TempDir(), "sub")
	mustAdd(t, tr, dir)
	res, err := ReuseTree(ctx, dir, base, tree, "reused", trailers)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || res.Commit == done || !reflect.DeepEqual(res.FilesChanged, []string{"a.txt", "c.txt"}) {
		t.Fatalf("ReuseTree = %+v, want a new commit changing a.txt and c.txt", res)
	}
	if got := runGit(t, dir, nil, "rev-parse", "HEAD", "HEAD^", "HEAD^{tree}"); got != res.Commit+"\n"+base+"\n"+tree {
		t.Errorf("HEAD, its parent and tree:\n%s\nwant %s on %s with tree %s", got, res.Commit, base, tree)
	}
	if got := runGit(t, dir, nil, "log", "-1", "--format=%(trailers:key=Codeswarm-Cached-From,valueonly)"); got != done {
		t.Errorf("Codeswarm-Cached-From trailer %q, want %s", got, done)
	}
	if got := runGit(t, dir, nil, "status", "--porcelain"); got != "" {
		t.Errorf("worktree not clean after the reuse:\n%s", got)
	}
	again, err := ReuseTree(ctx, dir, base, tree, "reused", trailers)
	if err != nil || !reflect.DeepEqual(again, res) {
		t.Errorf("retry = %+v, %v; want %+v", again, err, res)
	}
	if _, err := ReuseTree(ctx, dir, base, tr.head(base+"^{tree}"), "reused", trailers); err == nil {
		t.Error("a worktree holding other work took another tree")
	}

	same := addWorktreeOn(t, tr, "same")
	res, err = ReuseTree(ctx, same, base, tr.head(base+"^{tree}"), "reused", trailers)
	if err != nil || res.Changed || res.Commit != base {
		t.Errorf("the base's own tree: %+v, %v; want no commit, at the base", res, err)
	}
	tr.assertUserUntouched()
}
