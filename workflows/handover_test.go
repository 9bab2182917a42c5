package workflows_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"codeswarm/activities"
	"codeswarm/control"
	"codeswarm/workflows"
)

// Task states as Carry records them.
const (
	carriedPending = 0
	carriedRunning = 1
	carriedDone    = 2
)

// continuedInput runs the parent until it continues as new and returns the
// input of the next run.
func continuedInput(t *testing.T, env *testsuite.TestWorkflowEnvironment, in workflows.SwarmInput) workflows.SwarmInput {
	t.Helper()
	env.ExecuteWorkflow(workflows.SwarmWorkflowName, in)
	next, _ := nextRunInput[workflows.SwarmInput](t, env.GetWorkflowError())
	if next.Carry == nil {
		t.Fatal("the next run's input has no carry")
	}
	return next
}

func carriedTask(t *testing.T, c *workflows.Carry, id string) workflows.Task {
	t.Helper()
	for _, ct := range c.Tasks {
		if ct.Sub.ID == id {
			return *ct
		}
	}
	t.Fatalf("no subtask %s in the carry", id)
	return workflows.Task{}
}

// agentResult is what a sub-agent of subtask id returns after 3 steps.
func agentResult(id string) workflows.SubAgentResult {
	wt := "/wt/" + id + "-a1"
	return workflows.SubAgentResult{SubtaskID: id, Attempt: 1, Success: true, Status: activities.StatusCompleted,
		ExitReason: workflows.ExitCompleted, Result: "did " + id + "\nSTATUS: completed",
		AgentProgress: workflows.AgentProgress{Worktree: wt, Branch: "codeswarm/" + testRunID + "/" + id, BaseCommit: baseCommit,
			Steps: 3, ToolCalls: 2, LLMCalls: 3, Usage: activities.Usage{PromptTokens: 300, CompletionTokens: 30}},
		Commit: commitOf(wt), Changed: true, FilesChanged: []string{id + ".go"}}
}

func childDone(t *testing.T, id string, r workflows.SubAgentResult) activities.ChildDone {
	t.Helper()
	raw, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return activities.ChildDone{ChildWorkflowID: workflows.ChildWorkflowID(testRunID, id, 1), Result: raw}
}

// inheritedCarry is a run continued with running sub-agents for running
// and pending subtasks for pending.
func inheritedCarry(running []string, pending ...string) *workflows.Carry {
	c := &workflows.Carry{}
	c.Runs = 1
	c.Prep = activities.PrepareRunResult{RepoRoot: repoRoot, BaseCommit: baseCommit, BaseBranch: "main", WorkspaceQueue: wsQueue}
	c.Head = baseCommit
	c.Started = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c.State = control.RunStateRunning
	c.Usage = planUsage
	c.LLMCalls = 1
	c.Seq = 7
	for _, id := range running {
		c.Tasks = append(c.Tasks, &workflows.Task{Sub: subtask(id, 0), State: carriedRunning, Attempt: 1, Reserved: 20,
			ChildID: workflows.ChildWorkflowID(testRunID, id, 1), Branch: workflows.SubtaskBranch("codeswarm", testRunID, id, 1)})
		c.Running++
		c.Reserved += 20
		c.Spawned++
	}
	for _, id := range pending {
		c.Tasks = append(c.Tasks, &workflows.Task{Sub: subtask(id, 1)})
	}
	return c
}

