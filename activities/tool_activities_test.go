package activities

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"codeswarm/internal/secret"
	"codeswarm/internal/transcript"
	"codeswarm/llm"
)

// toolFixture is a git worktree, a conversation whose turn 0 calls tools,
// and an Activities to run them.
type toolFixture struct {
	repo *gitRepo
	a    *Activities
	ref  ConvRef
	in   func(index int) ExecToolInput
}

const toolSecret = "sk-live-abcdefghijklmnop"

func newToolFixture(t *testing.T, calls ...[2]string) *toolFixture {
	t.Helper()
	repo := newGitRepo(t, map[string]string{"greet.txt": "hello\n"})
	a := &Activities{
		Transcripts:   transcript.New(t.TempDir()),
		WorkspaceRoot: t.TempDir(),
		Secrets:       secret.New(toolSecret),
	}
	ref := ConvRef{RunID: "run-tools", SubtaskID: "01-greet", Attempt: 1}
	appendRecs(t, a.Transcripts, ref, sysRec("system"), userRec("Complete this task:\n\ngreet"), assistantRec(0, calls...))
	limits := ToolLimits{BashTimeout: 30 * time.Second, BashMaxTimeout: time.Minute, MaxOutputBytes: 200_000}
	return &toolFixture{repo: repo, a: a, ref: ref, in: func(i int) ExecToolInput {
		return ExecToolInput{Ref: ref, Turn: 0, Index: i, Worktree: repo.dir, Limits: limits}
	}}
}

func (f *toolFixture) record(t *testing.T, index int) (transcript.Record, bool) {
	t.Helper()
	return transcript.Find(load(t, f.a.Transcripts, f.ref), keyTool(0, index))
}

func TestExecToolEditAppliesOnce(t *testing.T) {
	f := newToolFixture(t, [2]string{"edit", `{"path":"greet.txt","old_string":"hello","new_string":"hello, world"}`})
	env := newActivityEnv(f.a)

	res := mustRun[ExecToolResult](t, env, f.a.ExecTool, f.in(0))
	if res.Name != "edit" || res.IsError || res.Reused || !reflect.DeepEqual(res.FilesChanged, []string{"greet.txt"}) {
		t.Fatalf("ExecTool = %+v", res)
	}
	if got := f.repo.read("greet.txt"); got != "hello, world\n" {
		t.Fatalf("greet.txt = %q after one edit", got)
	}
	r, ok := f.record(t, 0)
	if !ok || r.Message.Role != openai.ChatMessageRoleTool || r.Message.ToolCallID != "call_0_0" || r.Message.Name != "edit" {
		t.Fatalf("tool record = %+v, %v", r, ok)
	}
	if res.OutputChars != len(r.Message.Content) {
		t.Errorf("OutputChars = %d, record has %d", res.OutputChars, len(r.Message.Content))
	}

	again := mustRun[ExecToolResult](t, env, f.a.ExecTool, f.in(0))
	if !again.Reused || again.OutputChars != res.OutputChars {
		t.Errorf("retry = %+v, want reused", again)
	}
	if got := f.repo.read("greet.txt"); got != "hello, world\n" {
		t.Errorf("greet.txt = %q after a retry: the edit was applied twice", got)
	}
}

// A crash after the tool ran but before its transcript record was written:
// the retry finds no record, and the journal must still not apply it again.
func TestExecToolJournalCoversLostRecord(t *testing.T) {
	f := newToolFixture(t, [2]string{"edit", `{"path":"greet.txt","old_string":"hello","new_string":"hello, world"}`})
	first := mustRun[ExecToolResult](t, newActivityEnv(f.a), f.a.ExecTool, f.in(0))

	// Same worker state (journal), but a transcript that lost the tool record.
	lost := *f.a
	lost.Transcripts = transcript.New(t.TempDir())
	appendRecs(t, lost.Transcripts, f.ref, load(t, f.a.Transcripts, f.ref)[:3]...)
	res := mustRun[ExecToolResult](t, newActivityEnv(&lost), lost.ExecTool, f.in(0))
	if res.Reused || res.IsError || res.OutputChars != first.OutputChars {
		t.Errorf("replay = %+v, want the journaled result %+v", res, first)
	}
	if got := f.repo.read("greet.txt"); got != "hello, world\n" {
		t.Errorf("greet.txt = %q: the edit was applied twice", got)
	}
	if _, ok := transcript.Find(load(t, lost.Transcripts, f.ref), keyTool(0, 0)); !ok {
		t.Error("the replay did not write the tool record")
	}
}

