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
	// The branch moved, as `git commit` moves it: with a reflog entry,
	// from the base, and the index is the commit's.
	if got := wt.git("reflog", "-1", "--format=%gs", "refs/heads/codeswarm/sub"); got != "commit: refactor a" {
		t.Errorf("branch reflog = %q, want %q", got, "commit: refactor a")
	}
	if got := wt.git("rev-parse", "HEAD~1"); got != base {
		t.Errorf("the commit's parent is %s, want the base %s", got, base)
	}
	if got := wt.git("status", "--porcelain"); got != "" {
		t.Errorf("the worktree is not clean after CommitAll:\n%s", got)
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
		{name: "whitespace cleaned as git commit does", msg: "\n\n  subject  \nbody \t\n\n\n\nmore\n\n", want: "  subject\nbody\n\nmore\n"},
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

	// A fresh lock may belong to a running git: CommitAll waits for it
	// and leaves it alone.
	short, cancel := context.WithTimeout(ctx, 3*lockPoll)
	_, err := CommitAll(short, dir, base, "m", nil)
	cancel()
	if err == nil {
		t.Fatal("CommitAll succeeded over a fresh index.lock")
	}
	if _, statErr := os.Stat(lock); statErr != nil {
		t.Fatalf("CommitAll removed a fresh index.lock: %v", statErr)
	}
	// Released while CommitAll waits (the git finished): it commits.
	go func() {
		time.Sleep(2 * lockPoll)
		_ = os.Remove(lock)
	}()
	if res, err := CommitAll(ctx, dir, base, "m", nil); err != nil || !res.Changed {
		t.Fatalf("CommitAll after the lock was released = %+v, %v; want a commit", res, err)
	}

	// A lock left by a killed git: the retry, coming within staleLockAge
	// (e.g. after a 20 s heartbeat timeout), waits until the lock is old
	// and removes it, instead of failing.
	writeFile(t, filepath.Join(dir, "a.txt"), "alpha 3\n")
	writeFile(t, lock, "")
	old := time.Now().Add(-staleLockAge + 2*lockPoll)
	if err := os.Chtimes(lock, old, old); err != nil {
		t.Fatal(err)
	}
	if res, err := CommitAll(ctx, dir, base, "m", nil); err != nil || !res.Changed {
		t.Fatalf("CommitAll over a lock turning stale = %+v, %v; want a commit", res, err)
	}
	writeFile(t, filepath.Join(dir, "a.txt"), "alpha 4\n")
	writeFile(t, lock, "")
	old = time.Now().Add(-2 * staleLockAge)
	if err := os.Chtimes(lock, old, old); err != nil {
		t.Fatal(err)
	}
	res, err := CommitAll(ctx, dir, base, "m", nil)
	if err != nil || !res.Changed {
		t.Fatalf("CommitAll over a stale lock = %+v, %v; want a commit", res, err)
	}

	// Killed in update-ref: HEAD's and the branch's locks are left.
	for _, lock := range []string{
		filepath.Join(tr.dir, ".git", "worktrees", "sub", "HEAD.lock"),
		filepath.Join(tr.dir, ".git", "refs", "heads", "codeswarm", "sub.lock"),
	} {
		writeFile(t, filepath.Join(dir, "a.txt"), "alpha 5 "+lock+"\n")
		writeFile(t, lock, "")
		if err := os.Chtimes(lock, old, old); err != nil {
			t.Fatal(err)
		}
		if res, err := CommitAll(ctx, dir, base, "m", nil); err != nil || !res.Changed {
			t.Fatalf("CommitAll over a stale %s = %+v, %v; want a commit", filepath.Base(lock), res, err)
		}
	}
}

