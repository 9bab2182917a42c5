package gitops

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// These tests plant, in a sub-agent's worktree, what would make git run a
// program of the agent's, then run codeswarm's own function on it. Each
// planted program would leave a marker file (and its environment) in a trap
// directory; the tests assert that none appears. Where plain git is known
// to run the planted program, a control worktree shows the trap is live.

// trap collects the markers planted programs would leave.
type trap struct {
	t   *testing.T
	dir string
}

func newTrap(t *testing.T) *trap {
	return &trap{t: t, dir: t.TempDir()}
}

// script writes an executable at path that leaves marker name (with the
// environment it saw) in the trap, and returns path.
func (tp *trap) script(path, name string) string {
	tp.t.Helper()
	marker := filepath.Join(tp.dir, name)
	writeFile(tp.t, path, "#!/bin/sh\nenv > '"+marker+"'\n")
	if err := os.Chmod(path, 0o755); err != nil {
		tp.t.Fatal(err)
	}
	return path
}

// cmd is a shell command for a config value that leaves marker name.
func (tp *trap) cmd(name string) string {
	return "env > " + filepath.Join(tp.dir, name) // temp paths hold no spaces
}

// sprung lists the markers left so far, and clears them.
func (tp *trap) sprung() []string {
	tp.t.Helper()
	entries, err := os.ReadDir(tp.dir)
	if err != nil {
		tp.t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		_ = os.Remove(filepath.Join(tp.dir, e.Name()))
	}
	return names
}

func (tp *trap) assertNone(what string) {
	tp.t.Helper()
	if got := tp.sprung(); len(got) > 0 {
		tp.t.Errorf("%s ran planted programs: %v", what, got)
	}
}

// plantNestedRepo makes vendor/lib in the worktree a repository of its own
// with a commit and core.fsmonitor pointing at a trap script.
func plantNestedRepo(t *testing.T, tp *trap, wt string) {
	t.Helper()
	lib := filepath.Join(wt, "vendor", "lib")
	runGit(t, "", nil, "init", "--quiet", lib)
	writeFile(t, filepath.Join(lib, "lib.go"), "package lib\n")
	runGit(t, lib, nil, "add", "lib.go")
	runGit(t, lib, nil, "commit", "--quiet", "-m", "nested")
	runGit(t, lib, nil, "config", "core.fsmonitor", tp.script(filepath.Join(t.TempDir(), "fsmonitor"), "fsmonitor"))
}

func addWorktreeOn(t *testing.T, tr *testRepo, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if _, err := tr.repo.AddWorktree(context.Background(), dir, "codeswarm/"+name, tr.head("main")); err != nil {
		t.Fatalf("AddWorktree: %v", err)
	}
	return dir
}

func TestNestedRepoFSMonitorNeverRuns(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t)
	tp := newTrap(t)
	base := tr.head("main")

	// Control: plain git runs the nested repository's fsmonitor once the
	// repository is staged as a gitlink.
	control := addWorktreeOn(t, tr, "control")
	plantNestedRepo(t, tp, control)
	runGit(t, control, nil, "add", "--all")
	runGit(t, control, nil, "status", "--porcelain")
	if len(tp.sprung()) == 0 {
		t.Fatal("control: plain git did not run the planted fsmonitor; the test proves nothing")
	}

	wt := addWorktreeOn(t, tr, "sub")
	plantNestedRepo(t, tp, wt)
	if clean, err := tr.repo.IsClean(ctx, wt); err != nil || clean {
		t.Fatalf("IsClean = %v, %v; want dirty", clean, err)
	}
	tp.assertNone("IsClean")
	res, err := CommitAll(ctx, wt, base, "work", nil)
	if err != nil {
		t.Fatalf("CommitAll: %v", err)
	}
	tp.assertNone("CommitAll")
	if got := tr.git("ls-tree", "-r", res.Commit, "vendor/lib"); !strings.HasPrefix(got, "100644 blob") || !strings.HasSuffix(got, "vendor/lib/lib.go") {
		t.Errorf("vendor/lib in the commit = %q, want the plain file lib.go", got)
	}
	if len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "vendor/lib committed as plain files") {
		t.Errorf("Notes = %q, want the nested repository named", res.Notes)
	}
	if msg := tr.git("log", "-1", "--format=%B", res.Commit); !strings.Contains(msg, "vendor/lib committed as plain files") {
		t.Errorf("commit message does not name the nested repository:\n%s", msg)
	}
	if _, err := os.Lstat(filepath.Join(wt, "vendor", "lib", ".git")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("nested .git still there: %v", err)
	}
	// Plant it again after the commit: clean-up looks at the worktree too.
	plantNestedRepo(t, tp, filepath.Join(wt, "again"))
	if err := tr.repo.RemoveWorktree(ctx, wt, false); !errors.Is(err, ErrDirtyWorktree) {
		t.Errorf("RemoveWorktree of a dirty worktree = %v, want ErrDirtyWorktree", err)
	}
	if _, kept, err := tr.repo.RemoveWorktrees(ctx, []string{wt}); err != nil || len(kept) != 1 {
		t.Errorf("RemoveWorktrees = kept %v, %v; want it kept", kept, err)
	}
	tp.assertNone("RemoveWorktree(s)")
}

