package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"codeswarm/internal/transcript"
)

// gitFixture is a user repository with uncommitted work, and an Activities
// whose workspace and transcripts live in temp dirs.
type gitFixture struct {
	repo *gitRepo
	a    *Activities
	env  *testsuite.TestActivityEnvironment
}

const runID = "run-git"

// integration mirrors the workflows' naming: <prefix>/<run>/integration,
// beside the subtask branches <prefix>/<run>/<subtask>.
const integration = "codeswarm/" + runID + "/integration"

func newGitFixture(t *testing.T) *gitFixture {
	t.Helper()
	repo := newGitRepo(t, map[string]string{
		"a.txt":     "alpha\n",
		"b.txt":     "bravo\n",
		"AGENTS.md": "Always run gofmt before finishing.\n",
	})
	a := &Activities{
		Transcripts:    transcript.New(t.TempDir()),
		WorkspaceRoot:  t.TempDir(),
		WorkspaceQueue: "codeswarm-ws-testhost",
	}
	return &gitFixture{repo: repo, a: a, env: newActivityEnv(a)}
}

func (f *gitFixture) prepare(t *testing.T) PrepareRunResult {
	t.Helper()
	return mustRun[PrepareRunResult](t, f.env, f.a.PrepareRun, PrepareRunInput{
		RunID: runID, RepoPath: f.repo.dir, BaseRef: "HEAD", IntegrationBranch: integration,
	})
}

// userState is everything about the user's checkout that a run must keep.
func (f *gitFixture) userState(t *testing.T) string {
	t.Helper()
	return strings.Join([]string{
		f.repo.git("symbolic-ref", "HEAD"),
		f.repo.git("rev-parse", "HEAD"),
		f.repo.git("status", "--porcelain", "--untracked-files=all"),
		f.repo.read("a.txt"),
		f.repo.read("notes.txt"),
	}, "\x00")
}

func sameDir(t *testing.T, a, b string) bool {
	t.Helper()
	ra, err1 := filepath.EvalSymlinks(a)
	rb, err2 := filepath.EvalSymlinks(b)
	return err1 == nil && err2 == nil && ra == rb
}

func TestPrepareAndFinishRunGCAuto(t *testing.T) {
	tests := []struct {
		name string
		user string // the user's gc.auto; "" = unset
	}{
		{"unset", ""},
		{"user value", "42"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newGitFixture(t)
			if tt.user != "" {
				f.repo.git("config", "gc.auto", tt.user)
			}
			f.repo.write("a.txt", "alpha, uncommitted\n")
			f.repo.write("notes.txt", "untracked\n")
			before := f.userState(t)
			configBefore := f.repo.read(".git/config")
			base := f.repo.git("rev-parse", "HEAD")

			prep := f.prepare(t)
			if prep.BaseCommit != base || prep.BaseBranch != "main" || prep.WorkspaceQueue != "codeswarm-ws-testhost" {
				t.Errorf("PrepareRun = %+v, want base %s on main", prep, base)
			}
			if !sameDir(t, prep.RepoRoot, f.repo.dir) || !strings.Contains(prep.RepoListing, "a.txt") || strings.Contains(prep.RepoListing, "notes.txt") {
				t.Errorf("root %q, listing %q", prep.RepoRoot, prep.RepoListing)
			}
			if prep.GitVersion == "" {
				t.Error("no git version reported")
			}
			if prep.TreeFiles != 3 {
				t.Errorf("TreeFiles = %d, want the base tree's 3 (not the untracked notes.txt)", prep.TreeFiles)
			}
			if got := f.repo.git("rev-parse", "refs/heads/"+integration); got != base {
				t.Errorf("integration branch at %s, want base %s", got, base)
			}
			if got := f.userState(t); got != before {
				t.Errorf("the user's checkout changed:\nbefore %q\nafter  %q", before, got)
			}
			// gc.auto=0 rides on every codeswarm git command; the user's
			// config is not written, so a killed run leaves nothing in it.
			if got := f.repo.read(".git/config"); got != configBefore {
				t.Errorf("PrepareRun wrote the user's config:\n%s\nwant:\n%s", got, configBefore)
			}

			// A retried PrepareRun must not move an integration branch that
			// has advanced.
			moved := f.repo.commitOn(integration, base, map[string]string{"c.txt": "c\n"})
			again := f.prepare(t)
			if again.GCAutoPrev != prep.GCAutoPrev || again.GCAutoHad != prep.GCAutoHad || again.BaseCommit != base {
				t.Errorf("retried PrepareRun = %+v, want %+v", again, prep)
			}
			if got := f.repo.git("rev-parse", "refs/heads/"+integration); got != moved {
				t.Errorf("retried PrepareRun moved the integration branch to %s", got)
			}

			fin := mustRun[FinishRunResult](t, f.env, f.a.FinishRun, FinishRunInput{
				RunID: runID, RepoPath: f.repo.dir, GCAutoPrev: prep.GCAutoPrev, GCAutoHad: prep.GCAutoHad,
			})
			if fin.Applied || fin.ApplyError != "" {
				t.Errorf("FinishRun without Apply = %+v", fin)
			}
			if got := f.userState(t); got != before {
				t.Errorf("FinishRun changed the user's checkout")
			}
			if got := f.repo.read(".git/config"); got != configBefore {
				t.Errorf("FinishRun changed the user's config:\n%s\nwant:\n%s", got, configBefore)
			}
		})
	}
}

// TestFinishRunRestoresGCAutoOfEarlierBuild: a run prepared by a build that
// still wrote gc.auto=0 into the user's config (saving the original beside
// it) gets the user's value back from FinishRun, also when retried.
func TestFinishRunRestoresGCAutoOfEarlierBuild(t *testing.T) {
	for _, user := range []string{"", "42"} {
		t.Run("user="+user, func(t *testing.T) {
			f := newGitFixture(t)
			if user != "" {
				f.repo.git("config", "gc.auto", user)
			}
			// What PrepareRun of the earlier build left (gitops.SetConfig).
			if user != "" {
				f.repo.git("config", "codeswarm-saved.gc.auto.value", user)
			}
			f.repo.git("config", "codeswarm-saved.gc.auto.had", map[bool]string{true: "true", false: "false"}[user != ""])
			f.repo.git("config", "gc.auto", "0")
			in := FinishRunInput{RunID: runID, RepoPath: f.repo.dir, GCAutoPrev: user, GCAutoHad: user != ""}
			for range 2 {
				mustRun[FinishRunResult](t, f.env, f.a.FinishRun, in)
				code := gitExit(f.repo.dir, "config", "--local", "--get", "gc.auto")
				if (code == 0) != (user != "") {
					t.Fatalf("gc.auto after FinishRun: git config exit %d, user value %q", code, user)
				}
				if cfg := f.repo.git("config", "--local", "--list"); strings.Contains(cfg, "codeswarm") {
					t.Errorf("run state left in the repository config:\n%s", cfg)
				}
			}
			if user != "" {
				if got := f.repo.git("config", "--local", "--get", "gc.auto"); got != user {
					t.Errorf("gc.auto = %q, want %q", got, user)
				}
			}
		})
	}
}

