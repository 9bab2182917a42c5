package workflows_test

import (
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"codeswarm/activities"
	"codeswarm/control"
	"codeswarm/workflows"
)

// updateOutcome is how a steering update ended.
type updateOutcome struct {
	rejected error
	reply    control.ControlReply
	err      error
	done     bool
}

func sendUpdate(env *testsuite.TestWorkflowEnvironment, name, id string, arg any) *updateOutcome {
	out := &updateOutcome{}
	env.UpdateWorkflow(name, id, &testsuite.TestUpdateCallback{
		OnAccept: func() {},
		OnReject: func(err error) { out.rejected, out.done = err, true },
		OnComplete: func(v any, err error) {
			out.err, out.done = err, true
			if r, ok := v.(control.ControlReply); ok {
				out.reply = r
			}
		},
	}, arg)
	return out
}

// mustAccept fails the test unless the update was accepted and completed.
func (o *updateOutcome) mustAccept(t *testing.T, what string) {
	t.Helper()
	if o == nil || !o.done || o.rejected != nil || o.err != nil {
		t.Fatalf("%s: %+v", what, o)
	}
}

// mustRefuse fails the test unless the validator refused with want in the message.
func (o *updateOutcome) mustRefuse(t *testing.T, what, want string) {
	t.Helper()
	if o == nil || o.rejected == nil || !strings.Contains(o.rejected.Error(), want) {
		t.Fatalf("%s: want a refusal containing %q, got %+v", what, want, o)
	}
}

func queryProgress(t *testing.T, env *testsuite.TestWorkflowEnvironment) control.Progress {
	t.Helper()
	v, err := env.QueryWorkflow(control.ProgressQueryName, 0)
	if err != nil {
		t.Fatalf("progress query: %v", err)
	}
	var p control.Progress
	if err := v.Get(&p); err != nil {
		t.Fatal(err)
	}
	return p
}

func (w *world) stepCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.steps)
}

// turnsOf lists the turns subtask id's model was asked for, in order.
func (w *world) turnsOf(id string) []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []int
	for _, s := range w.steps {
		if s.Ref.SubtaskID == id {
			out = append(out, s.Turn)
		}
	}
	return out
}

// TestPauseResume: a pause lets running sub-agents finish the step they are
// in (its tools run) and start no model call until resume; then they go on
// from the next turn, with no step lost or repeated.
func TestPauseResume(t *testing.T) {
	w := newWorld(subtask("01-a", 0), subtask("02-b", 0), subtask("03-c", 1, "01-a"))
	w.fallback = toolsThenDone(5)
	w.stepDelay = time.Minute
	env := newEnv(t, w)
	var pause, again, resume, badResume *updateOutcome
	var atPause, settled, beforeResume, execsAtPause, execsBeforeResume int
	var paused control.Progress
	env.RegisterDelayedCallback(func() {
		atPause = w.stepCount()
		pause = sendUpdate(env, control.PauseUpdateName, "p1", control.PauseRequest{Reason: "lunch"})
	}, 150*time.Second)
	env.RegisterDelayedCallback(func() {
		again = sendUpdate(env, control.PauseUpdateName, "p2", control.PauseRequest{})
		paused = queryProgress(t, env)
		settled = w.stepCount()
		w.mu.Lock()
		execsAtPause = len(w.execs)
		w.mu.Unlock()
	}, 10*time.Minute)
	env.RegisterDelayedCallback(func() {
		beforeResume = w.stepCount()
		w.mu.Lock()
		execsBeforeResume = len(w.execs)
		w.mu.Unlock()
		badResume = sendUpdate(env, control.ResumeUpdateName, "r0", control.ResumeRequest{AddTokens: -5})
		resume = sendUpdate(env, control.ResumeUpdateName, "r1", control.ResumeRequest{})
	}, 3*time.Hour)
	res := runSwarm(t, env, swarmInput())

	pause.mustAccept(t, "pause")
	again.mustRefuse(t, "second pause", "already paused (lunch)")
	badResume.mustRefuse(t, "negative resume", "must be 0 or more")
	resume.mustAccept(t, "resume")
	// A mocked call is recorded when it returns: at the pause 4 calls had
	// returned and 2 (turn 3 of each) were in flight; they finish, their
	// tools run, and nothing else starts.
	if atPause != 4 || settled != 6 || beforeResume != settled {
		t.Errorf("model calls: %d returned at the pause, %d after, %d before resume; want 4, 6, 6", atPause, settled, beforeResume)
	}
	if execsAtPause != settled || execsBeforeResume != settled {
		t.Errorf("tool calls: %d and %d while paused; want the tools of every step begun (%d) run", execsAtPause, execsBeforeResume, settled)
	}
	if paused.State != control.RunStatePaused || paused.StateReason != "lunch" {
		t.Errorf("progress while paused = %q (%q)", paused.State, paused.StateReason)
	}
	if len(paused.Rows) != 3 {
		t.Fatalf("rows while paused: %+v", paused.Rows)
	}
	for i, want := range []control.SubtaskView{
		{ID: "01-a", Status: "paused", Step: 3, Tokens: 330},
		{ID: "02-b", Status: "paused", Step: 3, Tokens: 330},
		{ID: "03-c", Status: activities.StatusPending},
	} {
		if got := paused.Rows[i]; got.ID != want.ID || got.Status != want.Status || got.Step != want.Step || got.Tokens != want.Tokens {
			t.Errorf("row %d = %+v, want %+v", i, got, want)
		}
	}
	if !res.Success {
		t.Fatalf("run failed: %s", res.Error)
	}
	for _, id := range []string{"01-a", "02-b", "03-c"} {
		if got := w.turnsOf(id); len(got) != 6 || got[0] != 1 || got[5] != 6 {
			t.Errorf("%s turns %v, want 1..6 once each", id, got)
		}
	}
	if w.indexOf("start:03-c") < 0 {
		t.Error("the dependent subtask never started after resume")
	}
}