// An attempt stopped before its edit was made (its context done: a timed
// out or abandoned attempt) leaves no result in the transcript: its retry
// makes the edit and tells the model so, rather than reusing "context
// canceled" for an edit never made.
func TestExecToolStoppedEditLeavesNoResult(t *testing.T) {
	f := newToolFixture(t, [2]string{"edit", `{"path":"greet.txt","old_string":"hello","new_string":"hello, world"}`})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := f.a.ExecTool(ctx, f.in(0)); !errors.Is(err, context.Canceled) {
		t.Errorf("stopped attempt: %v, want context.Canceled", err)
	}
	if r, ok := f.record(t, 0); ok {
		t.Fatalf("the stopped attempt left a result in the transcript: %q", r.Message.Content)
	}
	if got := f.repo.read("greet.txt"); got != "hello\n" {
		t.Fatalf("greet.txt = %q after a stopped attempt", got)
	}
	res := mustRun[ExecToolResult](t, newActivityEnv(f.a), f.a.ExecTool, f.in(0))
	if res.IsError || res.Reused || !reflect.DeepEqual(res.FilesChanged, []string{"greet.txt"}) {
		t.Errorf("retry = %+v, want the edit made", res)
	}
	if got := f.repo.read("greet.txt"); got != "hello, world\n" {
		t.Errorf("greet.txt = %q after the retry", got)
	}
}

func TestExecToolErrorsAreResults(t *testing.T) {
	f := newToolFixture(t,
		[2]string{"read", `{"path": "greet.txt"`},
		[2]string{"frobnicate", `{}`},
		[2]string{"read", `{"path":"../../etc/passwd"}`},
		[2]string{"edit", `{"path":"greet.txt","old_string":"absent text","new_string":"x"}`},
	)
	env := newActivityEnv(f.a)
	for i, want := range []string{"", "frobnicate", "", "not found"} {
		res, err := run[ExecToolResult](t, env, f.a.ExecTool, f.in(i))
		if err != nil {
			t.Fatalf("call %d: a tool failure became an activity error: %v", i, err)
		}
		if !res.IsError {
			t.Errorf("call %d: IsError false, want true (%+v)", i, res)
		}
		r, ok := f.record(t, i)
		if !ok || r.Message.Content == "" || !strings.Contains(r.Message.Content, want) {
			t.Errorf("call %d: tool record = %q, %v; want an explanation mentioning %q", i, r.Message.Content, ok, want)
		}
	}
	if got := f.repo.read("greet.txt"); got != "hello\n" {
		t.Errorf("greet.txt = %q after failing calls", got)
	}
}

func TestExecToolMissingCall(t *testing.T) {
	f := newToolFixture(t, [2]string{"read", `{"path":"greet.txt"}`})
	if _, err := run[ExecToolResult](t, newActivityEnv(f.a), f.a.ExecTool, f.in(3)); err == nil {
		t.Fatal("ExecTool of a call that is not in the transcript succeeded")
	}
}