func TestPrepareRunUnknownBase(t *testing.T) {
	f := newGitFixture(t)
	_, err := run[PrepareRunResult](t, f.env, f.a.PrepareRun, PrepareRunInput{
		RunID: runID, RepoPath: f.repo.dir, BaseRef: "no-such-branch", IntegrationBranch: "codeswarm/x",
	})
	if err == nil {
		t.Fatal("PrepareRun with an unknown base succeeded")
	}
	if ae := appErr(t, err); !ae.NonRetryable() || ae.Type() != "git.base" {
		t.Errorf("error type %q non-retryable %v, want git.base non-retryable", ae.Type(), ae.NonRetryable())
	}
}

func startInput(f *gitFixture, subtaskID, instruction string) StartSubtaskInput {
	return StartSubtaskInput{
		Ref: ConvRef{RunID: runID, SubtaskID: subtaskID, Attempt: 1}, RepoPath: f.repo.dir,
		IntegrationBranch: integration, Branch: "codeswarm/" + runID + "/" + subtaskID,
		Subtask:    Subtask{ID: subtaskID, Name: subtaskID, Instruction: instruction, Specialty: "docs"},
		DepContext: "00-dep: wrote c.txt",
	}
}

func TestStartSubtask(t *testing.T) {
	f := newGitFixture(t)
	prep := f.prepare(t)
	// A dependency was merged: the worktree must start from the integration
	// head, not from the base.
	head := f.repo.commitOn(integration, prep.BaseCommit, map[string]string{"c.txt": "from a dependency\n"})
	in := startInput(f, "01-docs", "Document a.txt.\nKeep it short.")

	res := mustRun[StartSubtaskResult](t, f.env, f.a.StartSubtask, in)
	wantDir := WorktreeDir(f.a.WorkspaceRoot, runID, "01-docs", 1)
	if !sameDir(t, res.Worktree, wantDir) || res.Branch != in.Branch || res.BaseCommit != head {
		t.Fatalf("StartSubtask = %+v, want worktree %s on %s from %s", res, wantDir, in.Branch, head)
	}
	if !strings.HasPrefix(res.Worktree, f.a.WorkspaceRoot) {
		t.Errorf("worktree %q is not under the workspace root %q", res.Worktree, f.a.WorkspaceRoot)
	}
	if got := gitCmd(t, res.Worktree, nil, "symbolic-ref", "--short", "HEAD"); got != in.Branch {
		t.Errorf("worktree branch = %q", got)
	}
	if got := gitCmd(t, res.Worktree, nil, "rev-parse", "HEAD"); got != head {
		t.Errorf("worktree HEAD = %s, want the integration head %s", got, head)
	}
	if got := readFile(t, filepath.Join(res.Worktree, "c.txt")); got != "from a dependency\n" {
		t.Errorf("dependency's file in the worktree = %q", got)
	}

	recs := load(t, f.a.Transcripts, in.Ref)
	if len(recs) != 2 || recs[0].Key != keySystem() || recs[1].Key != keyUser() {
		t.Fatalf("transcript head = %+v", recs)
	}
	sys, user := recs[0].Message.Content, recs[1].Message.Content
	for _, w := range []string{"PROJECT INSTRUCTIONS (from AGENTS.md)", "Always run gofmt before finishing.", res.Worktree, "docs specialist"} {
		if !strings.Contains(sys, w) {
			t.Errorf("system prompt lacks %q", w)
		}
	}
	if !strings.HasPrefix(user, "Complete this task:\n\n"+in.Subtask.Instruction) || !strings.Contains(user, in.DepContext) {
		t.Errorf("user prompt = %q", user)
	}

	// Idempotent: a retry reuses the worktree and writes nothing new.
	writeFile(t, filepath.Join(res.Worktree, "work.txt"), "in progress\n")
	again := mustRun[StartSubtaskResult](t, f.env, f.a.StartSubtask, in)
	if !sameDir(t, again.Worktree, res.Worktree) || again.Branch != res.Branch {
		t.Errorf("retry = %+v, want %+v", again, res)
	}
	if _, err := os.Stat(filepath.Join(res.Worktree, "work.txt")); err != nil {
		t.Errorf("retry lost work in the worktree: %v", err)
	}
	if n := len(load(t, f.a.Transcripts, in.Ref)); n != 2 {
		t.Errorf("transcript has %d records after a retry, want 2", n)
	}
}

func TestStartSubtaskWithoutIntegrationBranch(t *testing.T) {
	f := newGitFixture(t)
	if _, err := run[StartSubtaskResult](t, f.env, f.a.StartSubtask, startInput(f, "01-x", "x")); err == nil {
		t.Fatal("StartSubtask without an integration branch succeeded")
	}
}

// subtaskCommit starts a subtask, writes files into its worktree and
// commits them through CommitSubtask.
func (f *gitFixture) subtaskCommit(t *testing.T, id string, files map[string]string) CommitSubtaskResult {
	t.Helper()
	st := mustRun[StartSubtaskResult](t, f.env, f.a.StartSubtask, startInput(f, id, "edit files"))
	for p, c := range files {
		writeFile(t, filepath.Join(st.Worktree, p), c)
	}
	return mustRun[CommitSubtaskResult](t, f.env, f.a.CommitSubtask, CommitSubtaskInput{
		RunID: runID, SubtaskID: id, Name: "name of " + id, Worktree: st.Worktree, BaseCommit: st.BaseCommit,
	})
}

func TestCommitSubtask(t *testing.T) {
	f := newGitFixture(t)
	f.prepare(t)
	st := mustRun[StartSubtaskResult](t, f.env, f.a.StartSubtask, startInput(f, "01-edit", "edit"))
	writeFile(t, filepath.Join(st.Worktree, "a.txt"), "alpha, edited\n")
	writeFile(t, filepath.Join(st.Worktree, "new/file.txt"), "new\n")
	in := CommitSubtaskInput{RunID: runID, SubtaskID: "01-edit", Name: "edit things", Worktree: st.Worktree, BaseCommit: st.BaseCommit}

	out := mustRun[CommitSubtaskResult](t, f.env, f.a.CommitSubtask, in)
	if !out.Changed || out.Commit == st.BaseCommit || !reflect.DeepEqual(out.FilesChanged, []string{"a.txt", "new/file.txt"}) {
		t.Fatalf("CommitSubtask = %+v", out)
	}
	if got := gitCmd(t, st.Worktree, nil, "rev-parse", "HEAD"); got != out.Commit {
		t.Errorf("worktree HEAD %s, want %s", got, out.Commit)
	}
	trailers := gitCmd(t, st.Worktree, nil, "log", "-1", "--format=%(trailers:only,unfold)", out.Commit)
	if want := "Codeswarm-Run: " + runID + "\nCodeswarm-Subtask: 01-edit"; trailers != want {
		t.Errorf("trailers = %q, want %q", trailers, want)
	}
	if subject := gitCmd(t, st.Worktree, nil, "log", "-1", "--format=%s", out.Commit); !strings.Contains(subject, "edit things") {
		t.Errorf("subject = %q", subject)
	}

	again := mustRun[CommitSubtaskResult](t, f.env, f.a.CommitSubtask, in)
	if !reflect.DeepEqual(again, out) {
		t.Errorf("retry = %+v, want %+v", again, out)
	}

	// A subtask that changed nothing commits nothing.
	idle := mustRun[StartSubtaskResult](t, f.env, f.a.StartSubtask, startInput(f, "02-idle", "look only"))
	none := mustRun[CommitSubtaskResult](t, f.env, f.a.CommitSubtask, CommitSubtaskInput{RunID: runID, SubtaskID: "02-idle", Name: "idle", Worktree: idle.Worktree, BaseCommit: idle.BaseCommit})
	if none.Changed || none.Commit != idle.BaseCommit || len(none.FilesChanged) != 0 {
		t.Errorf("idle commit = %+v", none)
	}
}

