package activities

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	openai "github.com/sashabaranov/go-openai"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"codeswarm/internal/secret"
	"codeswarm/internal/transcript"
	"codeswarm/llm"
	"codeswarm/llm/scripted"
)

// TestMain keeps the tests independent of the machine's git configuration:
// no system or global config, so the code under test sees only what the
// tests set up.
func TestMain(m *testing.M) {
	os.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	os.Setenv("GIT_CONFIG_GLOBAL", os.DevNull)
	os.Exit(m.Run())
}

// testAPIKey is the key the scripted server requires and the activities
// must never leak.
const testAPIKey = "sk-test-key-0123456789"

// harness is an Activities wired to a scripted LLM server over real HTTP on
// 127.0.0.1, temp-dir stores, and a Temporal test activity environment.
type harness struct {
	t   *testing.T
	a   *Activities
	srv *scripted.Server
	env *testsuite.TestActivityEnvironment
}

func newHarness(t *testing.T, script scripted.Script) *harness {
	t.Helper()
	srv, err := scripted.Start(script, scripted.WithAPIKey(testAPIKey))
	if err != nil {
		t.Fatalf("start scripted server: %v", err)
	}
	t.Cleanup(srv.Close)
	a := &Activities{
		LLM:            llm.New(llm.Options{BaseURL: srv.URL(), APIKey: testAPIKey}),
		Transcripts:    transcript.New(t.TempDir()),
		WorkspaceRoot:  t.TempDir(),
		WorkspaceQueue: "codeswarm-ws-testhost",
		Secrets:        secret.New(testAPIKey),
	}
	return &harness{t: t, a: a, srv: srv, env: newActivityEnv(a)}
}

func newActivityEnv(a *Activities) *testsuite.TestActivityEnvironment {
	var ts testsuite.WorkflowTestSuite
	// Failing activities are expected here; the tests assert on the errors.
	ts.SetLogger(log.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := ts.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	return env
}

// run executes activity fn with in and decodes its result into out.
func run[T any](t *testing.T, env *testsuite.TestActivityEnvironment, fn any, in any) (T, error) {
	t.Helper()
	var out T
	val, err := env.ExecuteActivity(fn, in)
	if err != nil {
		return out, err
	}
	if err := val.Get(&out); err != nil {
		t.Fatalf("decode activity result: %v", err)
	}
	return out, nil
}

// mustRun is run that fails the test on an activity error.
func mustRun[T any](t *testing.T, env *testsuite.TestActivityEnvironment, fn any, in any) T {
	t.Helper()
	out, err := run[T](t, env, fn, in)
	if err != nil {
		t.Fatalf("activity failed: %v", err)
	}
	return out
}

// appErr extracts the ApplicationError an activity failed with.
func appErr(t *testing.T, err error) *temporal.ApplicationError {
	t.Helper()
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) is not an ApplicationError", err, err)
	}
	return ae
}

// load reads a conversation, failing the test on error.
func load(t *testing.T, s *transcript.Store, ref ConvRef) []transcript.Record {
	t.Helper()
	recs, err := s.Load(tref(ref))
	if err != nil {
		t.Fatalf("load transcript %+v: %v", ref, err)
	}
	return recs
}

// appendRecs writes records, failing the test on error.
func appendRecs(t *testing.T, s *transcript.Store, ref ConvRef, recs ...transcript.Record) {
	t.Helper()
	if err := s.Append(tref(ref), recs...); err != nil {
		t.Fatalf("append transcript %+v: %v", ref, err)
	}
}

func sysRec(content string) transcript.Record {
	return transcript.Record{Key: keySystem(), Message: openai.ChatCompletionMessage{Role: openai.ChatMessageRoleSystem, Content: content}}
}

func userRec(content string) transcript.Record {
	return transcript.Record{Key: keyUser(), Message: openai.ChatCompletionMessage{Role: openai.ChatMessageRoleUser, Content: content}}
}

// assistantRec is turn's assistant message calling tools given as
// name/arguments pairs; call IDs are "call_<turn>_<i>".
func assistantRec(turn int, calls ...[2]string) transcript.Record {
	msg := openai.ChatCompletionMessage{Role: openai.ChatMessageRoleAssistant}
	for i, c := range calls {
		msg.ToolCalls = append(msg.ToolCalls, openai.ToolCall{
			ID: callID(turn, i), Type: openai.ToolTypeFunction,
			Function: openai.FunctionCall{Name: c[0], Arguments: c[1]},
		})
	}
	return transcript.Record{Key: keyAssistant(turn), Message: msg}
}

func callID(turn, i int) string { return fmt.Sprintf("call_%d_%d", turn, i) }

// gitRepo is a scratch repository on branch main built with the git CLI.
type gitRepo struct {
	t   *testing.T
	dir string
}

// gitIdentity makes test commits independent of any user configuration.
var gitIdentity = []string{
	"GIT_AUTHOR_NAME=Test Author", "GIT_AUTHOR_EMAIL=author@example.com",
	"GIT_COMMITTER_NAME=Test Committer", "GIT_COMMITTER_EMAIL=committer@example.com",
}

// newGitRepo creates a repository with one commit holding files.
func newGitRepo(t *testing.T, files map[string]string) *gitRepo {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	r := &gitRepo{t: t, dir: dir}
	gitCmd(t, "", nil, "init", "--quiet", "--initial-branch=main", dir)
	for p, c := range files {
		r.write(p, c)
	}
	r.git("add", "-A")
	r.git("commit", "--quiet", "-m", "initial")
	return r
}

func (r *gitRepo) write(rel, content string) {
	r.t.Helper()
	writeFile(r.t, filepath.Join(r.dir, rel), content)
}

func (r *gitRepo) read(rel string) string {
	r.t.Helper()
	return readFile(r.t, filepath.Join(r.dir, rel))
}

func (r *gitRepo) git(args ...string) string {
	r.t.Helper()
	return gitCmd(r.t, r.dir, nil, args...)
}

// commitOn commits files on top of parent and points branch at the result,
// with a private index so no worktree (and no code under test) is involved.
func (r *gitRepo) commitOn(branch, parent string, files map[string]string) string {
	r.t.Helper()
	env := []string{"GIT_INDEX_FILE=" + filepath.Join(r.t.TempDir(), "index")}
	gitCmd(r.t, r.dir, env, "read-tree", parent)
	for p, c := range files {
		blob := gitCmdIn(r.t, r.dir, env, c, "hash-object", "-w", "--stdin")
		gitCmd(r.t, r.dir, env, "update-index", "--add", "--cacheinfo", "100644,"+blob+","+p)
	}
	tree := gitCmd(r.t, r.dir, env, "write-tree")
	commit := gitCmd(r.t, r.dir, env, "commit-tree", "-p", parent, "-m", "test commit on "+branch, tree)
	gitCmd(r.t, r.dir, nil, "update-ref", "refs/heads/"+branch, commit)
	return commit
}

func gitCmd(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	return gitCmdIn(t, dir, env, "", args...)
}

func gitCmdIn(t *testing.T, dir string, env []string, stdin string, args ...string) string {
	t.Helper()
	if dir != "" {
		args = append([]string{"-C", dir}, args...)
	}
	cmd := exec.Command("git", args...)
	cmd.Env = append(append(append(os.Environ(), "LC_ALL=C"), gitIdentity...), env...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// gitExit runs git and returns its exit code instead of failing.
func gitExit(dir string, args ...string) int {
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		return -1
	}
	return 0
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
