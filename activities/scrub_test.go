package activities

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"codeswarm/control"
	"codeswarm/internal/secret"
	"codeswarm/internal/transcript"
	"codeswarm/llm/scripted"
)

// TestExecToolScrubsEncodedSecrets: a command that prints the key base64- or
// hex-encoded (mid-stream, so at another base64 alignment) leaves neither in
// the transcript, nor the key itself in the tool journal on disk.
func TestExecToolScrubsEncodedSecrets(t *testing.T) {
	f := newToolFixture(t,
		[2]string{"bash", `{"command":"printf 'KEY=%s' ` + toolSecret + ` | base64 -w0"}`},
		[2]string{"bash", `{"command":"printf 'x%s' ` + toolSecret + ` | od -An -v -tx1 | tr -d ' \\n'"}`},
		[2]string{"bash", `{"command":"echo ` + toolSecret + `"}`},
	)
	env := newActivityEnv(f.a)
	leaks := []string{
		base64.StdEncoding.EncodeToString([]byte("KEY=" + toolSecret))[8:36],
		hex.EncodeToString([]byte(toolSecret)),
		toolSecret,
	}
	for i := range leaks {
		mustRun[ExecToolResult](t, env, f.a.ExecTool, f.in(i))
		r, _ := f.record(t, i)
		if strings.Contains(r.Message.Content, leaks[i]) || !strings.Contains(r.Message.Content, secret.Redacted) {
			t.Errorf("call %d output = %q, want the encoded key redacted", i, r.Message.Content)
		}
	}
	err := filepath.WalkDir(f.a.WorkspaceRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		for _, leak := range leaks {
			if strings.Contains(string(b), leak) {
				t.Errorf("%s holds %q", path, leak)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// shareClient is a Temporal client that records the swarm_share update the
// activity sends instead of sending it.
type shareClient struct {
	client.Client
	sent []control.ShareRequest
}

func (c *shareClient) UpdateWorkflow(_ context.Context, o client.UpdateWorkflowOptions) (client.WorkflowUpdateHandle, error) {
	c.sent = append(c.sent, o.Args[0].(control.ShareRequest))
	return doneUpdate{}, nil
}

type doneUpdate struct{ client.WorkflowUpdateHandle }

func (doneUpdate) Get(_ context.Context, v any) error {
	*(v.(*int)) = 1
	return nil
}

// TestSwarmShareScrubsBeforeUpdate: what a sub-agent publishes reaches the
// parent (and so its history) without the key, in the value, the key name
// and the tags, and the value is still JSON.
func TestSwarmShareScrubsBeforeUpdate(t *testing.T) {
	b64 := base64.RawURLEncoding.EncodeToString([]byte(toolSecret))
	args := fmt.Sprintf(`{"action":"publish","key":"k-%s","value":{"env":"OPENAI_API_KEY=%s","b64":"%s"},"tags":["%s"]}`, toolSecret, toolSecret, b64, toolSecret)
	f := newToolFixture(t, [2]string{"swarm_share", args})
	fake := &shareClient{}
	f.a.Temporal = fake
	res := mustRun[SwarmShareResult](t, newActivityEnv(f.a), f.a.SwarmShare, SwarmShareInput{Ref: f.ref, ParentWorkflowID: "parent"})
	if res.IsError || len(fake.sent) != 1 {
		t.Fatalf("SwarmShare = %+v, %d updates sent", res, len(fake.sent))
	}
	sent, _ := json.Marshal(fake.sent[0])
	if strings.Contains(string(sent), toolSecret) || strings.Contains(string(sent), b64[2:len(b64)-2]) {
		t.Errorf("update carries the key: %s", sent)
	}
	if !json.Valid([]byte(fake.sent[0].Value)) || !strings.Contains(fake.sent[0].Value, secret.Redacted) {
		t.Errorf("shared value = %q, want valid JSON with the key redacted", fake.sent[0].Value)
	}
}

// TestActivityErrorsAreScrubbed runs a failing activity behind the worker
// interceptor: the error that would enter the history has no key, and keeps
// its type and retry decision.
func TestActivityErrorsAreScrubbed(t *testing.T) {
	a := &Activities{Secrets: secret.New(toolSecret)}
	hexKey := hex.EncodeToString([]byte(toolSecret))
	env := newActivityEnv(a)
	env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{ScrubErrors(a.Secrets)}})
	env.RegisterActivityWithOptions(func(context.Context) error {
		cause := fmt.Errorf("git push: remote said %s", hexKey)
		return temporal.NewNonRetryableApplicationError("merge failed with key "+toolSecret, "git.conflict", cause)
	}, activity.RegisterOptions{Name: "leaky"})
	env.RegisterActivityWithOptions(func(context.Context) error {
		return fmt.Errorf("open %s: %w", toolSecret, errors.ErrUnsupported)
	}, activity.RegisterOptions{Name: "leakyPlain"})

	_, err := env.ExecuteActivity("leaky")
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != "git.conflict" || !app.NonRetryable() {
		t.Fatalf("error = %v, want non-retryable git.conflict", err)
	}
	if strings.Contains(err.Error(), toolSecret) || strings.Contains(err.Error(), hexKey) || !strings.Contains(err.Error(), "merge failed with key "+secret.Redacted) {
		t.Errorf("error = %q, want the key and its hex redacted", err)
	}
	_, err = env.ExecuteActivity("leakyPlain")
	if err == nil || strings.Contains(err.Error(), toolSecret) || !strings.Contains(err.Error(), "open "+secret.Redacted) {
		t.Errorf("plain error = %v, want the key redacted", err)
	}
}

func TestScrubErrorKeepsCleanErrors(t *testing.T) {
	a := &Activities{Secrets: secret.New(toolSecret)}
	in := temporal.NewApplicationErrorWithOptions("rate limited", "llm.rate_limit", temporal.ApplicationErrorOptions{NextRetryDelay: 7 * time.Second})
	if got := scrubError(a.Secrets, in); got != in {
		t.Errorf("scrubError replaced an error without secrets: %v", got)
	}
	leaky := temporal.NewApplicationErrorWithOptions("rate limited for "+toolSecret, "llm.rate_limit", temporal.ApplicationErrorOptions{NextRetryDelay: 7 * time.Second})
	var app *temporal.ApplicationError
	if !errors.As(scrubError(a.Secrets, leaky), &app) || app.NextRetryDelay() != 7*time.Second || app.Message() != "rate limited for "+secret.Redacted {
		t.Errorf("scrubError lost the retry delay or kept the key: %v", app)
	}
}

// TestAgentStepScrubsModelOutput: a model that learnt the key (in a disguise
// the scrubber does not know, and decoded it) cannot carry it into the
// transcript, its final text or a tool call's arguments.
func TestAgentStepScrubsModelOutput(t *testing.T) {
	writeArgs := fmt.Sprintf(`{"path":"leak.txt","content":"%s"}`, testAPIKey)
	h := newHarness(t, scripted.Script{Agents: []scripted.Agent{{Match: agentMarker, Turns: []scripted.Reply{
		{Content: "Found it: " + testAPIKey, ToolCalls: []scripted.ToolCall{{Name: "write", Arguments: writeArgs}}},
		{Content: "The key is " + testAPIKey + "\nSTATUS: completed"},
	}}}})
	ref := ConvRef{RunID: "run-leak", SubtaskID: "01-alpha", Attempt: 1}
	agentHead(t, h, ref, agentMarker)
	mustRun[AgentStepResult](t, h.env, h.a.AgentStep, AgentStepInput{Ref: ref, Turn: 0, Model: "m", ContextLimit: 128000})
	appendRecs(t, h.a.Transcripts, ref, toolRecord(keyTool(0, 0), openai.ToolCall{ID: "call_0_0", Function: openai.FunctionCall{Name: "write"}}, "ok"))
	last := mustRun[AgentStepResult](t, h.env, h.a.AgentStep, AgentStepInput{Ref: ref, Turn: 1, Model: "m", ContextLimit: 128000})
	if strings.Contains(last.Final, testAPIKey) || !strings.Contains(last.Final, "The key is "+secret.Redacted) {
		t.Errorf("final text = %q, want the key redacted", last.Final)
	}
	stored, _ := json.Marshal(load(t, h.a.Transcripts, ref))
	if strings.Contains(string(stored), testAPIKey) {
		t.Errorf("transcript holds the key: %s", stored)
	}
	rec, _ := transcript.Find(load(t, h.a.Transcripts, ref), keyAssistant(0))
	if args := rec.Message.ToolCalls[0].Function.Arguments; !json.Valid([]byte(args)) || !strings.Contains(args, secret.Redacted) {
		t.Errorf("stored arguments = %q, want valid JSON with the key redacted", args)
	}
}

// readClient answers a share query with ans and keeps the request.
type readClient struct {
	client.Client
	asked []control.ShareRequest
	ans   control.ShareAnswer
}

func (c *readClient) QueryWorkflow(_ context.Context, _, _, _ string, args ...any) (converter.EncodedValue, error) {
	c.asked = append(c.asked, args[0].(control.ShareRequest))
	b, err := json.Marshal(c.ans)
	return jsonValue(b), err
}

// jsonValue is a query answer as its JSON.
type jsonValue []byte

func (v jsonValue) HasValue() bool    { return len(v) > 0 }
func (v jsonValue) Get(ptr any) error { return json.Unmarshal(v, ptr) }

// TestSwarmShareReadSaysWhatItLeftOut: a read asks the parent for at most
// ShareReadBytes (more when a value may be larger), and when the parent
// left entries out the model is told how many and how to narrow the read.
func TestSwarmShareReadSaysWhatItLeftOut(t *testing.T) {
	f := newToolFixture(t, [2]string{"swarm_share", `{"action":"list"}`})
	fake := &readClient{ans: control.ShareAnswer{
		Results: []control.SharedResult{{Key: "k1", Value: `"v1"`, Tags: []string{}, Publisher: "01-a"}},
		More:    41,
	}}
	f.a.Temporal = fake
	res := mustRun[SwarmShareResult](t, newActivityEnv(f.a), f.a.SwarmShare, SwarmShareInput{Ref: f.ref, ParentWorkflowID: "parent"})
	if res.IsError || len(fake.asked) != 1 || fake.asked[0].MaxBytes != ShareReadBytes {
		t.Fatalf("SwarmShare = %+v, asked %+v; want one read capped at %d bytes", res, fake.asked, ShareReadBytes)
	}
	rec, ok := f.record(t, 0)
	if !ok || !strings.Contains(rec.Message.Content, `"key": "k1"`) ||
		!strings.Contains(rec.Message.Content, "[41 more shared results match, not shown: the answer is capped at 32768 bytes; narrow the read with get, query_prefix or query_tags]") {
		t.Errorf("tool result = %q, want k1 and the note of 41 more", rec.Message.Content)
	}
	if got := shareReadBytes(100 << 10); got != 101<<10 {
		t.Errorf("read cap with 100 KiB values = %d, want %d", got, 101<<10)
	}
}
