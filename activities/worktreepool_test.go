package activities

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"codeswarm/tools"
)

// poolEntries lists the run's pool directory.
func poolEntries(t *testing.T, a *Activities) []string {
	t.Helper()
	entries, err := os.ReadDir(a.poolDir(runID))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// waitParked waits until the pool holds n worktrees ready to claim.
func waitParked(t *testing.T, a *Activities, n int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if a.worktrees().ready.Len(runID) == n {
			return
		}
	}
	t.Fatalf("the pool never held %d parked worktrees (on disk: %v)", n, poolEntries(t, a))
}

// TestMergedWorktreeServesTheNextSubAgent: once a sub-agent's commit is
// merged its worktree leaves its path for the run's pool, the next
// sub-agent's StartSubtask checks it out at the integration head on its own
// branch, and FinishRun removes what the pool still holds.
func TestMergedWorktreeServesTheNextSubAgent(t *testing.T) {
	f := newGitFixture(t)
	f.prepare(t)
	first := mustRun[StartSubtaskResult](t, f.env, f.a.StartSubtask, startInput(f, "01-one", "edit a.txt"))
	writeFile(t, filepath.Join(first.Worktree, "a.txt"), "alpha one\n")
	writeFile(t, filepath.Join(first.Worktree, "one.txt"), "1\n")
	c := mustRun[CommitSubtaskResult](t, f.env, f.a.CommitSubtask, CommitSubtaskInput{
		RunID: runID, SubtaskID: "01-one", Name: "one", Worktree: first.Worktree, BaseCommit: first.BaseCommit,
	})
	m := mustRun[MergeSubtaskResult](t, f.env, f.a.MergeSubtask, MergeSubtaskInput{
		RunID: runID, RepoPath: f.repo.dir, IntegrationBranch: integration, SubtaskID: "01-one", Name: "one", Commit: c.Commit, Worktree: first.Worktree,
	})
	if m.Status != MergeMerged {
		t.Fatalf("merge = %+v", m)
	}
	waitParked(t, f.a, 1)
	if _, err := os.Lstat(first.Worktree); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the merged worktree is still at its path (%v)", err)
	}
	if got := f.repo.git("rev-parse", "codeswarm/"+runID+"/01-one"); got != c.Commit {
		t.Errorf("the merged branch is at %s, want %s", got, c.Commit)
	}

	second := mustRun[StartSubtaskResult](t, f.env, f.a.StartSubtask, startInput(f, "02-two", "edit b.txt"))
	if n := poolEntries(t, f.a); len(n) != 0 {
		t.Errorf("the pool still holds %v after a sub-agent started", n)
	}
	head := f.repo.git("rev-parse", integration)
	if second.BaseCommit != head || gitCmd(t, second.Worktree, nil, "rev-parse", "HEAD") != head {
		t.Errorf("the second sub-agent starts at %s, want the integration head %s", second.BaseCommit, head)
	}
	if got := gitCmd(t, second.Worktree, nil, "symbolic-ref", "--short", "HEAD"); got != "codeswarm/"+runID+"/02-two" {
		t.Errorf("the second worktree is on %q", got)
	}
	if got := readFile(t, filepath.Join(second.Worktree, "one.txt")); got != "1\n" {
		t.Errorf("one.txt = %q, want the merged dependency's", got)
	}
	if got := gitCmd(t, second.Worktree, nil, "status", "--porcelain", "--ignored"); got != "" {
		t.Errorf("the second worktree is not clean:\n%s", got)
	}

	// A third merged sub-agent's worktree is parked when the run ends:
	// FinishRun removes it without reporting it as one of the run's.
	third := f.subtaskCommit(t, "03-three", map[string]string{"three.txt": "3\n"})
	thirdDir := WorktreeDir(f.a.WorkspaceRoot, runID, "03-three", 1)
	mustRun[MergeSubtaskResult](t, f.env, f.a.MergeSubtask, MergeSubtaskInput{
		RunID: runID, RepoPath: f.repo.dir, IntegrationBranch: integration, SubtaskID: "03-three", Name: "three", Commit: third.Commit, Worktree: thirdDir,
	})
	// Named under the run's directory, as the workflow names them.
	fin := mustRun[FinishRunResult](t, f.env, f.a.FinishRun, FinishRunInput{
		RunID: runID, RepoPath: f.repo.dir,
		WorktreesUnder: filepath.Dir(thirdDir), RemoveNames: []string{filepath.Base(first.Worktree), "03-three"},
	})
	if fin.RemovedCount != 2 || len(fin.Kept) != 0 {
		t.Errorf("FinishRun removed %d, kept %v; want the two merged worktrees", fin.RemovedCount, fin.Kept)
	}
	if n := poolEntries(t, f.a); len(n) != 0 {
		t.Errorf("the pool still holds %v after the run", n)
	}
	if got := f.repo.git("worktree", "list", "--porcelain"); strings.Count(got, "worktree ") != 2 {
		t.Errorf("worktrees after the run:\n%s\nwant the user's and the unmerged second", got)
	}
}

