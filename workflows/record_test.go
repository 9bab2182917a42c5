//go:build record

// The recorder links the embedded Temporal server, so it lives behind the
// "record" build tag: go test -tags record -run TestRecordHistories ./workflows/

package workflows_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"
	"google.golang.org/protobuf/encoding/protojson"

	"codeswarm/devserver"
	"codeswarm/internal/cli"
	"codeswarm/llm/scripted"
)

// TestRecordHistories re-records testdata/ from a demo run.
func TestRecordHistories(t *testing.T) {
	recordHistories(t, replaySwarmHistory, replaySubAgentHistory)
}

// TestRecordObservedHistories records a demo run whose parent keeps search
// attributes (the CLI registers them on the server), so replay covers the
// upserts: go test -tags record -run TestRecordObservedHistories ./workflows/
func TestRecordObservedHistories(t *testing.T) {
	recordHistories(t, replayObservedSwarmHistory, replayObservedSubAgentHistory)
}

// recordHistories runs the scripted demo through the CLI on an in-memory
// Temporal server and writes the parent's and one child's history.
func recordHistories(t *testing.T, swarmFile, childFile string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv, err := devserver.Start(ctx, devserver.Options{UIPort: -1, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("start temporal: %v", err)
	}
	defer func() { _ = srv.Stop() }()
	const key = "sk-record-histories-not-a-secret"
	model, err := scripted.Start(scripted.DemoScript(), scripted.WithAPIKey(key))
	if err != nil {
		t.Fatalf("start scripted model: %v", err)
	}
	defer model.Close()
	repo := t.TempDir()
	if err := scripted.WriteDemoRepo(repo); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"CODESWARM_TEMPORAL_ADDRESS": srv.FrontendAddress(), "CODESWARM_TEMPORAL_TASK_QUEUE": "replay-record",
		"CODESWARM_LLM_BASE_URL": model.URL(), "CODESWARM_LLM_API_KEY": key, "CODESWARM_LLM_MODEL": "scripted",
		"CODESWARM_WORKSPACE_ROOT": t.TempDir(), "CODESWARM_LOG_LEVEL": "error", "OPENAI_API_KEY": "",
	} {
		t.Setenv(k, v)
	}
	var out, errb bytes.Buffer
	if code := cli.Execute(ctx, []string{"run", "--repo", repo, "--task", scripted.DemoTask, "--id", recordRunID, "--json"}, cli.IO{Out: &out, Err: &errb}); code != 0 {
		t.Fatalf("demo run: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	c, err := client.Dial(client.Options{HostPort: srv.FrontendAddress()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	writeHistory(t, c, recordRunID, swarmFile, key)
	writeHistory(t, c, recordChild, childFile, key)
}

// writeHistory saves a closed workflow's history as protojson, the format
// ReplayWorkflowHistoryFromJSONFile reads.
func writeHistory(t *testing.T, c client.Client, id, file, secret string) {
	t.Helper()
	it := c.GetWorkflowHistory(context.Background(), id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatalf("history of %s: %v", id, err)
		}
		h.Events = append(h.Events, ev)
	}
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), secret) {
		t.Fatalf("history of %s contains the API key", id)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %s: %d events, %d bytes", file, len(h.Events), len(b))
}