// TestCommitSubtaskStagesJournaledFiles: when an attempt's changes all came
// from the file tools, the commit stages the files its journal names and
// looks at no other; once a bash call ran, it stages everything.
func TestCommitSubtaskStagesJournaledFiles(t *testing.T) {
	f := newGitFixture(t)
	f.prepare(t)
	limits := ToolLimits{BashTimeout: 30 * time.Second, BashMaxTimeout: time.Minute, MaxOutputBytes: 200_000}
	attempt := func(id string, calls ...[2]string) (StartSubtaskResult, CommitSubtaskInput) {
		t.Helper()
		in := startInput(f, id, "edit")
		st := mustRun[StartSubtaskResult](t, f.env, f.a.StartSubtask, in)
		appendRecs(t, f.a.Transcripts, in.Ref, assistantRec(0, calls...))
		for i := range calls {
			res := mustRun[ExecToolResult](t, f.env, f.a.ExecTool, ExecToolInput{Ref: in.Ref, Turn: 0, Index: i, Worktree: st.Worktree, Limits: limits})
			if res.IsError {
				t.Fatalf("tool call %d of %s failed: %+v", i, id, res)
			}
		}
		// Written behind the tools' back, which nothing does in a run:
		// whether the commit takes it shows which files it looked at.
		writeFile(t, filepath.Join(st.Worktree, "planted.txt"), "not from a tool\n")
		return st, CommitSubtaskInput{RunID: runID, SubtaskID: id, Name: id, Worktree: st.Worktree, BaseCommit: st.BaseCommit, Attempt: 1}
	}
	edit := [2]string{"edit", `{"path":"a.txt","old_string":"alpha","new_string":"alpha, edited"}`}
	write := [2]string{"write", `{"path":"new/n.txt","content":"n\n"}`}

	st, in := attempt("01-tools", edit, write)
	out := mustRun[CommitSubtaskResult](t, f.env, f.a.CommitSubtask, in)
	if want := []string{"a.txt", "new/n.txt"}; !out.Changed || !reflect.DeepEqual(out.FilesChanged, want) {
		t.Fatalf("CommitSubtask of a tools-only attempt = %+v, want a commit of exactly %v", out, want)
	}
	if got := gitCmd(t, st.Worktree, nil, "status", "--porcelain"); got != "?? planted.txt" {
		t.Errorf("status after the commit = %q, want only the planted file left", got)
	}
	// Without the attempt the journal is not known: everything is staged.
	st, in = attempt("02-unknown", edit)
	in.Attempt = 0
	out = mustRun[CommitSubtaskResult](t, f.env, f.a.CommitSubtask, in)
	if want := []string{"a.txt", "planted.txt"}; !reflect.DeepEqual(out.FilesChanged, want) {
		t.Errorf("CommitSubtask without the attempt = %+v, want a commit of %v", out, want)
	}
	// A bash call may have changed anything: everything is staged.
	st, in = attempt("03-bash", edit, [2]string{"bash", `{"command":"echo b > by-bash.txt"}`})
	out = mustRun[CommitSubtaskResult](t, f.env, f.a.CommitSubtask, in)
	if want := []string{"a.txt", "by-bash.txt", "planted.txt"}; !reflect.DeepEqual(out.FilesChanged, want) {
		t.Errorf("CommitSubtask after a bash call = %+v, want a commit of %v", out, want)
	}
	if got := gitCmd(t, st.Worktree, nil, "status", "--porcelain"); got != "" {
		t.Errorf("status after the commit of a bash attempt = %q, want clean", got)
	}
}

func TestMergeSubtask(t *testing.T) {
	f := newGitFixture(t)
	prep := f.prepare(t)
	// Both subtasks start from the base, so both change a.txt's only line.
	one := f.subtaskCommit(t, "01-one", map[string]string{"a.txt": "alpha one\n", "one.txt": "1\n"})
	two := f.subtaskCommit(t, "02-two", map[string]string{"a.txt": "alpha two\n"})
	three := f.subtaskCommit(t, "03-three", map[string]string{"three.txt": "3\n"})

	in := MergeSubtaskInput{RunID: runID, RepoPath: f.repo.dir, IntegrationBranch: integration, SubtaskID: "01-one", Name: "one", Commit: one.Commit}
	merged := mustRun[MergeSubtaskResult](t, f.env, f.a.MergeSubtask, in)
	if merged.Status != MergeMerged || !reflect.DeepEqual(merged.FilesChanged, []string{"a.txt", "one.txt"}) {
		t.Fatalf("clean merge = %+v", merged)
	}
	if got := f.repo.git("rev-parse", integration); got != merged.Commit {
		t.Errorf("integration head %s, want the merge commit %s", got, merged.Commit)
	}
	if parents := f.repo.git("rev-list", "--parents", "-n1", merged.Commit); parents != merged.Commit+" "+prep.BaseCommit+" "+one.Commit {
		t.Errorf("merge parents = %q", parents)
	}
	if tr := f.repo.git("log", "-1", "--format=%(trailers:only,unfold)", merged.Commit); !strings.Contains(tr, "Codeswarm-Subtask: 01-one") || !strings.Contains(tr, "Codeswarm-Run: "+runID) {
		t.Errorf("merge trailers = %q", tr)
	}
	count := f.repo.git("rev-list", "--count", integration)

	// A retry after the merge landed reports it again, with no new commit.
	retry := mustRun[MergeSubtaskResult](t, f.env, f.a.MergeSubtask, in)
	if retry.Status != MergeMerged || retry.Commit != merged.Commit {
		t.Errorf("retry = %+v, want %+v", retry, merged)
	}
	if got := f.repo.git("rev-list", "--count", integration); got != count {
		t.Errorf("commits on the integration branch: %s after retry, want %s", got, count)
	}

	conflict := mustRun[MergeSubtaskResult](t, f.env, f.a.MergeSubtask, MergeSubtaskInput{
		RunID: runID, RepoPath: f.repo.dir, IntegrationBranch: integration, SubtaskID: "02-two", Name: "two", Commit: two.Commit,
	})
	if conflict.Status != MergeConflict || !reflect.DeepEqual(conflict.Conflicts, []string{"a.txt"}) || conflict.Commit != merged.Commit {
		t.Errorf("conflicting merge = %+v", conflict)
	}
	if got := f.repo.git("rev-parse", integration); got != merged.Commit {
		t.Errorf("a conflict moved the integration branch to %s", got)
	}
	if got := f.repo.git("rev-parse", "codeswarm/"+runID+"/02-two"); got != two.Commit {
		t.Errorf("the conflicting subtask's branch is at %s, want it kept at %s", got, two.Commit)
	}

	clean := mustRun[MergeSubtaskResult](t, f.env, f.a.MergeSubtask, MergeSubtaskInput{
		RunID: runID, RepoPath: f.repo.dir, IntegrationBranch: integration, SubtaskID: "03-three", Name: "three", Commit: three.Commit,
	})
	if clean.Status != MergeMerged || !reflect.DeepEqual(clean.FilesChanged, []string{"three.txt"}) {
		t.Errorf("second clean merge = %+v", clean)
	}
}