// TestParentContinuesAsNewWithChildrenRunning: once the server suggests it,
// the parent hands its whole state to the next run while a sub-agent still
// runs, and the next run, told of that sub-agent's end, finishes the plan
// with every figure counted once.
func TestParentContinuesAsNewWithChildrenRunning(t *testing.T) {
	w := newWorld(subtask("a", 0), subtask("b", 0), subtask("c", 0), subtask("d", 0))
	w.scripts["a"] = toolsThenDone(0) // 1 step: a ends first
	w.fallback = toolsThenDone(3)
	w.stepDelay = time.Minute
	in := swarmInput()
	in.Limits.MaxConcurrent = 2
	env := newEnv(t, w)
	env.RegisterDelayedCallback(func() { env.SetContinueAsNewSuggested(true) }, 30*time.Second)
	next := continuedInput(t, env, in)

	c := next.Carry
	a, b := carriedTask(t, c, "a"), carriedTask(t, c, "b")
	if a.State != carriedDone || a.Res.Merge != activities.MergeMerged || a.Res.Result == "" {
		t.Errorf("a in the carry = state %d, merge %q, result %q; want done and merged with its result", a.State, a.Res.Merge, a.Res.Result)
	}
	if b.State != carriedRunning || b.ChildID != workflows.ChildWorkflowID(testRunID, "b", 1) || b.Reserved != 20 {
		t.Errorf("b in the carry = %+v; want running as %s with 20 steps reserved", b, workflows.ChildWorkflowID(testRunID, "b", 1))
	}
	for _, id := range []string{"c", "d"} {
		if ct := carriedTask(t, c, id); ct.State != carriedPending {
			t.Errorf("%s in the carry is in state %d, want pending (nothing starts once the run hands over)", id, ct.State)
		}
	}
	if c.Running != 1 || c.Reserved != 20 || c.Spawned != 2 || c.Used != 1 || c.LLMCalls != 2 || c.Runs != 1 {
		t.Errorf("counters running=%d reserved=%d spawned=%d used=%d llm=%d runs=%d; want 1 20 2 1 2 1", c.Running, c.Reserved, c.Spawned, c.Used, c.LLMCalls, c.Runs)
	}
	if c.Prep.RepoRoot != repoRoot || c.Prep.WorkspaceQueue != wsQueue || c.Head == baseCommit {
		t.Errorf("carry prep %+v head %q", c.Prep, c.Head)
	}
	if len(c.Share) != 1 || !c.Share[0].FromTask || c.Share[0].Key != "a" || c.Share[0].Value != "" {
		t.Errorf("share in the carry = %+v; want a's own result, rebuilt from its subtask", c.Share)
	}
	if last := c.Events[len(c.Events)-1]; last.Kind != "continued" || last.Seq != c.Seq {
		t.Errorf("last carried event %+v, seq %d; want the continue, numbered by the seq", last, c.Seq)
	}

	// The next run: b's sub-agent ends under it.
	w2 := newWorld(subtask("a", 0), subtask("b", 0), subtask("c", 0), subtask("d", 0))
	w2.head = c.Head
	w2.fallback = toolsThenDone(3)
	env2 := newEnv(t, w2)
	env2.RegisterDelayedCallback(func() {
		env2.SignalWorkflow(activities.ChildDoneSignal, childDone(t, "b", agentResult("b")))
	}, 10*time.Second)
	res := runSwarm(t, env2, next)

	if !res.Success || len(res.SubtaskResults) != 4 || res.Stats.SubagentsSpawned != 4 {
		t.Fatalf("success=%v results=%d spawned=%d error=%q", res.Success, len(res.SubtaskResults), res.Stats.SubagentsSpawned, res.Error)
	}
	for _, r := range res.SubtaskResults {
		if r.Merge != activities.MergeMerged {
			t.Errorf("%s merge %q, want merged", r.ID, r.Merge)
		}
	}
	if w2.count("prepare") != 0 || w2.count("plan") != 0 || w2.count("merge:a") != 0 || w2.count("merge:b") != 1 {
		t.Errorf("the next run prepared %d, planned %d, merged a %d and b %d times; want 0, 0, 0, 1",
			w2.count("prepare"), w2.count("plan"), w2.count("merge:a"), w2.count("merge:b"))
	}
	if len(w2.awaits) != 1 || len(w2.awaits[0].Children) != 1 || w2.awaits[0].Children[0] != b.ChildID || w2.awaits[0].ParentID != testRunID {
		t.Errorf("AwaitChildren got %+v; want b's sub-agent for %s", w2.awaits, testRunID)
	}
	// Planner 1 call, a 1 step, b 3 steps (its signal), c and d 4 each.
	wantSteps, wantPrompt := 1+3+4+4, planUsage.PromptTokens+100+300+400+400
	if steps := totalSteps(res); steps != wantSteps || res.Stats.TotalLLMCalls != 1+wantSteps || res.Stats.PromptTokens != wantPrompt {
		t.Errorf("stats steps=%d llm=%d prompt=%d; want %d %d %d", totalSteps(res), res.Stats.TotalLLMCalls, res.Stats.PromptTokens, wantSteps, 1+wantSteps, wantPrompt)
	}
}

