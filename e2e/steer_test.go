package e2e

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"codeswarm/activities"
	"codeswarm/control"
	"codeswarm/internal/cli"
	"codeswarm/llm/scripted"
	"codeswarm/workflows"
)

// steerCLI runs one CLI command in-process and returns its exit code, stdout
// and stderr.
func steerCLI(args ...string) (int, string, string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	code := cli.Execute(ctx, args, cli.IO{Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

// runState reads the run's state through the progress query.
func runState(c client.Client, id string) control.Progress {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var p control.Progress
	if v, err := c.QueryWorkflow(ctx, id, "", control.ProgressQueryName, 0); err == nil {
		_ = v.Get(&p)
	}
	return p
}

// updatesAccepted counts the updates the run's history holds: a refused
// update must leave none.
func updatesAccepted(t *testing.T, c client.Client, id string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	it := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	n := 0
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if e.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED {
			n++
		}
	}
	return n
}

// stableAgentCalls waits until no model request arrives for quiet and
// returns how many were made.
func stableAgentCalls(t *testing.T, m *scripted.Server, quiet time.Duration) int {
	t.Helper()
	last, since := m.Count("agent"), time.Now()
	waitFor(t, 60*time.Second, func() bool {
		if n := m.Count("agent"); n != last {
			last, since = n, time.Now()
		}
		return time.Since(since) >= quiet
	})
	return last
}

func expectRefused(t *testing.T, want string, args ...string) {
	t.Helper()
	code, out, errb := steerCLI(args...)
	if code != cli.ExitUsage || !strings.Contains(errb, want) {
		t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d and %q", args, code, out, errb, cli.ExitUsage, want)
	}
}

func expectOK(t *testing.T, want string, args ...string) {
	t.Helper()
	code, out, errb := steerCLI(args...)
	if code != 0 || !strings.Contains(out, want) {
		t.Fatalf("%v: exit %d, stdout %q, stderr %q; want %q", args, code, out, errb, want)
	}
}

// TestSteerCLI drives a run through every steering command of the CLI, as
// a user on another machine would (only the client API, a worker elsewhere):
// approve a plan, pause, tell, resume; and checks that bad requests are
// refused with a clear error and leave nothing in the run's history.
func TestSteerCLI(t *testing.T) {
	const id = "e2e-steer"
	h := newHarness(t, slowDemo(300*time.Millisecond))
	fastSwarmEnv(t)
	repo := faultRepo(t)
	startLongLivedWorker(t)

	expectRefused(t, "no run "+id, "pause", id)
	code, out, errb := steerCLI("run", "--repo", repo, "--task", scripted.DemoTask, "--id", id, "--approve-plan", "--no-worker", "--detach")
	if code != 0 {
		t.Fatalf("run: exit %d %s %s", code, out, errb)
	}
	waitFor(t, 60*time.Second, func() bool { return runState(h.client, id).State == control.RunStateAwaitingApproval })

	expectOK(t, "02-mathx-docs", "plan", id)
	expectRefused(t, "is not paused (state awaiting_approval)", "resume", id)
	expectRefused(t, "--add-tokens -5: must be 0 or more", "resume", id, "--add-tokens", "-5")
	expectRefused(t, `no subtask "99-nope" (known: 01-rename-greet, 02-mathx-docs, 03-update-main)`, "tell", id, "--subtask", "99-nope", "hello")
	expectRefused(t, "reject needs --reason", "reject", id)
	if n := h.model.Count("agent"); n != 0 {
		t.Fatalf("%d model calls before the plan was approved", n)
	}
	expectOK(t, "approved", "approve", id)
	expectRefused(t, "is not awaiting approval (state running)", "approve", id)

	waitFor(t, 60*time.Second, func() bool { return h.model.Count("agent") >= 2 })
	expectOK(t, "paused", "pause", id, "--reason", "checking the plan")
	atRest := stableAgentCalls(t, h.model, 2*time.Second)
	if p := runState(h.client, id); p.State != control.RunStatePaused || p.StateReason != "checking the plan" {
		t.Errorf("state while paused = %q (%q)", p.State, p.StateReason)
	}
	expectRefused(t, "already paused", "pause", id)
	const note = "prefer table-driven tests"
	expectOK(t, "note sent", "tell", id, note)
	time.Sleep(time.Second)
	if n := h.model.Count("agent"); n != atRest {
		t.Errorf("model calls went on while paused: %d, then %d", atRest, n)
	}
	expectOK(t, "resumed", "resume", id)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := activities.RunResult(ctx, h.client, id)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Success || len(res.SubtaskResults) != 3 {
		t.Fatalf("run did not succeed:\n%s", fmtResult(res))
	}
	seen := false
	for _, r := range h.model.Requests() {
		if r.Kind == scripted.KindAgent && bytes.Contains(r.Body, []byte(note)) {
			seen = true
		}
	}
	if !seen {
		t.Error("no model request after resume carried the note")
	}
	// approve, pause, tell, resume: the refused requests wrote nothing.
	if n := updatesAccepted(t, h.client, id); n != 4 {
		t.Errorf("%d updates in the run's history, want the 4 accepted ones", n)
	}
	expectRefused(t, "run "+id+" has ended: completed", "pause", id)
	expectRefused(t, "run "+id+" has ended: completed", "tell", id, "too late")
	replayRun(t, h.client, id, id+".01-rename-greet", id+".02-mathx-docs", id+".03-update-main")
}

// TestBudgetCLI: a run over its token cap pauses on its budget, says so in
// its state, and finishes after resume --add-tokens; its result prices
// every subtask. A cost cap on a model without a price is refused at start.
func TestBudgetCLI(t *testing.T) {
	const id = "e2e-budget"
	h := newHarness(t, slowDemo(50*time.Millisecond))
	fastSwarmEnv(t)
	repo := faultRepo(t)
	startLongLivedWorker(t)

	t.Setenv("CODESWARM_SWARM_MAX_COST_USD", "1")
	expectRefused(t, `model "scripted" has no price: add it to llm.prices as "scripted=PROMPT/COMPLETION"`,
		"run", "--repo", repo, "--task", scripted.DemoTask, "--id", id, "--no-worker", "--detach")
	t.Setenv("CODESWARM_LLM_PRICES", "scripted=1/2")
	t.Setenv("CODESWARM_SWARM_MAX_COST_USD", "0")
	t.Setenv("CODESWARM_SWARM_MAX_TOKENS", "10000") // the run needs about 15,000
	t.Setenv("CODESWARM_LLM_MAX_TOKENS", "1000")
	code, out, errb := steerCLI("run", "--repo", repo, "--task", scripted.DemoTask, "--id", id, "--no-worker", "--detach")
	if code != 0 {
		t.Fatalf("run: exit %d %s %s", code, out, errb)
	}
	var p control.Progress
	deadline := time.Now().Add(90 * time.Second)
	for p = runState(h.client, id); p.State != control.RunStateBudgetPaused; p = runState(h.client, id) {
		if time.Now().After(deadline) || p.Phase == "done" {
			t.Fatalf("the run did not pause on its budget: state %q (%q), budget %+v, phase %s", p.State, p.StateReason, p.Budget, p.Phase)
		}
		time.Sleep(100 * time.Millisecond)
	}
	mustContain(t, "state reason", p.StateReason, "token cap 10,000 reached")
	if p.Budget.Tokens > 10000 {
		t.Errorf("spent %d tokens with a cap of 10,000", p.Budget.Tokens)
	}
	expectRefused(t, "raise it with --add-tokens", "resume", id)
	expectOK(t, "resumed", "resume", id, "--add-tokens", "1000000")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := activities.RunResult(ctx, h.client, id)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Success {
		t.Fatalf("run did not succeed:\n%s", fmtResult(res))
	}
	total := 0.0
	for _, r := range res.SubtaskResults {
		if r.CostUSD <= 0 || r.PromptTokens == 0 {
			t.Errorf("%s: %d prompt tokens, $%g", r.ID, r.PromptTokens, r.CostUSD)
		}
		total += r.CostUSD
	}
	if res.Stats.CostUSD <= total || res.Stats.PromptTokens == 0 {
		t.Errorf("total $%g (subtasks $%g, plus the planner), %d prompt tokens", res.Stats.CostUSD, total, res.Stats.PromptTokens)
	}
	replayRun(t, h.client, id, id+".01-rename-greet", id+".02-mathx-docs", id+".03-update-main")
	t.Logf("paused at %d tokens; finished with %d+%d tokens, $%.4f", p.Budget.Tokens, res.Stats.PromptTokens, res.Stats.CompletionTokens, res.Stats.CostUSD)
}

// TestPausedWorkerCrash kills the only worker (SIGKILL) while a run is
// paused, starts a new one, and checks that the run is still paused (the
// pause lives in workflow state), resumes it, and that it completes with no
// model answer paid for twice.
func TestPausedWorkerCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("kills processes")
	}
	const id = "e2e-pause-crash"
	r := newCrashRig(t, slowDemo(300*time.Millisecond))
	r.startWorker()
	repo := faultRepo(t)
	r.startRun(repo, id)
	waitFor(t, 60*time.Second, func() bool { return r.model.Count("agent") >= 3 })

	expectOK(t, "paused", "pause", id)
	atRest := stableAgentCalls(t, r.model, 2*time.Second)
	r.workerLogs = append(r.workerLogs, tail(r.worker.kill(t), 2000))
	r.startWorker()
	// The new worker replays the run: it must stay paused.
	waitFor(t, 30*time.Second, func() bool { return runState(r.client, id).State == control.RunStatePaused })
	time.Sleep(2 * time.Second)
	if n := r.model.Count("agent"); n != atRest {
		t.Fatalf("model calls after the restart of a paused run: %d, then %d", atRest, n)
	}
	expectOK(t, "resumed", "resume", id)
	res := r.await(id)
	if !res.Success || len(res.SubtaskResults) != 3 {
		t.Fatalf("run did not succeed after the crash:\n%s", fmtResult(res))
	}
	// Nothing redone: every (agent, turn) was answered once.
	answered := map[string]int{}
	for _, q := range r.model.Requests() {
		if q.Kind == scripted.KindAgent && q.Status == 200 {
			answered[q.Agent+"#"+strconv.Itoa(q.Turn)]++
		}
	}
	for k, n := range answered {
		if n != 1 {
			t.Errorf("model answer %s paid for %d times", k, n)
		}
	}
	replayRun(t, r.client, id, id+".01-rename-greet", id+".02-mathx-docs", id+".03-update-main")
	t.Logf("paused at %d model calls; %d answered in all", atRest, len(answered))
}