// TestPauseHoldsNewSubtasks: a subtask whose dependency finishes while the
// run is paused does not start until resume.
func TestPauseHoldsNewSubtasks(t *testing.T) {
	w := newWorld(subtask("01-a", 0), subtask("02-b", 1, "01-a"))
	w.fallback = toolsThenDone(2)
	w.stepDelay = time.Minute
	env := newEnv(t, w)
	var startsWhilePaused int
	var pause, resume *updateOutcome
	env.RegisterDelayedCallback(func() {
		pause = sendUpdate(env, control.PauseUpdateName, "p1", control.PauseRequest{})
	}, 30*time.Second)
	env.RegisterDelayedCallback(func() {
		startsWhilePaused = w.count("start:")
		resume = sendUpdate(env, control.ResumeUpdateName, "r1", control.ResumeRequest{})
	}, 2*time.Hour)
	res := runSwarm(t, env, swarmInput())
	pause.mustAccept(t, "pause")
	resume.mustAccept(t, "resume")
	if startsWhilePaused != 1 || !res.Success {
		t.Errorf("%d subtasks started while paused (want 1); success=%v %s", startsWhilePaused, res.Success, res.Error)
	}
}

// TestApprovePlan: with ApprovePlan the run waits after planning, shows its
// plan, and runs once approved; steering that does not fit the state is
// refused.
func TestApprovePlan(t *testing.T) {
	w := newWorld(subtask("01-a", 0), subtask("02-b", 1, "01-a"))
	env := newEnv(t, w)
	in := swarmInput()
	in.ApprovePlan = true
	var plan workflows.PlanView
	var stepsBefore int
	var approve, again, resume, pause *updateOutcome
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(control.PlanQueryName)
		if err != nil {
			t.Fatalf("plan query: %v", err)
		}
		_ = v.Get(&plan)
		stepsBefore = w.stepCount()
		resume = sendUpdate(env, control.ResumeUpdateName, "r", control.ResumeRequest{})
		pause = sendUpdate(env, control.PauseUpdateName, "p", control.PauseRequest{})
		approve = sendUpdate(env, control.ApproveUpdateName, "a1", control.ApproveRequest{})
		again = sendUpdate(env, control.ApproveUpdateName, "a2", control.ApproveRequest{})
	}, time.Hour)
	res := runSwarm(t, env, in)

	if plan.State != control.RunStateAwaitingApproval || len(plan.Subtasks) != 2 || plan.Subtasks[1].Dependencies[0] != "01-a" {
		t.Errorf("plan while waiting = %+v", plan)
	}
	if stepsBefore != 0 {
		t.Errorf("%d model calls before approval", stepsBefore)
	}
	resume.mustRefuse(t, "resume while awaiting approval", "is not paused (state awaiting_approval)")
	pause.mustRefuse(t, "pause while awaiting approval", "awaiting approval")
	approve.mustAccept(t, "approve")
	again.mustRefuse(t, "second approve", "is not awaiting approval (state running)")
	if !res.Success {
		t.Fatalf("approved run failed: %s", res.Error)
	}
}

