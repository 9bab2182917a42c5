//go:build record

// The recorder links the embedded Temporal server, so it lives behind the
// "record" build tag: go test -tags record -run TestRecordHistories ./workflows/

package workflows_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"
	"google.golang.org/protobuf/encoding/protojson"

	"codeswarm/config"
	"codeswarm/control"
	"codeswarm/devserver"
	"codeswarm/internal/cli"
	"codeswarm/internal/swarmworker"
	"codeswarm/llm/scripted"
	"codeswarm/workflows"
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

// TestRecordContinuedHistories records the demo run with the parent
// continuing as new after 30 events (while sub-agents run) and every
// sub-agent every 2 steps: the first run of each chain (it ends in a
// continue-as-new) and the last (it starts from the carried state):
// go test -tags record -run TestRecordContinuedHistories ./workflows/
func TestRecordContinuedHistories(t *testing.T) {
	c := recordRun(t, "--continue-as-new-every", "2", "--parent-continue-as-new-after", "30")
	defer c.close()
	for _, h := range []struct {
		id, file string
		first    bool
	}{
		{recordRunID, replayContinuedSwarmFirst, true},
		{recordRunID, replayContinuedSwarmLast, false},
		{recordChild, replayContinuedSubAgentFirst, true},
		{recordChild, replayContinuedSubAgentLast, false},
	} {
		run := ""
		if h.first {
			run = firstRun(t, c.client, h.id)
		}
		writeRunHistory(t, c.client, h.id, run, h.file, c.secret)
	}
}

// TestRecordSteeredHistories records the demo run steered through the CLI:
// its plan held for approval (approve), then paused by its token cap
// (swarm.max_tokens) with sub-agents asking for allowance, and resumed
// with more tokens (resume --add-tokens):
// go test -tags record -run TestRecordSteeredHistories ./workflows/
func TestRecordSteeredHistories(t *testing.T) {
	t.Setenv("CODESWARM_SWARM_MAX_TOKENS", "6000")
	c := recordRunWith(t, recording{steer: steerDemo}, "--approve-plan")
	defer c.close()
	writeHistory(t, c.client, recordRunID, replaySteeredSwarmHistory, c.secret)
	writeHistory(t, c.client, recordChild, replaySteeredSubAgentHistory, c.secret)
}

// steerDemo approves the demo run's plan and resumes it, with more tokens,
// once its cap has paused it; it fails the test if the run never paused.
func steerDemo(ctx context.Context, t *testing.T, c client.Client, cmd func(args ...string)) {
	approved, resumed := false, false
	for ctx.Err() == nil && !resumed {
		time.Sleep(100 * time.Millisecond)
		v, err := c.QueryWorkflow(ctx, recordRunID, "", control.ProgressQueryName, 0)
		if err != nil {
			continue // not started yet
		}
		var p control.Progress
		if err := v.Get(&p); err != nil {
			t.Errorf("progress: %v", err)
			return
		}
		switch {
		case p.State == control.RunStateAwaitingApproval && !approved:
			cmd("approve", recordRunID)
			approved = true
		case p.State == control.RunStateBudgetPaused:
			cmd("resume", recordRunID, "--add-tokens", "1000000")
			resumed = true
		case p.Phase == workflows.PhaseDone:
			t.Errorf("the run ended without a budget pause (state %s)", p.State)
			return
		}
	}
}

// TestRecordPausedHistories records the demo run paused by hand as its
// sub-agents start (pause), told something while paused (tell) and
// resumed (resume):
// go test -tags record -run TestRecordPausedHistories ./workflows/
func TestRecordPausedHistories(t *testing.T) {
	c := recordRunWith(t, recording{steer: pauseDemo}, "--approve-plan")
	defer c.close()
	writeHistory(t, c.client, recordRunID, replayPausedSwarmHistory, c.secret)
	writeHistory(t, c.client, recordChild, replayPausedSubAgentHistory, c.secret)
}