// TestNestedRepoBehindSymlinkedGit: a nested .git that is a symlink is
// removed as the link; what it points at is left alone.
func TestNestedRepoBehindSymlinkedGit(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t)
	base := tr.head("main")
	wt := addWorktreeOn(t, tr, "sub")
	elsewhere := filepath.Join(t.TempDir(), "other")
	runGit(t, "", nil, "init", "--quiet", elsewhere)
	writeFile(t, filepath.Join(wt, "pkg", "x.go"), "package pkg\n")
	if err := os.Symlink(filepath.Join(elsewhere, ".git"), filepath.Join(wt, "pkg", ".git")); err != nil {
		t.Fatal(err)
	}
	res, err := CommitAll(ctx, wt, base, "work", nil)
	if err != nil {
		t.Fatalf("CommitAll: %v", err)
	}
	if got := tr.git("ls-tree", "-r", "--name-only", res.Commit, "pkg"); got != "pkg/x.go" {
		t.Errorf("pkg in the commit = %q, want pkg/x.go", got)
	}
	if _, err := os.Stat(filepath.Join(elsewhere, ".git", "HEAD")); err != nil {
		t.Errorf("the symlink's target was touched: %v", err)
	}
}

// TestRepoConfigCommandsNeverRun: with the sandbox off an agent can write
// the repository's config itself; command-line config overrides it.
func TestRepoConfigCommandsNeverRun(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t)
	tp := newTrap(t)
	base := tr.head("main")
	wt := addWorktreeOn(t, tr, "sub")
	tr.git("config", "core.fsmonitor", tp.script(filepath.Join(t.TempDir(), "fsmon"), "fsmonitor"))
	tr.git("config", "core.hooksPath", filepath.Join(t.TempDir(), "hooks"))
	tr.git("config", "core.pager", tp.cmd("pager"))
	tr.git("config", "core.editor", tp.cmd("editor"))
	tr.git("config", "gpg.program", tp.cmd("gpg"))
	tr.git("config", "commit.gpgSign", "true")
	tr.git("config", "gc.auto", "1")
	tr.git("config", "gc.autoDetach", "false")
	writeFile(t, filepath.Join(wt, "new.txt"), "new\n")
	res, err := CommitAll(ctx, wt, base, "work", nil)
	if err != nil || !res.Changed {
		t.Fatalf("CommitAll = %+v, %v", res, err)
	}
	if _, err := tr.repo.IsClean(ctx, wt); err != nil {
		t.Fatal(err)
	}
	tp.assertNone("CommitAll with a hostile repository config")
	if packs, _ := filepath.Glob(filepath.Join(tr.repo.CommonDir, "objects", "pack", "*.pack")); len(packs) > 0 {
		t.Errorf("gc ran (packs %v) although every codeswarm command passes gc.auto=0", packs)
	}
}

// hookNames are the hooks git runs around add, commit, merge and checkout,
// --no-verify notwithstanding for all but the first two.
var hookNames = []string{"pre-commit", "commit-msg", "prepare-commit-msg", "post-commit",
	"post-index-change", "reference-transaction", "post-checkout", "post-merge", "post-rewrite"}

// plantHooks writes every hook into dir/rel.
func plantHooks(t *testing.T, tp *trap, dir, rel string) {
	t.Helper()
	for _, h := range hookNames {
		tp.script(filepath.Join(dir, rel, h), "hook-"+h)
	}
}

