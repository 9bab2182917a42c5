package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.uber.org/zap"

	"codeswarm/activities"
	"codeswarm/config"
	"codeswarm/control"
	"codeswarm/internal/cli"
	"codeswarm/internal/swarmworker"
	"codeswarm/llm/scripted"
)

// cancelScript: "quick" finishes at once; "long" writes a file, then runs a
// bash that records its pid and sleeps for a minute; "after-long" depends on
// "long" and so never gets to run.
// cancelSleep is the long bash's sleep argument, unique on the host.
const cancelSleep = "60.7319"

func cancelScript() scripted.Script {
	plan := `{"subtasks":[
	 {"name":"quick","instruction":"[cancel:quick] create quick.txt","dependencies":[],"needs_worktree":true},
	 {"name":"long","instruction":"[cancel:long] create partial.txt, then run the long job","dependencies":[],"needs_worktree":true},
	 {"name":"after-long","instruction":"[cancel:after-long] use the long job's output","dependencies":["long"],"needs_worktree":true}]}`
	return scripted.Script{
		Planner: []scripted.Reply{{Content: plan}},
		Agents: []scripted.Agent{
			{Match: "[cancel:quick]", Turns: writeTurns("quick")},
			{Match: "[cancel:long]", Turns: []scripted.Reply{
				{ToolCalls: []scripted.ToolCall{{Name: "write", Arguments: `{"path": "partial.txt", "content": "half done\n"}`}}},
				{ToolCalls: []scripted.ToolCall{{Name: "bash", Arguments: `{"command": "echo started > pid.txt; sleep ` + cancelSleep + `"}`}}},
				{Content: "Done.\nSTATUS: completed"},
			}},
			{Match: "[cancel:after-long]", Turns: writeTurns("after-long")},
		},
	}
}