// replayRun replays the histories of a finished run and its sub-agents
// against the current workflow code: a steered run (updates, signals,
// waits) must be as deterministic as any other, or a worker restart in the
// middle of one would fail it.
func replayRun(t *testing.T, c client.Client, ids ...string) {
	t.Helper()
	replayer := worker.NewWorkflowReplayer()
	replayer.RegisterWorkflowWithOptions(workflows.SwarmWorkflow, workflow.RegisterOptions{Name: workflows.SwarmWorkflowName})
	replayer.RegisterWorkflowWithOptions(workflows.SubAgentWorkflow, workflow.RegisterOptions{Name: workflows.SubAgentWorkflowName})
	for _, id := range ids {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		it := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		hist := &historypb.History{}
		for it.HasNext() {
			e, err := it.Next()
			if err != nil {
				t.Fatalf("history of %s: %v", id, err)
			}
			hist.Events = append(hist.Events, e)
		}
		cancel()
		opts := worker.ReplayWorkflowHistoryOptions{OriginalExecution: workflow.Execution{ID: id}}
		if err := replayer.ReplayWorkflowHistoryWithOptions(nopLogger{}, hist, opts); err != nil {
			t.Errorf("replay %s (%d events): %v", id, len(hist.Events), err)
		}
	}
}