// pauseDemo approves the demo run's plan and pauses it at once, so its
// first sub-agents pause at their first step; once a sub-agent shows
// paused it tells every sub-agent a note and resumes the run. It fails
// the test if no sub-agent paused.
func pauseDemo(ctx context.Context, t *testing.T, c client.Client, cmd func(args ...string)) {
	paused := false
	for ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
		v, err := c.QueryWorkflow(ctx, recordRunID, "", control.ProgressQueryName, 0)
		if err != nil {
			continue // not started yet
		}
		var p control.Progress
		if err := v.Get(&p); err != nil {
			t.Errorf("progress: %v", err)
			return
		}
		switch {
		case p.State == control.RunStateAwaitingApproval && !paused:
			cmd("approve", recordRunID)
			cmd("pause", recordRunID, "--reason", "recording a pause")
			paused = true
		case p.Phase == workflows.PhaseDone:
			t.Errorf("the run ended before a sub-agent paused (state %s)", p.State)
			return
		case paused && slices.ContainsFunc(p.Rows, func(r control.SubtaskView) bool { return r.Status == "paused" }):
			cmd("tell", recordRunID, "keep the doc comments short")
			cmd("resume", recordRunID)
			return
		}
	}
}

// TestRecordMovedHistories records the demo run moved by hand (move --to)
// to a second worker host while its first sub-agents are paused mid-run:
// they restart there from their last committed state, and the run
// completes there.
// go test -tags record -run TestRecordMovedHistories ./workflows/
func TestRecordMovedHistories(t *testing.T) {
	c := recordRunWith(t, recording{steer: moveDemo}, "--approve-plan", "--serve-others")
	defer c.close()
	writeHistory(t, c.client, recordRunID, replayMovedSwarmHistory, c.secret)
	it := c.client.GetWorkflowHistory(context.Background(), recordRunID, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		a := ev.GetStartChildWorkflowExecutionInitiatedEventAttributes()
		if a != nil && strings.HasSuffix(a.GetTaskQueue().GetName(), "-ws-"+recordMoveHost) {
			writeHistory(t, c.client, a.GetWorkflowId(), replayMovedSubAgentHistory, c.secret)
			return
		}
	}
	t.Fatal("no sub-agent started on the host the run moved to")
}

// recordMoveHost is the second worker host of TestRecordMovedHistories.
const recordMoveHost = "recorder-b"

// startHost starts the workers of another host, with its own workspace
// root.
func startHost(t *testing.T, c client.Client, host string) (stop func(), err error) {
	cfg, err := config.Load(config.LoadOptions{})
	if err != nil {
		return nil, err
	}
	cfg.Workspace.Host, cfg.Workspace.Root = host, t.TempDir()
	w, err := swarmworker.New(cfg, c, nil, zap.NewNop())
	if err != nil {
		return nil, err
	}
	if err := w.Start(); err != nil {
		return nil, err
	}
	return w.Stop, nil
}

// moveDemo starts a second worker host, approves the demo run's plan and
// pauses it; once a sub-agent has paused mid-run, it moves the run there
// and resumes it.
func moveDemo(ctx context.Context, t *testing.T, c client.Client, cmd func(args ...string)) {
	approved, moved := false, false
	for ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
		v, err := c.QueryWorkflow(ctx, recordRunID, "", control.ProgressQueryName, 0)
		if err != nil {
			continue // not started yet
		}
		var p control.Progress
		if err := v.Get(&p); err != nil {
			t.Errorf("progress: %v", err)
			return
		}
		switch {
		case p.State == control.RunStateAwaitingApproval && !approved:
			// The run is homed on the first host by now; the second
			// starts, and the run is paused at once, so the move meets
			// sub-agents mid-run.
			stop, err := startHost(t, c, recordMoveHost)
			if err != nil {
				t.Errorf("second host: %v", err)
				return
			}
			defer stop()
			cmd("approve", recordRunID)
			cmd("pause", recordRunID, "--reason", "recording a move")
			approved = true
		case p.Phase == workflows.PhaseDone:
			if !moved {
				t.Errorf("the run ended before it was moved (state %s)", p.State)
			}
			return
		case !moved && slices.ContainsFunc(p.Rows, func(r control.SubtaskView) bool { return r.Status == "paused" }):
			cmd("move", recordRunID, "--to", recordMoveHost)
			cmd("resume", recordRunID)
			moved = true
		}
	}
}