// TestRejectPlan: a rejected plan ends the run with its reason; no subtask
// runs.
func TestRejectPlan(t *testing.T) {
	w := newWorld(subtask("01-a", 0))
	env := newEnv(t, w)
	in := swarmInput()
	in.ApprovePlan = true
	var empty, reject *updateOutcome
	env.RegisterDelayedCallback(func() {
		empty = sendUpdate(env, control.RejectUpdateName, "x0", control.RejectRequest{Reason: " "})
		reject = sendUpdate(env, control.RejectUpdateName, "x1", control.RejectRequest{Reason: "too broad"})
	}, time.Minute)
	res := runSwarm(t, env, in)
	reject.mustAccept(t, "reject")
	empty.mustRefuse(t, "reject without reason", "needs a reason")
	if res.Success || res.Error != "plan rejected: too broad" || w.count("start:") != 0 || len(w.steps) != 0 {
		t.Errorf("success=%v error=%q starts=%d steps=%d", res.Success, res.Error, w.count("start:"), len(w.steps))
	}
	if r := subtaskResult(t, res, "01-a"); r.Status != activities.StatusCancelled {
		t.Errorf("01-a status %q", r.Status)
	}
}

// budgetInput caps the run at maxTokens; a scripted call costs 110 tokens
// (stepUsage) and the estimates are set so that they cover it exactly
// enough: first call 100+1+10, later ones 100+10+3+10.
func budgetInput(maxTokens int64) workflows.SwarmInput {
	in := swarmInput()
	in.Budget = workflows.RunBudget{MaxTokens: maxTokens, MaxAnswerTokens: 10, FirstPromptTokens: 100,
		Price: activities.Price{Prompt: 1, Completion: 2}, PlannerPrice: activities.Price{Prompt: 1, Completion: 2}}
	return in
}

// TestBudgetCapPausesAndResumes: at the token cap the run pauses on its
// budget, having spent no more than the cap; resume --add-tokens lets it
// finish, and the result prices every subtask and the total.
func TestBudgetCapPausesAndResumes(t *testing.T) {
	w := newWorld(subtask("01-a", 0), subtask("02-b", 0))
	w.fallback = toolsThenDone(9) // 10 calls, 1,100 tokens each subtask
	w.stepDelay = time.Minute
	env := newEnv(t, w)
	var atCap control.Progress
	var stepsAtCap int
	var noAdd, resume *updateOutcome
	env.RegisterDelayedCallback(func() {
		atCap = queryProgress(t, env)
		stepsAtCap = w.stepCount()
		noAdd = sendUpdate(env, control.ResumeUpdateName, "r0", control.ResumeRequest{})
		resume = sendUpdate(env, control.ResumeUpdateName, "r1", control.ResumeRequest{AddTokens: 5000})
	}, 5*time.Hour)
	res := runSwarm(t, env, budgetInput(1000))

	if atCap.State != control.RunStateBudgetPaused || !strings.Contains(atCap.StateReason, "token cap 1,000 reached") {
		t.Errorf("state at the cap = %q (%q)", atCap.State, atCap.StateReason)
	}
	if spent := int64(planUsage.PromptTokens+planUsage.CompletionTokens) + int64(stepsAtCap)*110; spent > 1000 || atCap.Budget.Tokens != spent {
		t.Errorf("at the cap %d calls were made: %d tokens spent (progress says %d), cap 1,000", stepsAtCap, spent, atCap.Budget.Tokens)
	}
	if 1000-atCap.Budget.Tokens > 2*123 {
		t.Errorf("paused with %d tokens left: room for another call", 1000-atCap.Budget.Tokens)
	}
	noAdd.mustRefuse(t, "resume without more budget", "raise it with --add-tokens")
	resume.mustAccept(t, "resume --add-tokens")
	if !res.Success {
		t.Fatalf("run failed after resume: %s", res.Error)
	}
	wantCost := 0.0
	for _, r := range res.SubtaskResults {
		cost := float64(r.PromptTokens+2*r.CompletionTokens) / 1e6
		if r.PromptTokens != 1000 || r.CompletionTokens != 100 || !near(r.CostUSD, cost) {
			t.Errorf("%s: %d+%d tokens, $%g", r.ID, r.PromptTokens, r.CompletionTokens, r.CostUSD)
		}
		wantCost += cost
	}
	wantCost += float64(planUsage.PromptTokens+2*planUsage.CompletionTokens) / 1e6
	if !near(res.Stats.CostUSD, wantCost) {
		t.Errorf("total cost $%g, want $%g", res.Stats.CostUSD, wantCost)
	}
}