// TestCancelRun cancels a run while a sub-agent's bash sleeps: the run ends
// promptly, the bash process group is killed, merged work stays merged, the
// unfinished subtask's work is committed and its worktree kept, and the
// result says what was done and what was not.
func TestCancelRun(t *testing.T) {
	const id = "e2e-cancel"
	h := newHarness(t, cancelScript())
	fastSwarmEnv(t)
	repo := faultRepo(t)
	// A worker that outlives the run, as `codeswarm dev` or a worker
	// process does: the CLI's own worker stops when the run ends and would
	// kill the bash on its way out, hiding whether the cancel did.
	startLongLivedWorker(t)

	type runOutcome struct {
		code int
		out  string
	}
	done := make(chan runOutcome, 1)
	returned := make(chan struct{}) // closed when the run's CLI returns, for the cleanup
	runLogs := &bytes.Buffer{}      // the run's own stderr: h.logs is not safe for two CLIs at once
	ctx, stop := context.WithTimeout(context.Background(), 3*time.Minute)
	defer stop()
	go func() {
		var out bytes.Buffer
		code := cli.Execute(ctx, []string{"run", "--repo", repo, "--task", "cancel scenario", "--id", id, "--json", "--no-worker"}, cli.IO{Out: &out, Err: runLogs})
		done <- runOutcome{code, out.String()}
		close(returned)
	}()
	t.Cleanup(func() {
		stop()
		select {
		case <-returned:
		case <-time.After(time.Minute):
			t.Error("the run's CLI did not return after its context was cancelled")
		}
	})

	waitForFile(t, h.root, "pid.txt", 60*time.Second)
	// The sandbox's PID namespace hides host pids from the command: find its
	// sleep on the host by its unique argument.
	if pids := hostProcesses(cancelSleep); len(pids) == 0 {
		t.Fatal("the long bash's sleep is not running before cancel")
	}
	waitFor(t, 30*time.Second, func() bool { return quickMerged(h, id) })
	// Cancel once the server has recorded a heartbeat of the bash's
	// activity (the tools beat every 5 s): the SDK sends a first heartbeat
	// at once and throttles the later ones, and only a heartbeat's response
	// carries the cancellation.
	waitFor(t, 30*time.Second, func() bool {
		return slices.ContainsFunc(runPendingActivities(t, h.client, id), func(p pendingActivity) bool {
			return p.activity == "ExecTool" && !p.heartbeat.IsZero()
		})
	})

	cancelledAt := time.Now()
	var cancelOut, cancelErr bytes.Buffer
	if code := cli.Execute(ctx, []string{"cancel", id}, cli.IO{Out: &cancelOut, Err: &cancelErr}); code != 0 {
		t.Fatalf("cancel: exit %d: %s", code, cancelErr.String())
	}
	mustContain(t, "cancel output", cancelOut.String(), "cancellation requested")

	var ran runOutcome
	select {
	case ran = <-done:
	case <-time.After(90 * time.Second):
		t.Fatalf("the run did not end within 90 s of the cancel; logs:\n%s", tail(runLogs.String(), 4000))
	}
	took := time.Since(cancelledAt)
	t.Logf("run ended %s after the cancel request (bash was sleeping 60 s)", took.Round(time.Millisecond))
	if took > 45*time.Second {
		t.Errorf("the run took %s to end after the cancel: the sleeping bash was not interrupted", took)
	}

	t.Run("bash and its children killed", func(t *testing.T) {
		waitFor(t, 30*time.Second, func() bool { return len(hostProcesses(cancelSleep)) == 0 })
		t.Logf("bash process group gone %s after the cancel request", time.Since(cancelledAt).Round(time.Millisecond))
	})

	var res activities.SwarmResult
	t.Run("CLI reports the cancelled run", func(t *testing.T) {
		if ran.code != cli.ExitCancelled {
			t.Errorf("exit %d, want %d (cancelled)", ran.code, cli.ExitCancelled)
		}
		if err := json.Unmarshal([]byte(ran.out), &res); err != nil {
			t.Fatalf("run output is not a result: %v\n%s\nlogs:\n%s", err, ran.out, tail(runLogs.String(), 4000))
		}
	})

	t.Run("workflow result says what was done and what was not", func(t *testing.T) {
		wf, err := activities.RunResult(context.Background(), h.client, id)
		if err != nil {
			t.Fatalf("workflow result: %v", err)
		}
		t.Logf("result:\n%s", fmtResult(wf))
		if wf.Success || wf.Error == "" || wf.State != control.RunStateCancelled {
			t.Errorf("success %v, state %q, error %q: a cancelled run must not succeed, must say cancelled and why", wf.Success, wf.State, wf.Error)
		}
		d, err := h.client.DescribeWorkflowExecution(context.Background(), id, "")
		if err != nil {
			t.Fatal(err)
		}
		if st := d.GetWorkflowExecutionInfo().GetStatus(); st != enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED {
			t.Errorf("workflow status %s, want CANCELED", st)
		}
		subs := byID(wf)
		if q := subs["01-quick"]; !q.Success || q.Merge != activities.MergeMerged {
			t.Errorf("quick: success %v, merge %q; finished work must stay merged", q.Success, q.Merge)
		}
		long := subs["02-long"]
		if long.Success || long.Status != activities.StatusCancelled {
			t.Errorf("long: success %v, status %q, want cancelled", long.Success, long.Status)
		}
		if long.Commit == "" || !slices.Contains(long.FilesChanged, "partial.txt") {
			t.Errorf("long: commit %q, files %v; its partial work must be committed", long.Commit, long.FilesChanged)
		} else {
			mustContain(t, "partial.txt on the long branch", git(t, repo, "show", long.Commit+":partial.txt"), "half done")
		}
		if after := subs["03-after-long"]; after.Success || after.Steps != 0 || after.Status == activities.StatusCompleted {
			t.Errorf("after-long: %+v; it must not have run", after)
		} else {
			t.Logf("after-long: status %q, error %q", after.Status, after.Error)
		}
		if h.model.Count(scripted.KindAgent) == 0 || len(turnRequests(h.model, scripted.KindAgent, "[cancel:after-long]", 0)) != 0 {
			t.Error("after-long's agent was asked for a turn")
		}
		if !slices.Contains(wf.KeptWorktrees, long.Worktree) {
			t.Errorf("kept worktrees %v do not include long's %s", wf.KeptWorktrees, long.Worktree)
		}
		if _, err := os.Stat(filepath.Join(long.Worktree, "partial.txt")); err != nil {
			t.Errorf("long's worktree was not kept: %v", err)
		}
		if q := subs["01-quick"]; q.Worktree != "" {
			if _, err := os.Stat(q.Worktree); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("quick's merged worktree still exists: %v", err)
			}
		}
		if res.RunID != "" && res.RunID != wf.RunID {
			t.Errorf("CLI result is for %q, workflow for %q", res.RunID, wf.RunID)
		}
	})
}

// startLongLivedWorker runs a standalone worker (config from the harness's env)
// until the test ends.
func startLongLivedWorker(t *testing.T) {
	t.Helper()
	cfg, err := config.Load(config.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- swarmworker.Run(ctx, cfg, zap.NewNop()) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-stopped:
			if err != nil {
				t.Errorf("worker: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("worker did not stop")
		}
	})
}

// quickMerged reports whether the run's progress shows quick merged, so the
// cancel lands while long is the only thing running.
func quickMerged(h *harness, id string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, err := h.client.QueryWorkflow(ctx, id, "", control.ProgressQueryName, 0)
	if err != nil {
		return false
	}
	var p control.Progress
	if err := v.Get(&p); err != nil {
		return false
	}
	for _, e := range p.Events {
		if e.Kind == "merged" && e.Subtask == "01-quick" {
			return true
		}
	}
	return false
}

// waitForFile finds a file named name anywhere under root.
func waitForFile(t *testing.T, root, name string, d time.Duration) string {
	t.Helper()
	var found string
	waitFor(t, d, func() bool {
		_ = filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err == nil && !e.IsDir() && e.Name() == name {
				found = p
				return filepath.SkipAll
			}
			return nil
		})
		return found != ""
	})
	return found
}
