package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"codeswarm/activities"
	"codeswarm/devserver"
	"codeswarm/internal/cli"
	"codeswarm/llm/scripted"
)

// testAPIKey is what the scripted server demands; it must never show up in
// any workflow history, result or log.
const testAPIKey = "sk-test-e2e-0123456789abcdef-SECRET"

type harness struct {
	t      *testing.T
	server *devserver.Server
	model  *scripted.Server
	client client.Client
	queue  string
	root   string
	logs   *bytes.Buffer
}

// newHarness starts an in-memory Temporal server and a scripted model, and
// points the CLI at them through the environment.
func newHarness(t *testing.T, script scripted.Script) *harness {
	t.Helper()
	srv, model, c := startStack(t, "", script)
	h := &harness{t: t, server: srv, model: model, client: c, queue: testQueue(t), root: t.TempDir(), logs: &bytes.Buffer{}}
	setCLIEnv(t, srv.FrontendAddress(), h.queue, model.URL(), h.root)
	t.Setenv("CODESWARM_LOG_LEVEL", "debug")
	return h
}

// startStack starts the Temporal server (SQLite file at dbPath, "" in
// memory), the scripted model that demands testAPIKey, and a client; all are
// stopped when the test ends.
func startStack(t *testing.T, dbPath string, script scripted.Script, opts ...scripted.Option) (*devserver.Server, *scripted.Server, client.Client) {
	t.Helper()
	return startStackWith(t, devserver.Options{DBPath: dbPath}, script, opts...)
}

// startStackWith is startStack with the server's options (no Web UI, no log).
func startStackWith(t *testing.T, sopts devserver.Options, script scripted.Script, opts ...scripted.Option) (*devserver.Server, *scripted.Server, client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sopts.UIPort, sopts.Logger = -1, zap.NewNop()
	srv, err := devserver.Start(ctx, sopts)
	if err != nil {
		t.Fatalf("start temporal: %v", err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	model, err := scripted.Start(script, append([]scripted.Option{scripted.WithAPIKey(testAPIKey)}, opts...)...)
	if err != nil {
		t.Fatalf("start scripted model: %v", err)
	}
	t.Cleanup(model.Close)
	c, err := client.Dial(client.Options{HostPort: srv.FrontendAddress(), Logger: nopLogger{}})
	if err != nil {
		t.Fatalf("dial %s: %v", srv.FrontendAddress(), err)
	}
	t.Cleanup(c.Close)
	return srv, model, c
}

// run executes the CLI in-process and returns its exit code and stdout.
func (h *harness) run(args ...string) (int, string) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	code := cli.Execute(ctx, args, cli.IO{Out: &out, Err: h.logs})
	return code, out.String()
}

func (h *harness) runJSON(args ...string) (int, activities.SwarmResult) {
	h.t.Helper()
	code, out := h.run(append(args, "--json")...)
	var res activities.SwarmResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		h.t.Fatalf("result is not JSON (exit %d): %v\n%s\nlogs:\n%s", code, err, out, tail(h.logs.String(), 4000))
	}
	return code, res
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(cmd.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// nopLogger silences the SDK client of the test itself.
type nopLogger struct{}

func (nopLogger) Debug(string, ...any) {}
func (nopLogger) Info(string, ...any)  {}
func (nopLogger) Warn(string, ...any)  {}
func (nopLogger) Error(string, ...any) {}

func mustContain(t *testing.T, what, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Errorf("%s does not contain %q:\n%s", what, sub, tail(s, 2000))
	}
}

func byID(res activities.SwarmResult) map[string]activities.SubtaskResult {
	m := map[string]activities.SubtaskResult{}
	for _, s := range res.SubtaskResults {
		m[s.ID] = s
	}
	return m
}

func fmtResult(res activities.SwarmResult) string {
	b, _ := json.MarshalIndent(res, "", "  ")
	return fmt.Sprint(string(b))
}