func TestRelativeHooksPathNeverRuns(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t)
	tp := newTrap(t)
	base := tr.head("main")
	// The user's config: husky's relative hooks path, resolved in whichever
	// worktree git runs in, so in a sub-agent's it names the agent's files.
	tr.git("config", "core.hooksPath", ".husky/_")

	control := addWorktreeOn(t, tr, "control")
	plantHooks(t, tp, control, ".husky/_")
	runGit(t, control, nil, "add", "--all")
	runGit(t, control, nil, "commit", "--quiet", "--no-verify", "-m", "x")
	if len(tp.sprung()) == 0 {
		t.Fatal("control: plain git ran no planted hook; the test proves nothing")
	}

	wt := addWorktreeOn(t, tr, "sub")
	plantHooks(t, tp, wt, ".husky/_")
	writeFile(t, filepath.Join(wt, "a.txt"), "alpha 2\n")
	res, err := CommitAll(ctx, wt, base, "work", nil)
	if err != nil || !res.Changed {
		t.Fatalf("CommitAll = %+v, %v", res, err)
	}
	tp.assertNone("CommitAll")

	// The run's result holds the hooks; merging and applying it must not
	// run them either, not even in the user's own working tree.
	tr.git("branch", "integ", base)
	merged, err := tr.repo.Merge(ctx, MergeInput{TargetBranch: "integ", Source: res.Commit})
	if err != nil || merged.Status != MergeMerged {
		t.Fatalf("Merge = %+v, %v", merged, err)
	}
	tp.assertNone("Merge")
	if err := tr.repo.FastForwardCheckedOut(ctx, "main", base, merged.Commit); err != nil {
		t.Fatalf("FastForwardCheckedOut: %v", err)
	}
	if _, err := os.Stat(filepath.Join(tr.dir, ".husky", "_", "post-merge")); err != nil {
		t.Fatalf("apply did not bring the hooks into the user's tree: %v", err)
	}
	tp.assertNone("FastForwardCheckedOut (--apply)")
	if err := tr.repo.DeleteBranchIfMerged(ctx, "codeswarm/sub", []string{"main"}); err == nil {
		t.Log("branch deleted") // checked out in wt: refused, which is fine
	}
	tp.assertNone("DeleteBranchIfMerged")
}

func TestGitmodulesUpdateCommandNeverRuns(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t)
	tp := newTrap(t)
	base := tr.head("main")
	wt := addWorktreeOn(t, tr, "sub")
	plantNestedRepo(t, tp, wt)
	writeFile(t, filepath.Join(wt, ".gitmodules"), "[submodule \"lib\"]\n\tpath = vendor/lib\n\turl = ./vendor/lib\n\tupdate = !"+tp.cmd("update")+"\n")
	// What a user's ~/.gitconfig may say; codeswarm reads no global config.
	global := filepath.Join(t.TempDir(), "gitconfig")
	writeFile(t, global, "[submodule]\n\trecurse = true\n")
	t.Setenv("GIT_CONFIG_GLOBAL", global)
	for attempt := range 2 {
		res, err := CommitAll(ctx, wt, base, "work", nil)
		if err != nil || !res.Changed {
			t.Fatalf("CommitAll attempt %d = %+v, %v", attempt, res, err)
		}
	}
	if clean, err := tr.repo.IsClean(ctx, wt); err != nil || !clean {
		t.Errorf("IsClean after commit = %v, %v", clean, err)
	}
	tp.assertNone("CommitAll with .gitmodules")
}