func TestMergeSubtasks(t *testing.T) {
	f := newGitFixture(t)
	prep := f.prepare(t)
	// one and two both change a.txt's only line; three is clean; none
	// committed nothing and sits at the base.
	one := f.subtaskCommit(t, "01-one", map[string]string{"a.txt": "alpha one\n", "one.txt": "1\n"})
	two := f.subtaskCommit(t, "02-two", map[string]string{"a.txt": "alpha two\n"})
	three := f.subtaskCommit(t, "03-three", map[string]string{"three.txt": "3\n"})
	item := func(id, commit string) MergeSubtaskInput {
		return MergeSubtaskInput{SubtaskID: id, Name: "name " + id, Commit: commit}
	}
	in := MergeSubtasksInput{RunID: runID, RepoPath: f.repo.dir, IntegrationBranch: integration, Items: []MergeSubtaskInput{
		item("01-one", one.Commit), item("04-none", prep.BaseCommit), item("02-two", two.Commit), item("03-three", three.Commit),
	}, Head: prep.BaseCommit}

	// A worker died after the batch's first merge landed: the retry finds it.
	first := mustRun[MergeSubtaskResult](t, f.env, f.a.MergeSubtask, MergeSubtaskInput{
		RunID: runID, RepoPath: f.repo.dir, IntegrationBranch: integration, SubtaskID: "01-one", Name: "name 01-one", Commit: one.Commit,
	})
	out := mustRun[MergeSubtasksResult](t, f.env, f.a.MergeSubtasks, in)
	if len(out.Results) != 4 {
		t.Fatalf("MergeSubtasks = %+v; want four outcomes", out)
	}
	r1, r4, r2, r3 := out.Results[0], out.Results[1], out.Results[2], out.Results[3]
	if !reflect.DeepEqual(r1, first) {
		t.Errorf("first item = %+v; want the merge that had landed, %+v", r1, first)
	}
	if r2.Status != MergeConflict || !reflect.DeepEqual(r2.Conflicts, []string{"a.txt"}) || r2.Commit != r1.Commit {
		t.Errorf("conflicting item = %+v; want a conflict in a.txt against %s", r2, r1.Commit)
	}
	if r3.Status != MergeMerged || !reflect.DeepEqual(r3.FilesChanged, []string{"three.txt"}) {
		t.Errorf("last item = %+v; want merged after the conflict", r3)
	}
	if parents := f.repo.git("rev-list", "--parents", "-n1", r3.Commit); parents != r3.Commit+" "+r1.Commit+" "+three.Commit {
		t.Errorf("last merge's parents = %q; want it on the first's merge", parents)
	}
	if tr := f.repo.git("log", "-1", "--format=%(trailers:only,unfold)", r3.Commit); !strings.Contains(tr, "Codeswarm-Subtask: 03-three") || !strings.Contains(tr, "Codeswarm-Run: "+runID) {
		t.Errorf("last merge's trailers = %q", tr)
	}
	if r4.Status != MergeNoChanges || r4.Commit != r1.Commit {
		t.Errorf("item with no changes = %+v; want no changes at %s", r4, r1.Commit)
	}
	if got := f.repo.git("rev-parse", integration); got != r3.Commit {
		t.Errorf("integration head %s; want the last merge %s", got, r3.Commit)
	}
	count := f.repo.git("rev-list", "--count", integration)

	// The whole batch retried: nothing merged again, the same outcomes.
	again := mustRun[MergeSubtasksResult](t, f.env, f.a.MergeSubtasks, in)
	if !reflect.DeepEqual(again, out) {
		t.Errorf("retry = %+v\nwant %+v", again, out)
	}
	if got := f.repo.git("rev-list", "--count", integration); got != count {
		t.Errorf("commits on the integration branch: %s after the retry, want %s", got, count)
	}
}

// TestMergeSubtasksLandsTheBatchAtOnce: a chunk's merges reach the
// integration branch in one update, so a crash leaves all of them or none.
func TestMergeSubtasksLandsTheBatchAtOnce(t *testing.T) {
	f := newGitFixture(t)
	prep := f.prepare(t)
	var items []MergeSubtaskInput
	for _, id := range []string{"01-one", "02-two", "03-three"} {
		c := f.subtaskCommit(t, id, map[string]string{id + ".txt": id + "\n"})
		items = append(items, MergeSubtaskInput{SubtaskID: id, Name: "name " + id, Commit: c.Commit})
	}
	updates := func() int {
		return len(strings.Split(f.repo.git("reflog", "show", "--format=%H", "refs/heads/"+integration), "\n"))
	}
	before := updates()
	out := mustRun[MergeSubtasksResult](t, f.env, f.a.MergeSubtasks, MergeSubtasksInput{
		RunID: runID, RepoPath: f.repo.dir, IntegrationBranch: integration, Head: prep.BaseCommit, Items: items,
	})
	for i, r := range out.Results {
		if r.Status != MergeMerged || !reflect.DeepEqual(r.FilesChanged, []string{items[i].SubtaskID + ".txt"}) {
			t.Errorf("item %d = %+v; want merged, changing %s.txt", i, r, items[i].SubtaskID)
		}
	}
	if got := f.repo.git("rev-parse", integration); len(out.Results) != 3 || got != out.Results[2].Commit {
		t.Fatalf("integration head %s; want the last merge of %+v", got, out.Results)
	}
	if got := updates() - before; got != 1 {
		t.Errorf("the integration branch was updated %d times; want once", got)
	}
	if _, err := run[MergeSubtaskResult](t, f.env, f.a.MergeSubtask, MergeSubtaskInput{
		RunID: runID, RepoPath: filepath.Join(t.TempDir(), "gone"), IntegrationBranch: integration, SubtaskID: "01-one", Commit: items[0].Commit,
	}); err == nil {
		t.Error("a merge in a repository that is gone succeeded")
	}
}