func TestCommitPaths(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t)
	tr.write(".gitignore", "build/\n")
	tr.write("glob/a*b.txt", "star\n")
	tr.write("glob/axxb.txt", "x\n")
	tr.git("add", "-A")
	tr.git("commit", "--quiet", "-m", "more")
	base := tr.head("main")
	dir := filepath.Join(t.TempDir(), "sub")
	mustAdd(t, tr, dir)
	wt := testRepo{t: t, dir: dir}

	// Nothing listed, nothing changed: no commit, and no add runs.
	res, err := CommitPaths(ctx, dir, base, "m", nil, nil)
	if err != nil || res.Changed || res.Commit != base {
		t.Fatalf("CommitPaths of no paths = %+v, %v; want unchanged at base", res, err)
	}

	// Only the listed paths are staged, each literally: "glob/a*b.txt"
	// is that one file, not a pattern that also matches glob/axxb.txt.
	writeFile(t, filepath.Join(dir, "a.txt"), "alpha 2\n")
	writeFile(t, filepath.Join(dir, "new", "z.txt"), "zulu\n")
	writeFile(t, filepath.Join(dir, "glob", "a*b.txt"), "star 2\n")
	writeFile(t, filepath.Join(dir, "glob", "axxb.txt"), "x 2\n")
	writeFile(t, filepath.Join(dir, "unlisted.txt"), "not named\n")
	writeFile(t, filepath.Join(dir, "new", "x*.txt"), "new star\n") // new files go to `git add`
	writeFile(t, filepath.Join(dir, "new", "xy.txt"), "not named\n")
	res, err = CommitPaths(ctx, dir, base, "m", nil, []string{"a.txt", "new/z.txt", "glob/a*b.txt", "a.txt", "new/x*.txt"})
	if err != nil {
		t.Fatalf("CommitPaths: %v", err)
	}
	if want := []string{"a.txt", "glob/a*b.txt", "new/x*.txt", "new/z.txt"}; !res.Changed || !slices.Equal(res.FilesChanged, want) {
		t.Fatalf("CommitPaths = %+v, want a commit changing exactly %v", res, want)
	}
	if got := wt.git("status", "--porcelain"); got != "M glob/axxb.txt\n?? new/xy.txt\n?? unlisted.txt" {
		t.Errorf("after CommitPaths, status = %q; want only the unlisted changes left", got)
	}
	if got := wt.git("reflog", "-1", "--format=%gs", "refs/heads/codeswarm/sub"); got != "commit: m" {
		t.Errorf("branch reflog = %q", got)
	}

	// A path git will not stage (ignored), or one no tool could have
	// written (under .git, above the root), stages everything instead:
	// what the list names is never left out.
	for _, tc := range []struct {
		name  string
		paths []string
	}{
		{"ignored", []string{"a.txt", "build/out.txt"}},
		{"gone", []string{"a.txt", "missing/file.txt"}},
		{"under .git", []string{"a.txt", "sub/.GIT/config"}},
		{"above the root", []string{"../a.txt"}},
		{"not clean", []string{"./a.txt"}},
		{"absolute", []string{filepath.Join(dir, "a.txt")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writeFile(t, filepath.Join(dir, "a.txt"), "alpha "+tc.name+"\n")
			writeFile(t, filepath.Join(dir, "build", "out.txt"), "ignored\n")
			writeFile(t, filepath.Join(dir, "other "+tc.name+".txt"), "unlisted\n")
			head := wt.git("rev-parse", "HEAD")
			res, err := CommitPaths(ctx, dir, base, "m", nil, tc.paths)
			if err != nil {
				t.Fatalf("CommitPaths(%q): %v", tc.paths, err)
			}
			if res.Commit == head {
				t.Fatalf("CommitPaths(%q) made no commit", tc.paths)
			}
			if got := wt.git("status", "--porcelain"); got != "" {
				t.Errorf("CommitPaths(%q) left changes; it should have staged everything:\n%s", tc.paths, got)
			}
			if got := wt.git("ls-files", "build"); got != "" {
				t.Errorf("CommitPaths(%q) committed the ignored %s", tc.paths, got)
			}
		})
	}
}

// TestCommitPathsLiteral: a listed path is a name, never a pattern. Git
// takes a pathspec that names an existing file as that file alone, so the
// difference shows for a listed path that is not there (a write that
// failed after its intent was recorded): "new/q*.txt" must not stage
// new/qz.txt and call it done; it matches nothing, and everything is
// staged instead.
func TestCommitPathsLiteral(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t)
	base := tr.head("main")
	dir := filepath.Join(t.TempDir(), "sub")
	mustAdd(t, tr, dir)
	writeFile(t, filepath.Join(dir, "new", "qz.txt"), "q\n")
	writeFile(t, filepath.Join(dir, "zz.txt"), "z\n")
	res, err := CommitPaths(ctx, dir, base, "m", nil, []string{"new/q*.txt"})
	if err != nil {
		t.Fatalf("CommitPaths: %v", err)
	}
	if want := []string{"new/qz.txt", "zz.txt"}; !slices.Equal(res.FilesChanged, want) {
		t.Errorf("CommitPaths of a missing new/q*.txt committed %v, want everything: %v", res.FilesChanged, want)
	}
}

func TestStageablePaths(t *testing.T) {
	for _, tc := range []struct {
		paths []string
		want  bool
	}{
		{nil, true},
		{[]string{"a.txt", "dir/b c.txt", ":(glob)*", "x/..y"}, true},
		{[]string{""}, false},
		{[]string{"."}, false},
		{[]string{"a/../b"}, false},
		{[]string{"a//b"}, false},
		{[]string{"a/"}, false},
		{[]string{"/etc/passwd"}, false},
		{[]string{"a/.Git/hooks/pre-commit"}, false},
		{[]string{"a\x00b"}, false},
	} {
		if got := stageablePaths(tc.paths); got != tc.want {
			t.Errorf("stageablePaths(%q) = %v, want %v", tc.paths, got, tc.want)
		}
	}
}

func TestRefreshIndex(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t)
	dir := filepath.Join(t.TempDir(), "sub")
	mustAdd(t, tr, dir)
	wt := testRepo{t: t, dir: dir}
	// New stat data, same contents (as a chown gives): git must look at
	// the contents until the index records the new stat data.
	old := time.Now().Add(-time.Hour)
	for _, p := range []string{"a.txt", "b.txt", "c.txt"} {
		if err := os.Chtimes(filepath.Join(dir, p), old, old); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(dir, "b.txt"), "bravo, changed\n")
	if got := wt.git("diff-files", "--name-only"); got != "a.txt\nb.txt\nc.txt" {
		t.Fatalf("diff-files before the refresh = %q", got)
	}
	if err := RefreshIndex(ctx, dir); err != nil {
		t.Fatalf("RefreshIndex: %v", err)
	}
	if got := wt.git("diff-files", "--name-only"); got != "b.txt" {
		t.Errorf("diff-files after RefreshIndex = %q; want only the changed b.txt", got)
	}
	// Nothing was staged.
	if got := wt.git("diff", "--cached", "--name-only"); got != "" {
		t.Errorf("a refresh staged %q", got)
	}
}