func TestExecToolLargeOutput(t *testing.T) {
	f := newToolFixture(t,
		[2]string{"bash", `{"command":"yes | head -c 60000"}`},
		[2]string{"bash", `{"command":"yes | head -c 10000"}`},
		[2]string{"bash", `{"command":"printf 'short'"}`},
	)
	env := newActivityEnv(f.a)

	huge := mustRun[ExecToolResult](t, env, f.a.ExecTool, f.in(0))
	if !huge.NeedsSummary || huge.OutputChars <= llm.SummarizeThresholdChars {
		t.Fatalf("60000-char output = %+v, want NeedsSummary", huge)
	}
	if _, ok := f.record(t, 0); ok {
		t.Error("an output awaiting a summary already has a transcript record")
	}
	blob, err := f.a.Transcripts.GetBlob(tref(f.ref), keyTool(0, 0))
	if err != nil || len(blob) != huge.OutputChars || !strings.HasPrefix(string(blob), "y\ny\n") {
		t.Errorf("blob = %d bytes, %v; want the %d-char raw output", len(blob), err, huge.OutputChars)
	}

	big := mustRun[ExecToolResult](t, env, f.a.ExecTool, f.in(1))
	r, ok := f.record(t, 1)
	if big.NeedsSummary || !ok || !strings.Contains(r.Message.Content, "chars omitted") || len(r.Message.Content) > llm.SimpleTruncateChars+200 {
		t.Errorf("10000-char output = %+v, record %d chars (truncated: %v)", big, len(r.Message.Content), strings.Contains(r.Message.Content, "chars omitted"))
	}

	small := mustRun[ExecToolResult](t, env, f.a.ExecTool, f.in(2))
	r, _ = f.record(t, 2)
	if small.NeedsSummary || !strings.HasPrefix(r.Message.Content, "short") || !strings.Contains(r.Message.Content, "exit code: 0") {
		t.Errorf("short output = %+v, record %q", small, r.Message.Content)
	}
}

func TestExecToolScrubsSecrets(t *testing.T) {
	f := newToolFixture(t,
		[2]string{"bash", `{"command":"echo token=` + toolSecret + `"}`},
		[2]string{"write", `{"path":"leak.txt","content":"` + toolSecret + `\n"}`},
		[2]string{"read", `{"path":"leak.txt"}`},
	)
	env := newActivityEnv(f.a)
	for i := range 3 {
		mustRun[ExecToolResult](t, env, f.a.ExecTool, f.in(i))
	}
	for _, i := range []int{0, 2} {
		r, _ := f.record(t, i)
		if strings.Contains(r.Message.Content, toolSecret) || !strings.Contains(r.Message.Content, "[REDACTED]") {
			t.Errorf("call %d output = %q, want the key redacted", i, r.Message.Content)
		}
	}
	b, _ := json.Marshal(load(t, f.a.Transcripts, f.ref)[3:])
	if strings.Contains(string(b), toolSecret) {
		t.Errorf("a tool record carries the key: %s", b)
	}
	// Short values are not treated as secrets (they would redact common words).
	short := &Activities{Secrets: secret.New("abc")}
	if got := short.scrub("abc def"); got != "abc def" {
		t.Errorf("scrub of a short secret = %q", got)
	}
}

func TestExecToolRunsInWorktreeOnly(t *testing.T) {
	f := newToolFixture(t, [2]string{"write", `{"path":"sub/new.txt","content":"x"}`})
	mustRun[ExecToolResult](t, newActivityEnv(f.a), f.a.ExecTool, f.in(0))
	if _, err := os.Stat(f.repo.dir + "/sub/new.txt"); err != nil {
		t.Errorf("write did not land in the worktree: %v", err)
	}
	// The journal lives in the workspace state, not in the worktree.
	if status := f.repo.git("status", "--porcelain"); status != "?? sub/" {
		t.Errorf("worktree status = %q, want only the written file", status)
	}
}