// TestMergeSubtasksLandsChunks: a batch longer than mergeChunk lands a
// chunk at a time (its first worktrees are parked while the rest merge),
// and the batch retried after a crash that landed only its first chunk
// gives the same outcomes and merges nothing twice.
func TestMergeSubtasksLandsChunks(t *testing.T) {
	f := newGitFixture(t)
	prep := f.prepare(t)
	n := mergeChunk + 2
	var items []MergeSubtaskInput
	for i := range n {
		id := fmt.Sprintf("%02d-item", i)
		c := f.subtaskCommit(t, id, map[string]string{id + ".txt": id + "\n"})
		items = append(items, MergeSubtaskInput{SubtaskID: id, Name: "name " + id, Commit: c.Commit})
	}
	updates := func() int {
		return len(strings.Split(f.repo.git("reflog", "show", "--format=%H", "refs/heads/"+integration), "\n"))
	}
	in := MergeSubtasksInput{RunID: runID, RepoPath: f.repo.dir, IntegrationBranch: integration, Head: prep.BaseCommit, Items: items}
	crashed := in
	crashed.Items = items[:mergeChunk]
	before := updates()
	landed := mustRun[MergeSubtasksResult](t, f.env, f.a.MergeSubtasks, crashed)
	out := mustRun[MergeSubtasksResult](t, f.env, f.a.MergeSubtasks, in)
	if len(out.Results) != n || !reflect.DeepEqual(out.Results[:mergeChunk], landed.Results) {
		t.Fatalf("retried batch = %+v\nwant the first chunk's outcomes %+v", out.Results, landed.Results)
	}
	for i, r := range out.Results {
		if r.Status != MergeMerged || !reflect.DeepEqual(r.FilesChanged, []string{items[i].SubtaskID + ".txt"}) {
			t.Errorf("item %d = %+v; want merged, changing %s.txt", i, r, items[i].SubtaskID)
		}
	}
	if got := f.repo.git("rev-parse", integration); got != out.Results[n-1].Commit {
		t.Errorf("integration head %s; want the last merge %s", got, out.Results[n-1].Commit)
	}
	if got := f.repo.git("rev-list", "--count", "--merges", prep.BaseCommit+".."+integration); got != strconv.Itoa(n) {
		t.Errorf("%s merge commits on the integration branch, want %d", got, n)
	}
	if got := updates() - before; got != 2 {
		t.Errorf("the integration branch was updated %d times; want twice (the first chunk, then the rest)", got)
	}
}

func TestVerify(t *testing.T) {
	f := newGitFixture(t)
	prep := f.prepare(t)
	tests := []struct {
		name    string
		command string
		ok      bool
		code    int
		output  string
	}{
		{"passing", "cat a.txt", true, 0, "alpha"},
		{"failing", "echo broken >&2; exit 3", false, 3, "broken"},
		{"sees the commit, not the user's tree", "test ! -e notes.txt && echo clean", true, 0, "clean"},
	}
	f.repo.write("notes.txt", "untracked\n")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := mustRun[VerifyReport](t, f.env, f.a.Verify, VerifyInput{
				RunID: runID, RepoPath: f.repo.dir, Commit: prep.BaseCommit, Command: tt.command, Timeout: 30 * time.Second, MaxOutput: 10_000,
			})
			if rep.OK != tt.ok || rep.ExitCode != tt.code || !strings.Contains(rep.Output, tt.output) || rep.Command != tt.command || rep.Commit != prep.BaseCommit {
				t.Errorf("Verify = %+v, want ok %v exit %d output containing %q", rep, tt.ok, tt.code, tt.output)
			}
		})
	}
	if list := f.repo.git("worktree", "list"); strings.Contains(list, "verify-") {
		t.Errorf("verify worktree left behind:\n%s", list)
	}
}