// TestClaimedWorktreeIsTheSandboxs: a worktree claimed from the pool is
// prepared from its index (only the files the claim's checkout rewrote, and
// those the last add saw owned by the worker), and ends up as a whole walk
// leaves a fresh one: every file and directory but .git the sandbox uid's.
func TestClaimedWorktreeIsTheSandboxs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the worker is not root: files keep its uid")
	}
	f := newGitFixture(t)
	f.a.Sandbox = tools.NewSandbox(tools.SandboxConfig{})
	uid, gid, ok := f.a.Sandbox.FileOwnerOrProbe()
	if !ok {
		t.Skipf("the sandbox does not drop to its own uid here: %v", f.a.Sandbox.Err())
	}
	f.prepare(t)
	first := mustRun[StartSubtaskResult](t, f.env, f.a.StartSubtask, startInput(f, "01-one", "edit a.txt"))
	assertOwnedBy(t, first.Worktree, uid, gid)
	assertIndexFresh(t, first.Worktree)
	// What the sandboxed commands and the file tools write is the uid's.
	for p, c := range map[string]string{"a.txt": "alpha one\n", "n/one.txt": "1\n"} {
		writeFile(t, filepath.Join(first.Worktree, p), c)
	}
	for _, p := range []string{"a.txt", "n", "n/one.txt"} {
		if err := os.Lchown(filepath.Join(first.Worktree, p), uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	c1 := mustRun[CommitSubtaskResult](t, f.env, f.a.CommitSubtask, CommitSubtaskInput{
		RunID: runID, SubtaskID: "01-one", Name: "one", Worktree: first.Worktree, BaseCommit: first.BaseCommit,
	})
	// Another sub-agent's work, written by the worker, in new directories.
	c3 := f.subtaskCommit(t, "03-three", map[string]string{"d/e/deep.txt": "3\n", "b.txt": "bravo three\n"})
	for id, c := range map[string]CommitSubtaskResult{"03-three": c3, "01-one": c1} {
		m := mustRun[MergeSubtaskResult](t, f.env, f.a.MergeSubtask, MergeSubtaskInput{
			RunID: runID, RepoPath: f.repo.dir, IntegrationBranch: integration, SubtaskID: id, Name: id, Commit: c.Commit,
			Worktree: WorktreeDir(f.a.WorkspaceRoot, runID, id, 1),
		})
		if m.Status != MergeMerged {
			t.Fatalf("merge %s = %+v", id, m)
		}
	}
	waitParked(t, f.a, 2)
	second := mustRun[StartSubtaskResult](t, f.env, f.a.StartSubtask, startInput(f, "02-two", "edit b.txt"))
	if n := poolEntries(t, f.a); len(n) != 1 {
		t.Fatalf("the pool holds %v; want one worktree claimed of two", n)
	}
	if got := readFile(t, filepath.Join(second.Worktree, "d/e/deep.txt")); got != "3\n" {
		t.Errorf("d/e/deep.txt = %q, want the merged work", got)
	}
	assertOwnedBy(t, second.Worktree, uid, gid)
	// A tools-only attempt's commit stages the journal's files and the
	// ones the claim rewrote: the index then records their new owner.
	in := startInput(f, "02-two", "edit b.txt")
	appendRecs(t, f.a.Transcripts, in.Ref, assistantRec(0, [2]string{"edit", `{"path":"b.txt","old_string":"bravo three","new_string":"bravo two"}`}))
	limits := ToolLimits{BashTimeout: 30 * time.Second, BashMaxTimeout: time.Minute, MaxOutputBytes: 200_000}
	if res := mustRun[ExecToolResult](t, f.env, f.a.ExecTool, ExecToolInput{Ref: in.Ref, Worktree: second.Worktree, Limits: limits}); res.IsError {
		t.Fatalf("edit b.txt: %+v", res)
	}
	c2 := mustRun[CommitSubtaskResult](t, f.env, f.a.CommitSubtask, CommitSubtaskInput{
		RunID: runID, SubtaskID: "02-two", Name: "two", Worktree: second.Worktree, BaseCommit: second.BaseCommit, Attempt: 1,
	})
	if !reflect.DeepEqual(c2.FilesChanged, []string{"b.txt"}) {
		t.Errorf("the commit of 02-two changed %v, want [b.txt]", c2.FilesChanged)
	}
	assertIndexFresh(t, second.Worktree)
	if got := gitCmd(t, second.Worktree, nil, "status", "--porcelain"); got != "" {
		t.Errorf("02-two's worktree after its commit: %q, want clean", got)
	}
}

// assertIndexFresh fails if the index of the worktree at dir records stat
// data (here: an owner) other than its files have: git would compare those
// files' contents in every status, and a claim would refuse to overwrite
// them (gitops.RefreshIndex).
func assertIndexFresh(t *testing.T, dir string) {
	t.Helper()
	if stale := gitCmd(t, dir, nil, "diff-files", "--name-only"); stale != "" {
		t.Errorf("the index of %s records other stat data than the files have:\n%s", dir, stale)
	}
}

// assertOwnedBy fails for each file or directory under dir but .git that
// uid and gid do not own.
func assertOwnedBy(t *testing.T, dir string, uid, gid int) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		if d.Name() == ".git" && filepath.Dir(p) == dir {
			return nil
		}
		n++
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != uid || int(st.Gid) != gid {
			t.Errorf("%s belongs to %d:%d, want %d:%d", p, st.Uid, st.Gid, uid, gid)
		}
		return nil
	})
	if err != nil || n == 0 {
		t.Fatalf("walk %s: %v (%d entries)", dir, err, n)
	}
}