// TestParentDrainsItsSubAgentsBeforeContinuing: once the hand-over is due
// the run starts no new sub-agent and hands over when its own have ended
// (their ends could otherwise make the server refuse the continue-as-new
// again and again), or after handoverDrainMax with the rest still running.
func TestParentDrainsItsSubAgentsBeforeContinuing(t *testing.T) {
	for _, tt := range []struct {
		name        string
		bSteps      int
		wantBState  int
		wantRunning int
	}{
		{name: "own sub-agents end within the drain", bSteps: 1, wantBState: carriedDone, wantRunning: 0},
		{name: "one outlasts the drain", bSteps: 6, wantBState: carriedRunning, wantRunning: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(subtask("a", 0), subtask("b", 0), subtask("c", 0), subtask("d", 0))
			w.scripts["a"] = toolsThenDone(0) // ends at 10 s
			w.scripts["b"] = toolsThenDone(tt.bSteps)
			w.fallback = toolsThenDone(0)
			w.stepDelay = 10 * time.Second
			in := swarmInput()
			in.Limits.MaxConcurrent = 2
			env := newEnv(t, w)
			env.RegisterDelayedCallback(func() { env.SetContinueAsNewSuggested(true) }, 5*time.Second)
			c := continuedInput(t, env, in).Carry

			if a := carriedTask(t, c, "a"); a.State != carriedDone || a.Res.Merge != activities.MergeMerged {
				t.Errorf("a in the carry: state %d, merge %q; want done and merged", a.State, a.Res.Merge)
			}
			b := carriedTask(t, c, "b")
			if int(b.State) != tt.wantBState || (tt.wantBState == carriedDone && b.Res.Merge != activities.MergeMerged) {
				t.Errorf("b in the carry: state %d, merge %q; want state %d", b.State, b.Res.Merge, tt.wantBState)
			}
			for _, id := range []string{"c", "d"} {
				if ct := carriedTask(t, c, id); ct.State != carriedPending {
					t.Errorf("%s in the carry is in state %d, want pending: nothing starts while the run drains", id, ct.State)
				}
			}
			if c.Running != tt.wantRunning || c.Spawned != 2 {
				t.Errorf("carry running=%d spawned=%d; want %d 2", c.Running, c.Spawned, tt.wantRunning)
			}
			drained := false
			for _, e := range c.Events {
				drained = drained || e.Kind == "draining"
			}
			if !drained {
				t.Error("no draining event in the carry")
			}
		})
	}
}

// TestParentDrainsSignalsBeforeContinuing: two inherited sub-agents end in
// the same workflow task that the server suggests continuing in; the
// schedule books one, and the other, still in the channel, is booked before
// the hand-over rather than lost with the run.
func TestParentDrainsSignalsBeforeContinuing(t *testing.T) {
	w := newWorld()
	env := newEnv(t, w)
	in := swarmInput()
	in.Carry = inheritedCarry([]string{"b", "c", "e"})
	env.RegisterDelayedCallback(func() {
		env.SetContinueAsNewSuggested(true)
		env.SignalWorkflow(activities.ChildDoneSignal, childDone(t, "b", agentResult("b")))
		env.SignalWorkflow(activities.ChildDoneSignal, childDone(t, "c", agentResult("c")))
		env.SignalWorkflow("budget_report", workflows.BudgetReport{Subtask: "e", Attempt: 1, Step: 7, Usage: activities.Usage{PromptTokens: 700}})
	}, time.Minute)
	next := continuedInput(t, env, in)

	c := next.Carry
	for _, id := range []string{"b", "c"} {
		if ct := carriedTask(t, c, id); ct.State != carriedDone || ct.Res.Merge != activities.MergeMerged || ct.Res.Steps != 3 {
			t.Errorf("%s in the carry: state %d merge %q steps %d; want done, merged, 3 steps", id, ct.State, ct.Res.Merge, ct.Res.Steps)
		}
	}
	if e := carriedTask(t, c, "e"); e.State != carriedRunning || e.Control.Step != 7 || e.Control.Usage.PromptTokens != 700 {
		t.Errorf("e in the carry: state %d control %+v; want running with its report (step 7, 700 prompt tokens)", e.State, e.Control)
	}
	if c.Running != 1 || c.Reserved != 20 || c.Used != 6 || c.Runs != 2 {
		t.Errorf("running=%d reserved=%d used=%d runs=%d; want 1 20 6 2", c.Running, c.Reserved, c.Used, c.Runs)
	}
	if w.count("merge:b") != 1 || w.count("merge:c") != 1 {
		t.Errorf("merged b %d and c %d times, want once each", w.count("merge:b"), w.count("merge:c"))
	}
}