func TestExitCode(t *testing.T) {
	tests := map[string]int{
		"ok\nexit code: 0":           0,
		"exit code: 1\nexit code: 2": 2,
		"exit code: 17\n":            17,
		"no code":                    -1,
		"exit code: x":               -1,
	}
	for in, want := range tests {
		if got := exitCode(in); got != want {
			t.Errorf("exitCode(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestFinishRunApply(t *testing.T) {
	tests := []struct {
		name    string
		dirty   bool
		applied bool
	}{
		{"clean tree fast-forwards", false, true},
		{"dirty tree is refused", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newGitFixture(t)
			prep := f.prepare(t)
			c := f.subtaskCommit(t, "01-one", map[string]string{"a.txt": "alpha, by the swarm\n"})
			m := mustRun[MergeSubtaskResult](t, f.env, f.a.MergeSubtask, MergeSubtaskInput{
				RunID: runID, RepoPath: f.repo.dir, IntegrationBranch: integration, SubtaskID: "01-one", Commit: c.Commit,
			})
			st := WorktreeDir(f.a.WorkspaceRoot, runID, "01-one", 1)
			if tt.dirty {
				f.repo.write("b.txt", "bravo, edited by the user\n")
			}
			in := FinishRunInput{
				RunID: runID, RepoPath: f.repo.dir, GCAutoPrev: prep.GCAutoPrev, GCAutoHad: prep.GCAutoHad,
				RemoveWorktrees: []string{st}, Apply: true, BaseBranch: prep.BaseBranch, BaseCommit: prep.BaseCommit, IntegrationHead: m.Commit,
			}
			fin := mustRun[FinishRunResult](t, f.env, f.a.FinishRun, in)
			if fin.Applied != tt.applied {
				t.Fatalf("FinishRun = %+v, want applied %v", fin, tt.applied)
			}
			if fin.RemovedCount != 1 || len(fin.Kept) != 0 {
				t.Errorf("worktrees removed %d kept %v, want the merged one removed", fin.RemovedCount, fin.Kept)
			}
			if _, err := os.Stat(st); !os.IsNotExist(err) {
				t.Errorf("merged worktree still on disk: %v", err)
			}
			head := f.repo.git("rev-parse", "main")
			if tt.applied {
				if head != m.Commit || f.repo.read("a.txt") != "alpha, by the swarm\n" || fin.ApplyError != "" {
					t.Errorf("after apply: main %s (want %s), a.txt %q, error %q", head, m.Commit, f.repo.read("a.txt"), fin.ApplyError)
				}
				return
			}
			if head != prep.BaseCommit || f.repo.read("a.txt") != "alpha\n" || f.repo.read("b.txt") != "bravo, edited by the user\n" {
				t.Errorf("a refused apply touched the user's branch or tree: main %s", head)
			}
			if !strings.HasPrefix(fin.ApplyError, "not applied: ") || !strings.Contains(fin.ApplyError, "b.txt") {
				t.Errorf("ApplyError = %q, want a refusal naming b.txt", fin.ApplyError)
			}

			// The refusal is not final: once the user cleans up, a retry applies.
			f.repo.git("checkout", "--", "b.txt")
			fin = mustRun[FinishRunResult](t, f.env, f.a.FinishRun, in)
			if !fin.Applied || f.repo.git("rev-parse", "main") != m.Commit {
				t.Errorf("apply after cleanup = %+v", fin)
			}
		})
	}
}

func TestFinishRunKeepsDirtyWorktreeAndExplainsNoApply(t *testing.T) {
	f := newGitFixture(t)
	prep := f.prepare(t)
	st := mustRun[StartSubtaskResult](t, f.env, f.a.StartSubtask, startInput(f, "01-dirty", "x"))
	writeFile(t, filepath.Join(st.Worktree, "wip.txt"), "uncommitted\n")
	fin := mustRun[FinishRunResult](t, f.env, f.a.FinishRun, FinishRunInput{
		RunID: runID, RepoPath: f.repo.dir, GCAutoPrev: prep.GCAutoPrev, GCAutoHad: prep.GCAutoHad,
		RemoveWorktrees: []string{st.Worktree}, Apply: true, BaseBranch: "main", BaseCommit: prep.BaseCommit, IntegrationHead: prep.BaseCommit,
	})
	if !reflect.DeepEqual(fin.Kept, []string{st.Worktree}) || fin.RemovedCount != 0 {
		t.Errorf("dirty worktree: removed %d kept %v", fin.RemovedCount, fin.Kept)
	}
	if fin.Applied || !strings.Contains(fin.ApplyError, "no changes") {
		t.Errorf("apply without changes = %+v", fin)
	}
	if got := readFile(t, filepath.Join(st.Worktree, "wip.txt")); got != "uncommitted\n" {
		t.Errorf("wip.txt = %q", got)
	}
}

// A StartSubtask retried after another subtask was merged must still report
// the commit the worktree was created from: CommitSubtask compares with it.
func TestStartSubtaskRetryAfterIntegrationMoved(t *testing.T) {
	f := newGitFixture(t)
	prep := f.prepare(t)
	in := startInput(f, "01-idle", "look around")
	first := mustRun[StartSubtaskResult](t, f.env, f.a.StartSubtask, in)
	if first.BaseCommit != prep.BaseCommit {
		t.Fatalf("BaseCommit = %s, want %s", first.BaseCommit, prep.BaseCommit)
	}
	f.repo.commitOn(integration, prep.BaseCommit, map[string]string{"other.txt": "merged meanwhile\n"})

	again := mustRun[StartSubtaskResult](t, f.env, f.a.StartSubtask, in)
	if again.BaseCommit != first.BaseCommit {
		t.Errorf("retry BaseCommit = %s, want the worktree's start %s", again.BaseCommit, first.BaseCommit)
	}
	out := mustRun[CommitSubtaskResult](t, f.env, f.a.CommitSubtask, CommitSubtaskInput{
		RunID: runID, SubtaskID: "01-idle", Name: "idle", Worktree: again.Worktree, BaseCommit: again.BaseCommit,
	})
	if out.Changed || len(out.FilesChanged) != 0 {
		t.Errorf("idle subtask after a retried start = %+v, want no changes", out)
	}
}

func TestStartSubtaskConflictNote(t *testing.T) {
	f := newGitFixture(t)
	prep := f.prepare(t)
	head := f.repo.commitOn(integration, prep.BaseCommit, map[string]string{"a.txt": "alpha from the winner\n"})
	in := startInput(f, "02-loser", "Change a.txt.")
	in.Ref.Attempt, in.Branch = 2, in.Branch+"-r2"
	in.Conflict = &ConflictInfo{Paths: []string{"a.txt"}, FirstBase: prep.BaseCommit, FirstCommit: "0123456789abcdef"}

	res := mustRun[StartSubtaskResult](t, f.env, f.a.StartSubtask, in)
	if res.BaseCommit != head || !strings.HasSuffix(res.Worktree, "02-loser-r2") {
		t.Fatalf("StartSubtask = %+v", res)
	}
	user := load(t, f.a.Transcripts, in.Ref)[1].Message.Content
	for _, w := range []string{"Complete this task:\n\nChange a.txt.", "0123456789", "in: a.txt", "+alpha from the winner", "-alpha"} {
		if !strings.Contains(user, w) {
			t.Errorf("user prompt lacks %q:\n%s", w, user)
		}
	}
	if strings.Index(user, "NOTE:") < strings.Index(user, "Change a.txt.") {
		t.Error("the conflict note comes before the instruction")
	}
}

// TestRunGitIgnoresWorkerGitEnv runs the activities' git under a GIT_DIR and
// GIT_WORK_TREE pointing at another repository (as in a git hook): the
// command must still act on the repository it was pointed at.
func TestRunGitIgnoresWorkerGitEnv(t *testing.T) {
	mine := newGitRepo(t, map[string]string{"a.txt": "a\n"})
	base := mine.git("rev-parse", "HEAD")
	head := mine.commitOn("feature", base, map[string]string{"b.txt": "b\n"})
	other := newGitRepo(t, map[string]string{"x.txt": "x\n"})
	t.Setenv("GIT_DIR", filepath.Join(other.dir, ".git"))
	t.Setenv("GIT_WORK_TREE", other.dir)

	got, err := forkPoint(t.Context(), mine.dir, "feature", base)
	if err != nil || got != base {
		t.Errorf("forkPoint = %q, %v; want %s (the GIT_DIR of the environment leaked)", got, err, base)
	}
	if _, err := runGit(t.Context(), mine.dir, "cat-file", "-e", head); err != nil {
		t.Errorf("cat-file of the repository's own commit: %v", err)
	}
}

// TestCommitSubtaskAndApplyRunNothingPlanted: a sub-agent plants a nested
// repository with an fsmonitor, hooks under the user's relative hooks path
// and a .gitmodules update command; committing, merging and applying the
// result runs none of them, with the worker's secret in the environment.
func TestCommitSubtaskAndApplyRunNothingPlanted(t *testing.T) {
	const secret = "sk-test-activities-secret"
	t.Setenv("OPENAI_API_KEY", secret)
	f := newGitFixture(t)
	f.repo.git("config", "core.hooksPath", ".githooks")
	prep := f.prepare(t)
	trap := t.TempDir()
	script := func(path, name string) {
		writeFile(t, path, "#!/bin/sh\nenv > "+filepath.Join(trap, name)+"\n")
		if err := os.Chmod(path, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	st := mustRun[StartSubtaskResult](t, f.env, f.a.StartSubtask, startInput(f, "01-hostile", "edit"))
	lib := filepath.Join(st.Worktree, "vendor", "lib")
	gitCmd(t, "", nil, "init", "--quiet", lib)
	writeFile(t, filepath.Join(lib, "lib.go"), "package lib\n")
	gitCmd(t, lib, nil, "add", "lib.go")
	gitCmd(t, lib, nil, "commit", "--quiet", "-m", "nested")
	fsmon := filepath.Join(t.TempDir(), "fsmonitor")
	script(fsmon, "fsmonitor")
	gitCmd(t, lib, nil, "config", "core.fsmonitor", fsmon)
	for _, h := range []string{"pre-commit", "prepare-commit-msg", "post-commit", "post-index-change", "reference-transaction", "post-merge", "post-checkout"} {
		script(filepath.Join(st.Worktree, ".githooks", h), "hook-"+h)
	}
	writeFile(t, filepath.Join(st.Worktree, ".gitmodules"), "[submodule \"lib\"]\n\tpath = vendor/lib\n\turl = ./vendor/lib\n\tupdate = !env > "+filepath.Join(trap, "update")+"\n")
	writeFile(t, filepath.Join(st.Worktree, "a.txt"), "alpha, edited\n")
	in := CommitSubtaskInput{RunID: runID, SubtaskID: "01-hostile", Name: "hostile", Worktree: st.Worktree, BaseCommit: st.BaseCommit}
	out := mustRun[CommitSubtaskResult](t, f.env, f.a.CommitSubtask, in)
	if !out.Changed || len(out.Notes) != 1 || !strings.Contains(out.Notes[0], "vendor/lib") {
		t.Fatalf("CommitSubtask = %+v, want a commit with a note on vendor/lib", out)
	}
	merged := mustRun[MergeSubtaskResult](t, f.env, f.a.MergeSubtask, MergeSubtaskInput{
		RunID: runID, RepoPath: f.repo.dir, IntegrationBranch: integration, SubtaskID: "01-hostile", Name: "hostile", Commit: out.Commit,
	})
	if merged.Status != MergeMerged {
		t.Fatalf("MergeSubtask = %+v", merged)
	}
	fin := mustRun[FinishRunResult](t, f.env, f.a.FinishRun, FinishRunInput{
		RunID: runID, RepoPath: f.repo.dir, Apply: true, BaseBranch: prep.BaseBranch, BaseCommit: prep.BaseCommit, IntegrationHead: merged.Commit,
	})
	if !fin.Applied {
		t.Fatalf("FinishRun = %+v, want applied", fin)
	}
	if _, err := os.Stat(filepath.Join(f.repo.dir, ".githooks", "post-merge")); err != nil {
		t.Fatalf("the planted hooks did not reach the user's tree: %v", err)
	}
	entries, err := os.ReadDir(trap)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("planted program ran: %s", e.Name())
	}
	if hits := gitExit(f.repo.dir, "grep", "-q", secret, merged.Commit); hits == 0 {
		t.Errorf("the worker's secret is in the run's result")
	}
}

// TestFinishRunDropsEmptyIntegrationBranch: a run that did not succeed and
// merged nothing leaves no integration branch; one that merged something
// keeps it.
func TestFinishRunDropsEmptyIntegrationBranch(t *testing.T) {
	f := newGitFixture(t)
	prep := f.prepare(t)
	fin := mustRun[FinishRunResult](t, f.env, f.a.FinishRun, FinishRunInput{
		RunID: "run-1", RepoPath: f.repo.dir, BaseBranch: "main", BaseCommit: prep.BaseCommit,
		IntegrationHead: prep.BaseCommit, DropEmptyBranch: integration,
	})
	if !fin.DroppedBranch || gitExit(f.repo.dir, "rev-parse", "--verify", "-q", "refs/heads/"+integration) == 0 {
		t.Errorf("empty integration branch: dropped %v, still there %v", fin.DroppedBranch, gitExit(f.repo.dir, "rev-parse", "--verify", "-q", "refs/heads/"+integration) == 0)
	}
	again := f.prepare(t)
	moved := f.repo.commitOn(integration, again.BaseCommit, map[string]string{"c.txt": "c\n"})
	fin = mustRun[FinishRunResult](t, f.env, f.a.FinishRun, FinishRunInput{
		RunID: "run-1", RepoPath: f.repo.dir, BaseBranch: "main", BaseCommit: again.BaseCommit,
		IntegrationHead: moved, DropEmptyBranch: integration,
	})
	if fin.DroppedBranch || f.repo.git("rev-parse", "refs/heads/"+integration) != moved {
		t.Errorf("an integration branch with merged work was dropped (%v)", fin.DroppedBranch)
	}
}

// TestSaveMovedWork: the work a sub-agent had not committed when a move
// stopped it is committed on its branch, found by the branch; a retry and a
// branch no worktree here has checked out change nothing.
func TestSaveMovedWork(t *testing.T) {
	f := newGitFixture(t)
	f.prepare(t)
	in := startInput(f, "01-moved", "edit")
	st := mustRun[StartSubtaskResult](t, f.env, f.a.StartSubtask, in)
	writeFile(t, filepath.Join(st.Worktree, "a.txt"), "alpha, half done\n")
	writeFile(t, filepath.Join(st.Worktree, "wip/new.txt"), "new\n")
	save := SaveMovedWorkInput{RunID: runID, RepoPath: f.repo.dir, SubtaskID: "01-moved", Name: "move me", Branch: in.Branch, ToHost: "hostb"}

	out := mustRun[SaveMovedWorkResult](t, f.env, f.a.SaveMovedWork, save)
	if !out.Changed || !reflect.DeepEqual(out.FilesChanged, []string{"a.txt", "wip/new.txt"}) {
		t.Fatalf("SaveMovedWork = %+v", out)
	}
	if got := f.repo.git("rev-parse", in.Branch); got != out.Commit {
		t.Errorf("branch %s at %s, want the saved commit %s", in.Branch, got, out.Commit)
	}
	if got := f.repo.git("show", in.Branch+":a.txt"); got != "alpha, half done" {
		t.Errorf("a.txt on the branch = %q", got)
	}
	mustContainT(t, f.repo.git("log", "-1", "--format=%s", in.Branch), "work in progress, saved when the run moved to host hostb")

	again := mustRun[SaveMovedWorkResult](t, f.env, f.a.SaveMovedWork, save)
	if again.Changed || again.Commit != out.Commit {
		t.Errorf("retry = %+v, want no new commit at %s", again, out.Commit)
	}
	save.Branch = "codeswarm/" + runID + "/99-elsewhere"
	if none := mustRun[SaveMovedWorkResult](t, f.env, f.a.SaveMovedWork, save); none.Changed || none.Commit != "" {
		t.Errorf("a branch with no worktree here = %+v, want nothing", none)
	}
}

func mustContainT(t *testing.T, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Errorf("%q does not contain %q", s, sub)
	}
}

// A local StartSubtask holds its sub-agent's workflow task: when no
// worktree is at hand (the run's fresh slots are taken and nothing is
// parked) it waits no longer than localStartWait and answers Deferred,
// having created nothing, and the same input then starts the worktree as
// an activity. With a slot free it starts the worktree locally.
func TestStartSubtaskLocalDefersInsteadOfWaiting(t *testing.T) {
	f := newGitFixture(t)
	f.prepare(t)
	pool := f.a.worktrees().ready
	var held []func()
	for range freshParallelism {
		parked, done, err := pool.Source(context.Background(), runID)
		if err != nil || parked != "" {
			t.Fatalf("Source = %q, %v; want a fresh slot", parked, err)
		}
		held = append(held, done)
	}
	in := startInput(f, "01-docs", "Document a.txt.")
	start := time.Now()
	val, err := f.env.ExecuteLocalActivity(f.a.StartSubtask, in)
	if err != nil {
		t.Fatalf("local StartSubtask: %v", err)
	}
	var res StartSubtaskResult
	if err := val.Get(&res); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if !res.Deferred || res.Worktree != "" || took < localStartWait || took > localStartWait+5*time.Second {
		t.Fatalf("local StartSubtask with no worktree at hand = %+v after %v; want Deferred after %v", res, took, localStartWait)
	}
	dir := WorktreeDir(f.a.WorkspaceRoot, runID, "01-docs", 1)
	if _, err := os.Lstat(dir); !os.IsNotExist(err) {
		t.Errorf("a deferred start left %s (%v)", dir, err)
	}
	if n := len(load(t, f.a.Transcripts, in.Ref)); n != 0 {
		t.Errorf("a deferred start wrote %d transcript records", n)
	}

	// As an activity it waits for the slot.
	ch := make(chan StartSubtaskResult, 1)
	go func() { ch <- mustRun[StartSubtaskResult](t, f.env, f.a.StartSubtask, in) }()
	time.Sleep(100 * time.Millisecond)
	held[0]()
	if res := <-ch; res.Deferred || !sameDir(t, res.Worktree, dir) {
		t.Fatalf("StartSubtask as an activity = %+v; want the worktree %s", res, dir)
	}

	// A slot free: the local start starts the worktree. (The slots held
	// above count as fresh checkouts of over localFreshMax: forget them.)
	held[1]()
	pool.Forget(runID)
	in2 := startInput(f, "02-docs", "Document b.txt.")
	val, err = f.env.ExecuteLocalActivity(f.a.StartSubtask, in2)
	if err != nil {
		t.Fatalf("local StartSubtask: %v", err)
	}
	var res2 StartSubtaskResult
	if err := val.Get(&res2); err != nil {
		t.Fatal(err)
	}
	if res2.Deferred || !sameDir(t, res2.Worktree, WorktreeDir(f.a.WorkspaceRoot, runID, "02-docs", 1)) {
		t.Fatalf("local StartSubtask with a free slot = %+v; want its worktree", res2)
	}

	// A large tree whose checkouts are not timed yet: no fresh checkout
	// in a local start, although the slots are free.
	pool.Forget(runID)
	defer func(v int64) { localIndexMax = v }(localIndexMax)
	localIndexMax = 1
	val, err = f.env.ExecuteLocalActivity(f.a.StartSubtask, startInput(f, "03-docs", "Document c.txt."))
	if err != nil {
		t.Fatalf("local StartSubtask: %v", err)
	}
	var res3 StartSubtaskResult
	if err := val.Get(&res3); err != nil {
		t.Fatal(err)
	}
	if !res3.Deferred {
		t.Fatalf("local StartSubtask on a large tree = %+v; want Deferred", res3)
	}
}

// worktreeSteps lets one step at a time into a worktree; other worktrees'
// steps run meanwhile.
func TestWorktreeStepsSerialisePerWorktree(t *testing.T) {
	var k keyedMutex
	unlock := k.lock("/w/a")
	entered := make(chan string, 2)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); defer k.lock("/w/a")(); entered <- "a" }()
	go func() { defer wg.Done(); defer k.lock("/w/b")(); entered <- "b" }()
	if got := <-entered; got != "b" {
		t.Fatalf("%s entered first; want b, whose worktree is free", got)
	}
	select {
	case got := <-entered:
		t.Fatalf("%s entered while /w/a was held", got)
	case <-time.After(50 * time.Millisecond):
	}
	unlock()
	if got := <-entered; got != "a" {
		t.Fatalf("entered %s, want a once /w/a was released", got)
	}
	wg.Wait()
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.locks) != 0 {
		t.Errorf("%d locks kept after every holder left", len(k.locks))
	}
}