func near(a, b float64) bool { return a-b < 1e-12 && b-a < 1e-12 }

// TestBudgetNeverOverspends: many sub-agents at once never start a call
// their allowance cannot cover, and with no resume the run stays paused
// until it is cancelled; cancel ends it with a result.
func TestBudgetNeverOverspends(t *testing.T) {
	var plan []activities.Subtask
	for _, id := range []string{"01-a", "02-b", "03-c", "04-d", "05-e"} {
		plan = append(plan, subtask(id, 0))
	}
	w := newWorld(plan...)
	w.fallback = toolsThenDone(20)
	w.stepDelay = time.Minute
	env := newEnv(t, w)
	var atCap control.Progress
	var stepsAtCap int
	env.RegisterDelayedCallback(func() {
		atCap = queryProgress(t, env)
		stepsAtCap = w.stepCount()
		env.CancelWorkflow()
	}, 24*time.Hour)
	res := runSwarm(t, env, budgetInput(3000))

	spent := int64(planUsage.PromptTokens+planUsage.CompletionTokens) + int64(stepsAtCap)*110
	if atCap.State != control.RunStateBudgetPaused || spent > 3000 {
		t.Errorf("state %q, %d calls, %d tokens spent of a 3,000 cap", atCap.State, stepsAtCap, spent)
	}
	if w.stepCount() != stepsAtCap {
		t.Errorf("calls went on after the cap: %d, then %d", stepsAtCap, w.stepCount())
	}
	for _, r := range res.SubtaskResults {
		if r.Status != activities.StatusCancelled {
			t.Errorf("%s = %s after cancel, want cancelled", r.ID, r.Status)
		}
	}
}

// TestSubagentCap: a sub-agent stops before the call that could pass its
// own token cap; its work is committed and the result says why.
func TestSubagentCap(t *testing.T) {
	w := newWorld(subtask("01-a", 0))
	w.fallback = toolsThenDone(9)
	env := newEnv(t, w)
	in := budgetInput(0)
	in.Budget.MaxTokensPerSubagent = 300
	res := runSwarm(t, env, in)
	r := subtaskResult(t, res, "01-a")
	if r.Steps != 2 || r.Success || !strings.Contains(r.Error, "could pass its own cap: 220 tokens") || w.count("commit:01-a") != 1 {
		t.Errorf("steps=%d success=%v error=%q commits=%d", r.Steps, r.Success, r.Error, w.count("commit:01-a"))
	}
}