// A refused repeat is not run; its result tells the model why. Results
// carry a hash that is the same for the same output.
func TestExecToolRefusedRepeatAndResultHash(t *testing.T) {
	edit := `{"path":"greet.txt","old_string":"hello","new_string":"bye"}`
	f := newToolFixture(t, [2]string{"read", `{"path":"greet.txt"}`}, [2]string{"read", `{"path":"greet.txt"}`}, [2]string{"edit", edit})
	env := newActivityEnv(f.a)

	first := mustRun[ExecToolResult](t, env, f.a.ExecTool, f.in(0))
	second := mustRun[ExecToolResult](t, env, f.a.ExecTool, f.in(1))
	if first.ResultHash == "" || first.ResultHash != second.ResultHash {
		t.Fatalf("hashes of identical reads = %q, %q", first.ResultHash, second.ResultHash)
	}
	in := f.in(2)
	in.Repeated = true
	refused := mustRun[ExecToolResult](t, env, f.a.ExecTool, in)
	if !refused.IsError || refused.Reused {
		t.Fatalf("refused = %+v", refused)
	}
	if got := f.repo.read("greet.txt"); got != "hello\n" {
		t.Fatalf("a refused edit ran: greet.txt = %q", got)
	}
	r, ok := f.record(t, 2)
	if !ok || !strings.Contains(r.Message.Content, "You are repeating yourself") || r.Message.ToolCallID != "call_0_2" {
		t.Fatalf("refusal record = %+v, %v", r, ok)
	}
	again := mustRun[ExecToolResult](t, env, f.a.ExecTool, f.in(0))
	if !again.Reused || again.ResultHash != first.ResultHash {
		t.Fatalf("reused result hash %q, want %q", again.ResultHash, first.ResultHash)
	}
}

// Read-only tools bypass the journal (their transcript record is enough):
// no journal file is written for them, the model gets the file's content,
// and a retry reuses the recorded result. An edit in the same turn is
// still journaled.
func TestExecToolReadOnlySkipsJournal(t *testing.T) {
	f := newToolFixture(t,
		[2]string{"read", `{"path":"greet.txt"}`},
		[2]string{"edit", `{"path":"greet.txt","old_string":"hello","new_string":"hello, world"}`})
	env := newActivityEnv(f.a)
	journalDir := f.a.stateDir(f.ref.RunID) + "/journal"

	res := mustRun[ExecToolResult](t, env, f.a.ExecTool, f.in(0))
	if res.Name != "read" || res.IsError || res.Reused {
		t.Fatalf("read = %+v", res)
	}
	if r, ok := f.record(t, 0); !ok || !strings.Contains(r.Message.Content, "hello") {
		t.Fatalf("read record = %+v, %v; want the file's content", r, ok)
	}
	if n := countFiles(t, journalDir); n != 0 {
		t.Errorf("%d journal files after a read, want none", n)
	}
	if again := mustRun[ExecToolResult](t, env, f.a.ExecTool, f.in(0)); !again.Reused {
		t.Errorf("retried read = %+v, want reused", again)
	}
	mustRun[ExecToolResult](t, env, f.a.ExecTool, f.in(1))
	if n := countFiles(t, journalDir); n == 0 {
		t.Error("no journal file after an edit")
	}
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestShareUpdateIDNamesTheSubAgentWorkflow: a retried publish keeps its
// update ID (Temporal deduplicates it), while the same turn of a sub-agent
// restarted by a move (a new workflow) gets a new one, so its publish is
// stored instead of answered with the old one's outcome.
func TestShareUpdateIDNamesTheSubAgentWorkflow(t *testing.T) {
	in := SwarmShareInput{Ref: ConvRef{RunID: "r", SubtaskID: "01-a", Attempt: 1}, Turn: 3, Index: 0}
	first := shareUpdateID("r.01-a", in)
	if again := shareUpdateID("r.01-a", in); again != first {
		t.Errorf("retry: %q, then %q; want the same ID", first, again)
	}
	if moved := shareUpdateID("r.01-a.m1", in); moved == first {
		t.Errorf("the moved sub-agent's publish reuses %q", first)
	}
}