// FinishRun's worktree names are one path element each, under the
// directory given: a name that would reach elsewhere fails the activity
// for good and removes nothing.
func TestFinishRunRefusesNamesOutsideTheirDirectory(t *testing.T) {
	f := newGitFixture(t)
	f.prepare(t)
	st := mustRun[StartSubtaskResult](t, f.env, f.a.StartSubtask, startInput(f, "01-docs", "x"))
	for _, in := range []FinishRunInput{
		{WorktreesUnder: filepath.Join(f.a.WorkspaceRoot, runID, "sub"), RemoveNames: []string{"../01-docs"}},
		{WorktreesUnder: filepath.Join(f.a.WorkspaceRoot, runID, "01-docs"), RemoveNames: []string{".."}},
		{RemoveNames: []string{"01-docs"}},
	} {
		in.RunID, in.RepoPath = runID, f.repo.dir
		_, err := run[FinishRunResult](t, f.env, f.a.FinishRun, in)
		if err == nil {
			t.Fatalf("FinishRun(%q under %q) succeeded", in.RemoveNames, in.WorktreesUnder)
		}
		if ae := appErr(t, err); !ae.NonRetryable() || ae.Type() != "finish.input" {
			t.Errorf("error %v: type %q non-retryable %v, want finish.input non-retryable", err, ae.Type(), ae.NonRetryable())
		}
		if _, err := os.Stat(st.Worktree); err != nil {
			t.Fatalf("the worktree is gone after a refused FinishRun: %v", err)
		}
	}
}