// TestTell: a note reaches the named sub-agent's next model call (once),
// a note to a subtask that has not started reaches its first call, and
// notes to unknown or ended subtasks are refused with the known ones.
func TestTell(t *testing.T) {
	w := newWorld(subtask("01-a", 0), subtask("02-b", 1, "01-a"))
	w.fallback = toolsThenDone(5)
	w.stepDelay = time.Minute
	env := newEnv(t, w)
	var unknown, empty, toA, toB *updateOutcome
	env.RegisterDelayedCallback(func() {
		toA = sendUpdate(env, control.TellUpdateName, "t1", control.TellRequest{Subtask: "01-a", Message: "use errors.Is"})
		toB = sendUpdate(env, control.TellUpdateName, "t2", control.TellRequest{Subtask: "02-b", Message: "keep the API"})
		unknown = sendUpdate(env, control.TellUpdateName, "t3", control.TellRequest{Subtask: "09-z", Message: "hi"})
		empty = sendUpdate(env, control.TellUpdateName, "t4", control.TellRequest{Message: "  "})
	}, 150*time.Second)
	res := runSwarm(t, env, swarmInput())
	toA.mustAccept(t, "tell 01-a")
	toB.mustAccept(t, "tell 02-b")
	unknown.mustRefuse(t, "tell unknown", `no subtask "09-z" (known: 01-a, 02-b)`)
	empty.mustRefuse(t, "empty note", "empty")
	if !res.Success {
		t.Fatal(res.Error)
	}
	var got []string
	for _, s := range w.steps {
		if len(s.Notes) > 0 {
			got = append(got, s.Ref.SubtaskID+":"+string(rune('0'+s.Turn))+":"+strings.Join(s.Notes, "|"))
		}
	}
	if want := "01-a:4:use errors.Is 02-b:1:keep the API"; strings.Join(got, " ") != want {
		t.Errorf("notes seen: %q, want %q", got, want)
	}
}

// TestSummaryCallBudgeted: the summary of a large tool output is a model
// call too; a sub-agent whose own cap cannot cover it stops before it.
func TestSummaryCallBudgeted(t *testing.T) {
	w := newWorld(subtask("01-a", 0))
	w.fallback = toolsThenDone(3)
	w.execFn = func(activities.ExecToolInput) activities.ExecToolResult {
		return activities.ExecToolResult{Name: "bash", OutputChars: 3000, NeedsSummary: true}
	}
	env := newEnv(t, w)
	in := budgetInput(0)
	in.Budget.MaxTokensPerSubagent = 1000 // the first call (110) fits, its summary (~1,210) does not
	res := runSwarm(t, env, in)
	r := subtaskResult(t, res, "01-a")
	if len(w.summaries) != 0 || r.Steps != 1 || r.ExitReason != workflows.ExitBudget || !strings.Contains(r.Error, "own cap") {
		t.Errorf("summaries=%d steps=%d exit=%q error=%q", len(w.summaries), r.Steps, r.ExitReason, r.Error)
	}
}

// TestConflictRerunWhilePaused: a subtask that finishes during a pause is
// merged; when the merge conflicts, its re-run starts paused and makes no
// model call until resume.
func TestConflictRerunWhilePaused(t *testing.T) {
	w := newWorld(subtask("01-a", 0), subtask("02-b", 0))
	w.stepDelay = time.Minute // toolsThenDone(1): both end their second (final) turn at 2 min
	firstB := commitOf(worktreeOf(activities.ConvRef{SubtaskID: "02-b", Attempt: 1}))
	w.mergeFn = func(in activities.MergeSubtaskInput) (activities.MergeSubtaskResult, bool) {
		if in.Commit == firstB {
			return activities.MergeSubtaskResult{Status: activities.MergeConflict, Conflicts: []string{"shared.go"}}, true
		}
		return activities.MergeSubtaskResult{}, false
	}
	env := newEnv(t, w)
	var pause, resume *updateOutcome
	rerunCalls := -1
	env.RegisterDelayedCallback(func() {
		pause = sendUpdate(env, control.PauseUpdateName, "p", control.PauseRequest{})
	}, 90*time.Second)
	env.RegisterDelayedCallback(func() {
		w.mu.Lock()
		rerunCalls = 0
		for _, s := range w.steps {
			if s.Ref.SubtaskID == "02-b" && s.Ref.Attempt == 2 {
				rerunCalls++
			}
		}
		w.mu.Unlock()
		resume = sendUpdate(env, control.ResumeUpdateName, "r", control.ResumeRequest{})
	}, 2*time.Hour)
	res := runSwarm(t, env, swarmInput())
	pause.mustAccept(t, "pause")
	resume.mustAccept(t, "resume")
	if w.count("start:02-b") != 2 || rerunCalls != 0 {
		t.Errorf("02-b started %d times; the re-run made %d model calls while paused (want 2 starts, 0 calls)", w.count("start:02-b"), rerunCalls)
	}
	if !res.Success {
		t.Errorf("run failed: %s", res.Error)
	}
}