// TestRecordConflictHistories records a run whose two subtasks change the
// same line: one merges, the other conflicts and is re-run from the new
// head with the conflict in its prompt, and merges:
// go test -tags record -run TestRecordConflictHistories ./workflows/
func TestRecordConflictHistories(t *testing.T) {
	script := conflictScript(t)
	c := recordRunWith(t, recording{script: &script, task: "change the greeting", writeRepo: func(dir string) error {
		for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "-A"}, {"-c", "user.name=r", "-c", "user.email=r@r", "commit", "-q", "-m", "initial"}} {
			if args[0] == "add" {
				if err := os.WriteFile(filepath.Join(dir, "shared.txt"), []byte("greeting = hello\n"), 0o644); err != nil {
					return err
				}
			}
			if out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput(); err != nil {
				return fmt.Errorf("git %v: %v: %s", args, err, out)
			}
		}
		return nil
	}}, "--max-concurrent", "2")
	defer c.close()
	writeHistory(t, c.client, recordRunID, replayConflictSwarmHistory, c.secret)
	// The re-run is attempt 2 of whichever subtask conflicted.
	for _, id := range []string{"01-left", "02-right"} {
		child := workflows.ChildWorkflowID(recordRunID, id, 2)
		if _, err := c.client.DescribeWorkflowExecution(context.Background(), child, ""); err == nil {
			writeHistory(t, c.client, child, replayConflictSubAgentHistory, c.secret)
			return
		}
	}
	t.Fatal("no subtask was re-run after a conflict")
}