// TestParentIgnoresRepeatedChildDone: AwaitChildren reports again after a
// retry; the second report of the same sub-agent changes nothing.
func TestParentIgnoresRepeatedChildDone(t *testing.T) {
	w := newWorld()
	env := newEnv(t, w)
	in := swarmInput()
	in.Carry = inheritedCarry([]string{"b", "c"})
	done := childDone(t, "b", agentResult("b"))
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(activities.ChildDoneSignal, done) }, time.Minute)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(activities.ChildDoneSignal, done) }, 2*time.Minute)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(activities.ChildDoneSignal, childDone(t, "c", agentResult("c")))
	}, 3*time.Minute)
	res := runSwarm(t, env, in)

	if !res.Success || len(res.SubtaskResults) != 2 {
		t.Fatalf("success=%v results=%d error=%q", res.Success, len(res.SubtaskResults), res.Error)
	}
	if w.count("merge:b") != 1 {
		t.Errorf("b merged %d times, want once", w.count("merge:b"))
	}
	if b := subtaskResult(t, res, "b"); b.Steps != 3 || b.PromptTokens != 300 {
		t.Errorf("b counted %d steps, %d prompt tokens; want 3 and 300 (once)", b.Steps, b.PromptTokens)
	}
	if totalSteps(res) != 6 || res.Stats.PromptTokens != planUsage.PromptTokens+600 {
		t.Errorf("stats steps=%d prompt=%d; want 6 and %d", totalSteps(res), res.Stats.PromptTokens, planUsage.PromptTokens+600)
	}
}

// TestParentInheritedChildTerminated: a sub-agent terminated by hand is
// reported as failed, and the run ends instead of waiting for it.
func TestParentInheritedChildTerminated(t *testing.T) {
	w := newWorld()
	env := newEnv(t, w)
	in := swarmInput()
	in.Carry = inheritedCarry([]string{"b"}, "d")
	in.Carry.Tasks[1].Sub.Dependencies = []string{"b"}
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(activities.ChildDoneSignal, activities.ChildDone{
			ChildWorkflowID: workflows.ChildWorkflowID(testRunID, "b", 1), Error: "workflow execution error: terminated by an operator"})
	}, time.Minute)
	res := runSwarm(t, env, in)

	b, d := subtaskResult(t, res, "b"), subtaskResult(t, res, "d")
	if b.Status != activities.StatusFailed || !strings.Contains(b.Error, "terminated by an operator") {
		t.Errorf("b = %s (%s), want failed with the termination", b.Status, b.Error)
	}
	if d.Status != activities.StatusBlocked {
		t.Errorf("d = %s, want blocked by b", d.Status)
	}
	if res.Success || w.count("merge:") != 0 {
		t.Errorf("success=%v merges=%d; want a failed run that merged nothing", res.Success, w.count("merge:"))
	}
}