// TestPausedServerRestart SIGKILLs both the Temporal server and the worker
// while a run is paused and starts them again on the same SQLite file: the
// run is still paused, accepts a note and a resume from the CLI, and
// completes with no model answer paid twice.
func TestPausedServerRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("kills the server process")
	}
	const id = "e2e-pause-server"
	model, repo, addr, srv, worker := startProcessStack(t, slowDemo(300*time.Millisecond))
	startDetached(t, repo, id)
	waitFor(t, 60*time.Second, func() bool { return model.Count(scripted.KindAgent) >= 3 })
	expectOK(t, "paused", "pause", id)
	atRest := stableAgentCalls(t, model, 2*time.Second)

	worker.kill(t)
	srv.kill()
	srv.start()
	worker = startWorkerProcess(t)
	c, err := client.Dial(client.Options{HostPort: addr, Logger: nopLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	waitFor(t, 60*time.Second, func() bool { return runState(c, id).State == control.RunStatePaused })
	time.Sleep(2 * time.Second)
	if n := model.Count(scripted.KindAgent); n != atRest {
		t.Fatalf("model calls after the restart of a paused run: %d, then %d", atRest, n)
	}
	const note = "mind the deprecated wrapper"
	expectOK(t, "note sent", "tell", id, note)
	expectOK(t, "resumed", "resume", id)
	res := awaitResult(t, c, id, func() string { return tail(worker.logs.String(), 3000) })
	if !res.Success || len(res.SubtaskResults) != 3 {
		t.Fatalf("run did not succeed after the restarts:\n%s", fmtResult(res))
	}
	answered, noted := map[string]int{}, false
	for _, q := range model.Requests() {
		if q.Kind == scripted.KindAgent && q.Status == 200 {
			answered[q.Agent+"#"+strconv.Itoa(q.Turn)]++
			noted = noted || bytes.Contains(q.Body, []byte(note))
		}
	}
	for k, n := range answered {
		if n != 1 {
			t.Errorf("model answer %s paid for %d times", k, n)
		}
	}
	if !noted {
		t.Error("the note sent after the restart reached no model call")
	}
}