// conflictScript: two independent subtasks change the same line of
// shared.txt; the re-run (its prompt carries the conflict note) keeps both
// intents (as e2e TestParallelConflict's).
func conflictScript(t *testing.T) scripted.Script {
	args := func(m map[string]any) string {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	edit := func(to string) []scripted.Reply {
		return []scripted.Reply{
			{ToolCalls: []scripted.ToolCall{{Name: "edit", Arguments: args(map[string]any{"path": "shared.txt", "old_string": "greeting = hello", "new_string": to})}}},
			{Content: "changed the greeting\nSTATUS: completed"},
		}
	}
	sub := func(name, instruction string) map[string]any {
		return map[string]any{"name": name, "instruction": instruction, "dependencies": []string{}, "specialty": "go"}
	}
	return scripted.Script{
		Planner: []scripted.Reply{{Content: args(map[string]any{"subtasks": []any{
			sub("left", "[conf:left] Set the greeting to left."), sub("right", "[conf:right] Set the greeting to right.")}})}},
		Agents: []scripted.Agent{
			{Match: "[conf:left]", Turns: edit("greeting = left")},
			{Match: "[conf:right]", Turns: edit("greeting = right")},
			{Match: "conflicted with changes merged meanwhile, in: shared.txt", Turns: []scripted.Reply{
				{ToolCalls: []scripted.ToolCall{{Name: "read", Arguments: args(map[string]any{"path": "shared.txt"})}}},
				{ToolCalls: []scripted.ToolCall{{Name: "write", Arguments: args(map[string]any{"path": "shared.txt", "content": "greeting = left and right\n"})}}},
				{Content: "kept both intents\nSTATUS: completed"},
			}},
		},
	}
}

// TestRecordCachedHistories records the demo run on a repository the same
// run has just finished on: the plan and every sub-agent come from the
// result cache, with no model call:
// go test -tags record -run TestRecordCachedHistories ./workflows/
func TestRecordCachedHistories(t *testing.T) {
	t.Setenv("CODESWARM_CACHE_ENABLED", "true")
	c := recordRunWith(t, recording{warm: true})
	defer c.close()
	writeHistory(t, c.client, recordRunID, replayCachedSwarmHistory, c.secret)
	writeHistory(t, c.client, recordChild, replayCachedSubAgentHistory, c.secret)
}

// recordHistories runs the scripted demo through the CLI on an in-memory
// Temporal server and writes the parent's and one child's history.
func recordHistories(t *testing.T, swarmFile, childFile string) {
	c := recordRun(t)
	defer c.close()
	writeHistory(t, c.client, recordRunID, swarmFile, c.secret)
	writeHistory(t, c.client, recordChild, childFile, c.secret)
}

// recorded is a finished demo run on a server that is still up.
type recorded struct {
	client client.Client
	secret string
	close  func()
}

// recordRun runs the scripted demo through the CLI (with extra run flags)
// on an in-memory Temporal server, and leaves the server up for reading
// the histories.
func recordRun(t *testing.T, extra ...string) recorded {
	return recordRunWith(t, recording{}, extra...)
}

// recording is what recordRunWith runs: a script, its repository and task
// (zero: the demo's), and steer, which runs beside the run with a client
// and runs CLI commands (cmd) on it.
type recording struct {
	script    *scripted.Script
	writeRepo func(dir string) error
	task      string
	steer     func(ctx context.Context, t *testing.T, c client.Client, cmd func(args ...string))
	// warm runs the same task on the same repository first (under another
	// ID), so the recorded run finds its work in the result cache.
	warm bool
}

// recordRunWith is recordRun for r.
func recordRunWith(t *testing.T, r recording, extra ...string) recorded {
	script, writeRepo, task := scripted.DemoScript(), scripted.WriteDemoRepo, scripted.DemoTask
	if r.script != nil {
		script, writeRepo, task = *r.script, r.writeRepo, r.task
	}
	steer := r.steer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv, err := devserver.Start(ctx, devserver.Options{UIPort: -1, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("start temporal: %v", err)
	}
	const key = "sk-record-histories-not-a-secret"
	model, err := scripted.Start(script, scripted.WithAPIKey(key))
	if err != nil {
		_ = srv.Stop()
		t.Fatalf("start scripted model: %v", err)
	}
	stop := func() {
		model.Close()
		_ = srv.Stop()
	}
	repo := t.TempDir()
	if err := writeRepo(repo); err != nil {
		stop()
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
	steered := make(chan struct{})
	if steer == nil {
		close(steered)
	} else {
		sc, err := client.Dial(client.Options{HostPort: srv.FrontendAddress()})
		if err != nil {
			stop()
			t.Fatal(err)
		}
		go func() {
			defer close(steered)
			defer sc.Close()
			steer(ctx, t, sc, func(args ...string) {
				var out, errb bytes.Buffer
				if code := cli.Execute(ctx, args, cli.IO{Out: &out, Err: &errb}); code != 0 {
					t.Errorf("%v: exit %d\n%s\n%s", args, code, out.String(), errb.String())
				}
			})
		}()
	}
	if r.warm {
		args := append([]string{"run", "--repo", repo, "--task", task, "--id", recordRunID + "-warm", "--json"}, extra...)
		if code := cli.Execute(ctx, args, cli.IO{Out: &out, Err: &errb}); code != 0 {
			stop()
			t.Fatalf("warm-up run: exit %d\n%s\n%s", code, out.String(), errb.String())
		}
		out.Reset()
		errb.Reset()
	}
	args := append([]string{"run", "--repo", repo, "--task", task, "--id", recordRunID, "--json"}, extra...)
	if code := cli.Execute(ctx, args, cli.IO{Out: &out, Err: &errb}); code != 0 {
		stop()
		t.Fatalf("demo run: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	<-steered
	c, err := client.Dial(client.Options{HostPort: srv.FrontendAddress()})
	if err != nil {
		stop()
		t.Fatal(err)
	}
	return recorded{client: c, secret: key, close: func() {
		c.Close()
		stop()
	}}
}

// firstRun is the run ID of the first run of id's continue-as-new chain.
func firstRun(t *testing.T, c client.Client, id string) string {
	t.Helper()
	run := ""
	for {
		it := c.GetWorkflowHistory(context.Background(), id, run, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		ev, err := it.Next()
		if err != nil {
			t.Fatalf("history of %s %s: %v", id, run, err)
		}
		prev := ev.GetWorkflowExecutionStartedEventAttributes().GetContinuedExecutionRunId()
		if prev == "" {
			if run == "" {
				t.Fatalf("%s did not continue as new", id)
			}
			return run
		}
		run = prev
	}
}

// writeHistory saves a closed workflow's history as protojson, the format
// ReplayWorkflowHistoryFromJSONFile reads.
func writeHistory(t *testing.T, c client.Client, id, file, secret string) {
	t.Helper()
	writeRunHistory(t, c, id, "", file, secret)
}

// writeRunHistory saves the history of run (the latest: "") of id.
func writeRunHistory(t *testing.T, c client.Client, id, run, file, secret string) {
	t.Helper()
	it := c.GetWorkflowHistory(context.Background(), id, run, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
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