// TestCommitAndMergeListAtMostMaxListedPaths: a sub-agent that commits a
// generated tree of 1,200 files gets a commit result, and its merge a merge
// result, listing the first MaxListedPaths files and counting the rest, so
// neither nears Temporal's payload limit however many files it adds; the
// commit and the merge have them all.
func TestCommitAndMergeListAtMostMaxListedPaths(t *testing.T) {
	f := newGitFixture(t)
	prep := f.prepare(t)
	const n = MaxListedPaths + 200
	files := make(map[string]string, n)
	for i := range n {
		files[fmt.Sprintf("gen/f%05d.txt", i)] = fmt.Sprintf("%d\n", i)
	}
	c := f.subtaskCommit(t, "01-gen", files)
	if !c.Changed || len(c.FilesChanged) != MaxListedPaths || c.FilesOmitted != 200 || c.FilesChanged[0] != "gen/f00000.txt" {
		t.Fatalf("commit of %d files: %d listed (first %q), %d omitted", n, len(c.FilesChanged), c.FilesChanged[0], c.FilesOmitted)
	}
	if got := strings.Count(f.repo.git("diff-tree", "-r", "--name-only", "--no-commit-id", prep.BaseCommit, c.Commit), "\n") + 1; got != n {
		t.Errorf("the commit changes %d files, want %d", got, n)
	}
	out := mustRun[MergeSubtasksResult](t, f.env, f.a.MergeSubtasks, MergeSubtasksInput{RunID: runID, RepoPath: f.repo.dir, IntegrationBranch: integration,
		Items: []MergeSubtaskInput{{SubtaskID: "01-gen", Name: "gen", Commit: c.Commit}}, Head: prep.BaseCommit})
	m := out.Results[0]
	if m.Status != MergeMerged || len(m.FilesChanged) != MaxListedPaths || m.FilesOmitted != 200 {
		t.Errorf("merge: status %s, %d listed, %d omitted", m.Status, len(m.FilesChanged), m.FilesOmitted)
	}
	if b, _ := json.Marshal(out); len(b) > 64<<10 {
		t.Errorf("merge result is %d bytes", len(b))
	}
}
