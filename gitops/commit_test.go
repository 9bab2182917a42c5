package gitops

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestCommitAll(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t)
	tr.dirtyUserTree()
	tr.assertUserUntouched()
	base := tr.head("main")
	dir := filepath.Join(t.TempDir(), "sub")
	mustAdd(t, tr, dir)
	trailers := [][2]string{{"Codeswarm-Run", "run-1"}, {"Codeswarm-Subtask", "st-2"}}

	// Nothing changed yet: no commit.
	res, err := CommitAll(ctx, dir, base, "refactor a", trailers)
	if err != nil {
		t.Fatalf("CommitAll without changes: %v", err)
	}
	if res.Changed || res.Commit != base || res.FilesChanged != nil {
		t.Fatalf("CommitAll without changes = %+v, want unchanged at base", res)
	}

	writeFile(t, filepath.Join(dir, "a.txt"), "alpha 2\n")
	writeFile(t, filepath.Join(dir, "new", "z.txt"), "zulu\n")
	if err := os.Remove(filepath.Join(dir, "c.txt")); err != nil {
		t.Fatal(err)
	}
	res, err = CommitAll(ctx, dir, base, "refactor a\n", trailers)
	if err != nil {
		t.Fatalf("CommitAll: %v", err)
	}
	wantFiles := []string{"a.txt", "c.txt", "new/z.txt"}
	if !res.Changed || res.Commit == base || !slices.Equal(res.FilesChanged, wantFiles) {
		t.Fatalf("CommitAll = %+v, want a commit changing %v", res, wantFiles)
	}
	wt := testRepo{t: t, dir: dir}
	if got := wt.git("log", "-1", "--format=%B"); got != "refactor a\n\nCodeswarm-Run: run-1\nCodeswarm-Subtask: st-2" {
		t.Errorf("commit message = %q", got)
	}
	if got := wt.git("log", "-1", "--format=%(trailers:key=Codeswarm-Subtask,valueonly)"); got != "st-2" {
		t.Errorf("git sees trailer Codeswarm-Subtask = %q, want st-2", got)
	}
	if got := wt.git("log", "-1", "--format=%an <%ae> / %cn <%ce>"); got != "codeswarm <codeswarm@localhost> / codeswarm <codeswarm@localhost>" {
		t.Errorf("identity = %q", got)
	}

	// A retry after the commit landed reports the same commit, adds none.
	again, err := CommitAll(ctx, dir, base, "refactor a", trailers)
	if err != nil {
		t.Fatalf("CommitAll retry: %v", err)
	}
	if again.Commit != res.Commit || !again.Changed || !slices.Equal(again.FilesChanged, wantFiles) {
		t.Errorf("CommitAll retry = %+v, want %+v", again, res)
	}
	if n := wt.git("rev-list", "--count", base+"..HEAD"); n != "1" {
		t.Errorf("%s commits since base, want 1", n)
	}
}

func TestFormatMessage(t *testing.T) {
	tests := []struct {
		name, msg string
		trailers  [][2]string
		want      string
	}{
		{name: "no trailers", msg: "subject\n\n", want: "subject\n"},
		{name: "trailers", msg: "subject\n\nbody", trailers: [][2]string{{"K", "v"}}, want: "subject\n\nbody\n\nK: v\n"},
		{name: "multiline value folded", msg: "s", trailers: [][2]string{{"K", "a\nb"}, {" ", "dropped"}}, want: "s\n\nK: a b\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := formatMessage(tt.msg, tt.trailers); got != tt.want {
				t.Errorf("formatMessage = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCommitAllAfterKilledGit(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t)
	base := tr.head("main")
	dir := filepath.Join(t.TempDir(), "sub")
	mustAdd(t, tr, dir)
	writeFile(t, filepath.Join(dir, "a.txt"), "alpha 2\n")
	lock := filepath.Join(tr.dir, ".git", "worktrees", "sub", "index.lock")
	writeFile(t, lock, "")

	// A fresh lock may belong to a running git: leave it (git then fails).
	if _, err := CommitAll(ctx, dir, base, "m", nil); err == nil {
		t.Fatal("CommitAll succeeded over a fresh index.lock")
	}
	old := time.Now().Add(-2 * staleLockAge)
	if err := os.Chtimes(lock, old, old); err != nil {
		t.Fatal(err)
	}
	res, err := CommitAll(ctx, dir, base, "m", nil)
	if err != nil || !res.Changed {
		t.Fatalf("CommitAll over a stale lock = %+v, %v; want a commit", res, err)
	}
}