// TestParentCancelsInheritedChildren: a cancelled run asks the sub-agents
// an earlier run started to cancel, and waits for their ends.
func TestParentCancelsInheritedChildren(t *testing.T) {
	w := newWorld()
	env := newEnv(t, w)
	in := swarmInput()
	in.Carry = inheritedCarry([]string{"b"}, "d")
	in.Carry.Tasks[1].Sub.Dependencies = []string{"b"}
	child := workflows.ChildWorkflowID(testRunID, "b", 1)
	cancelled := false
	env.OnRequestCancelExternalWorkflow(mock.Anything, child, "").Return(func(_, _, _ string) error {
		cancelled = true
		return nil
	})
	env.RegisterDelayedCallback(env.CancelWorkflow, time.Minute)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(activities.ChildDoneSignal, activities.ChildDone{ChildWorkflowID: child, Cancelled: true, Error: "canceled"})
	}, 2*time.Minute)
	res := runSwarm(t, env, in)

	if !cancelled {
		t.Error("the inherited sub-agent was not asked to cancel")
	}
	if b := subtaskResult(t, res, "b"); b.Status != activities.StatusCancelled {
		t.Errorf("b = %s (%s), want cancelled", b.Status, b.Error)
	}
	if d := subtaskResult(t, res, "d"); d.Status != activities.StatusCancelled {
		t.Errorf("d = %s (%s), want cancelled before it started", d.Status, d.Error)
	}
}

func totalSteps(res activities.SwarmResult) int {
	n := 0
	for _, r := range res.SubtaskResults {
		n += r.Steps
	}
	return n
}

// TestSubAgentStopsWhenRunClosed: a sub-agent waiting for allowance from a
// run that has closed (terminated: its sub-agents, started ABANDON, live
// on) finds out from its failed report and stops as cancelled, its work
// committed, instead of waiting forever.
func TestSubAgentStopsWhenRunClosed(t *testing.T) {
	w := newWorld()
	env := newEnv(t, w)
	in := agentInput()
	in.ParentWorkflowID = "closed-run" // the test environment would deliver a signal to testRunID itself
	in.Control = &workflows.AgentControl{Budget: workflows.RunBudget{MaxTokens: 100_000, MaxAnswerTokens: 1000, FirstPromptTokens: 1000}}
	env.OnSignalExternalWorkflow(mock.Anything, "closed-run", "", "budget_report", mock.Anything).
		Return(&temporal.UnknownExternalWorkflowExecutionError{})
	res := runAgent(t, env, in)

	if res.Status != activities.StatusCancelled || !strings.Contains(res.Error, "has closed") {
		t.Errorf("status %s (%s), want cancelled because the run has closed", res.Status, res.Error)
	}
	if len(w.steps) != 0 || len(w.commits) != 1 {
		t.Errorf("%d model calls and %d commits, want none and its work committed once", len(w.steps), len(w.commits))
	}
}

// TestParentMovesInheritedChild: move works on a sub-agent an earlier run
// started: it is terminated by its ID and restarted on the new host, and the
// report of its termination that AwaitChildren then sends is ignored.
func TestParentMovesInheritedChild(t *testing.T) {
	const newQueue = "codeswarm-ws-host2"
	w := newWorld()
	w.liveHosts = map[string]bool{newQueue: true}
	env := newEnv(t, w)
	in := swarmInput()
	in.Carry = inheritedCarry([]string{"b"})
	old := workflows.ChildWorkflowID(testRunID, "b", 1)
	var moved *publishOutcome
	env.RegisterDelayedCallback(func() { moved = move(env, "m1", "host2") }, time.Minute)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(activities.ChildDoneSignal, activities.ChildDone{ChildWorkflowID: old, Error: "workflow execution error: terminated"})
	}, 2*time.Minute)
	res := runSwarm(t, env, in)

	if moved == nil || !moved.done || moved.err != nil {
		t.Fatalf("move: %+v", moved)
	}
	if len(w.terminated) != 1 || w.terminated[0] != old {
		t.Errorf("terminated %v, want [%s]", w.terminated, old)
	}
	if len(w.childIDs) != 1 || w.childIDs[0] != workflows.MovedChildWorkflowID(testRunID, "b", 1, 1) || w.children[0].WorkspaceQueue != newQueue {
		t.Errorf("restarted %v, want b's sub-agent once more on %s", w.childIDs, newQueue)
	}
	if b := subtaskResult(t, res, "b"); !res.Success || b.Merge != activities.MergeMerged {
		t.Errorf("success %v, b = %s (%s) merge %q; want the restarted sub-agent merged", res.Success, b.Status, b.Error, b.Merge)
	}
}