// TestAttributeDriversNeverRun: .gitattributes may name any filter, diff
// or merge driver; a driver runs only if some config defines it, and the
// configs an agent (or the worker's user's global settings) could define
// one in are never read.
func TestAttributeDriversNeverRun(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t)
	tp := newTrap(t)
	base := tr.head("main")
	drivers := "[filter \"evil\"]\n\tclean = " + tp.cmd("clean") + "\n\tsmudge = " + tp.cmd("smudge") + "\n\tprocess = " + tp.cmd("process") + "\n" +
		"[diff \"evil\"]\n\tcommand = " + tp.cmd("diff") + "\n\ttextconv = " + tp.cmd("textconv") + "\n" +
		"[merge \"evil\"]\n\tdriver = " + tp.cmd("merge") + "\n"
	wt := addWorktreeOn(t, tr, "sub")
	plantNestedRepo(t, tp, wt)
	writeFile(t, filepath.Join(wt, "vendor", "lib", ".git", "config"), drivers) // the nested repository's own
	writeFile(t, filepath.Join(wt, ".gitattributes"), "* filter=evil diff=evil merge=evil\n")
	writeFile(t, filepath.Join(wt, "a.txt"), "alpha from the agent\n")
	// The worker's own environment and home define the drivers too.
	global := filepath.Join(t.TempDir(), "gitconfig")
	writeFile(t, global, drivers)
	home := t.TempDir()
	writeFile(t, filepath.Join(home, ".config", "git", "attributes"), "* filter=evil diff=evil merge=evil\n")
	t.Setenv("GIT_CONFIG_GLOBAL", global)
	t.Setenv("GIT_CONFIG_PARAMETERS", "'filter.evil.clean'='"+tp.cmd("params")+"'")
	t.Setenv("HOME", home)
	res, err := CommitAll(ctx, wt, base, "work", nil)
	if err != nil || !res.Changed {
		t.Fatalf("CommitAll = %+v, %v", res, err)
	}
	tp.assertNone("CommitAll")
	if got := tr.git("show", res.Commit+":a.txt"); got != "alpha from the agent" {
		t.Errorf("a.txt committed as %q, want the file as written", got)
	}
	// A conflicting change on the target makes the merge use its driver.
	tr.commitOn("integ", base, map[string]string{"a.txt": "alpha from elsewhere\n", ".gitattributes": "* filter=evil diff=evil merge=evil\n"})
	if _, err := tr.repo.Merge(ctx, MergeInput{TargetBranch: "integ", Source: res.Commit}); err != nil {
		t.Fatalf("Merge: %v", err)
	}
	tp.assertNone("Merge")
}

// TestRewrittenDotGitRefused: a worktree whose .git leads anywhere but its
// own worktree record is refused before git runs in it.
func TestRewrittenDotGitRefused(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		plant func(t *testing.T, tp *trap, wt string)
	}{
		{"gitdir inside the worktree", func(t *testing.T, tp *trap, wt string) {
			fake := filepath.Join(wt, "fake")
			runGit(t, "", nil, "init", "--quiet", fake)
			runGit(t, fake, nil, "config", "core.fsmonitor", tp.script(filepath.Join(t.TempDir(), "fsmon"), "fsmonitor"))
			writeFile(t, filepath.Join(wt, ".git"), "gitdir: fake/.git\n")
		}},
		{"symlinked .git", func(t *testing.T, tp *trap, wt string) {
			fake := filepath.Join(t.TempDir(), "fake")
			runGit(t, "", nil, "init", "--quiet", fake)
			runGit(t, fake, nil, "config", "core.fsmonitor", tp.script(filepath.Join(t.TempDir(), "fsmon"), "fsmonitor"))
			if err := os.Remove(filepath.Join(wt, ".git")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join(fake, ".git"), filepath.Join(wt, ".git")); err != nil {
				t.Fatal(err)
			}
		}},
		{".git directory", func(t *testing.T, tp *trap, wt string) {
			if err := os.Remove(filepath.Join(wt, ".git")); err != nil {
				t.Fatal(err)
			}
			runGit(t, "", nil, "init", "--quiet", wt)
			runGit(t, wt, nil, "config", "core.fsmonitor", tp.script(filepath.Join(t.TempDir(), "fsmon"), "fsmonitor"))
		}},
		{"another repository's worktree record", func(t *testing.T, tp *trap, wt string) {
			other := newTestRepo(t)
			otherWT := addWorktreeOn(t, other, "other")
			writeFile(t, filepath.Join(wt, ".git"), readFile(t, filepath.Join(otherWT, ".git")))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTestRepo(t)
			tp := newTrap(t)
			wt := addWorktreeOn(t, tr, "sub")
			tt.plant(t, tp, wt)
			_, err := CommitAll(ctx, wt, tr.head("main"), "work", nil)
			if !errors.Is(err, ErrUntrustedGitDir) {
				t.Errorf("CommitAll = %v, want ErrUntrustedGitDir", err)
			}
			tp.assertNone("CommitAll")
		})
	}
}
