package workflows_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"codeswarm/activities"
	"codeswarm/workflows"
)

const agentID = "01-a"

func agentInput() workflows.SubAgentInput {
	in := swarmInput()
	return workflows.SubAgentInput{
		RunID: testRunID, ParentWorkflowID: testRunID, Subtask: subtask(agentID, 0), Attempt: 1,
		RepoPath: repoRoot, IntegrationBranch: workflows.IntegrationBranch("codeswarm", testRunID),
		Branch:         workflows.SubtaskBranch("codeswarm", testRunID, agentID, 1),
		WorkspaceQueue: wsQueue, Model: "m", Limits: in.Limits, MaxSteps: 10, Tools: in.Tools,
	}
}

// runAgent runs one SubAgentWorkflow to completion.
func runAgent(t *testing.T, env *testsuite.TestWorkflowEnvironment, in workflows.SubAgentInput) workflows.SubAgentResult {
	t.Helper()
	env.ExecuteWorkflow(workflows.SubAgentWorkflowName, in)
	if !env.IsWorkflowCompleted() {
		t.Fatal("sub-agent did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("sub-agent error: %v", err)
	}
	var res workflows.SubAgentResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatalf("decode sub-agent result: %v", err)
	}
	return res
}

func unchanged(in activities.CommitSubtaskInput) (activities.CommitSubtaskResult, error) {
	return activities.CommitSubtaskResult{Commit: baseCommit, Changed: false, FilesChanged: []string{}}, nil
}

func nudged() activities.AgentStepResult {
	return activities.AgentStepResult{Nudged: true, Usage: stepUsage}
}

// repeatThenDone makes the same call (signature sig) for n turns, then
// reports completion.
func repeatThenDone(n int, sig string) script {
	return func(in activities.AgentStepInput) activities.AgentStepResult {
		if in.Turn <= n {
			return toolTurn("bash", sig)
		}
		return finalTurn("STATUS: completed")
	}
}

// freshResults gives every run a different result, as a test suite
// re-run after edits elsewhere would.
func freshResults(in activities.ExecToolInput) activities.ExecToolResult {
	return activities.ExecToolResult{Name: "bash", ResultHash: fmt.Sprintf("h%d-%d", in.Turn, in.Index)}
}

// resultsThenSame gives new results for the first n turns, then the same one.
func resultsThenSame(n int) func(activities.ExecToolInput) activities.ExecToolResult {
	return func(in activities.ExecToolInput) activities.ExecToolResult {
		return activities.ExecToolResult{Name: "bash", ResultHash: fmt.Sprintf("h%d", min(in.Turn, n+1))}
	}
}

func refused(execs []activities.ExecToolInput) int {
	n := 0
	for _, e := range execs {
		if e.Repeated {
			n++
		}
	}
	return n
}

func TestSubAgentLoop(t *testing.T) {
	alternating := func(in activities.AgentStepInput) activities.AgentStepResult {
		if in.Turn > 6 {
			return finalTurn("STATUS: completed")
		}
		return toolTurn("read", fmt.Sprintf("read:%d", in.Turn%2))
	}
	tests := []struct {
		name      string
		script    script
		maxSteps  int
		readOnly  bool
		commitFn  func(activities.CommitSubtaskInput) (activities.CommitSubtaskResult, error)
		stepDelay time.Duration
		timeout   time.Duration

		wantExit, wantStatus string
		wantSuccess          bool
		wantErr              string
		wantSteps, wantTools int
		execFn               func(activities.ExecToolInput) activities.ExecToolResult
		wantRefused          int // calls not run, answered "you are repeating yourself"
	}{
		{name: "completes", script: toolsThenDone(2), wantExit: "completed", wantStatus: "completed", wantSuccess: true, wantSteps: 3, wantTools: 2},
		// Two runs with the same result, then three refusals (each telling
		// the model it repeats itself), then the end.
		{name: "stuck across turns", script: sequence(toolTurn("read", "read:x")), wantExit: "stuck", wantStatus: "failed", wantErr: "made 6 times in a row, and again after 3 requests to change approach", wantSteps: 6, wantTools: 2, wantRefused: 3},
		{name: "stuck within a turn", script: sequence(toolTurn("read", "r", "r", "r", "r")), wantExit: "stuck", wantStatus: "failed", wantErr: "stuck", wantSteps: 2, wantTools: 2, wantRefused: 3},
		{
			name: "same call with new results is not stuck", script: repeatThenDone(8, "bash:go-test"), execFn: freshResults,
			wantExit: "completed", wantStatus: "completed", wantSuccess: true, wantSteps: 9, wantTools: 8,
		},
		{
			name: "same result after new ones is refused", script: repeatThenDone(5, "bash:go-test"), execFn: resultsThenSame(2),
			wantExit: "completed", wantStatus: "completed", wantSuccess: true, wantSteps: 6, wantTools: 4, wantRefused: 1,
		},
		{name: "alternating calls are not stuck", script: alternating, wantExit: "completed", wantStatus: "completed", wantSuccess: true, wantSteps: 7, wantTools: 6},
		{name: "max steps", script: toolsThenDone(100), maxSteps: 3, wantExit: "max_steps", wantStatus: "failed", wantErr: "max steps (3)", wantSteps: 3, wantTools: 3},
		{name: "no status line", script: sequence(finalTurn("all done")), wantExit: "completed", wantStatus: "failed", wantErr: "no STATUS line", wantSteps: 1},
		{name: "status blocked", script: sequence(finalTurn("need access\nSTATUS: blocked")), wantExit: "completed", wantStatus: "blocked", wantErr: "STATUS: blocked", wantSteps: 1},
		{name: "status pending", script: sequence(finalTurn("STATUS: pending")), wantExit: "completed", wantStatus: "pending", wantErr: "STATUS: pending", wantSteps: 1},
		{name: "nudged turns continue", script: sequence(nudged(), nudged(), finalTurn("STATUS: completed")), wantExit: "completed", wantStatus: "completed", wantSuccess: true, wantSteps: 3},
		{
			name: "code task that changed nothing", script: toolsThenDone(1), commitFn: unchanged,
			wantExit: "completed", wantStatus: "completed", wantErr: "changed no files", wantSteps: 2, wantTools: 1,
		},
		{
			name: "read-only task that changed files", script: toolsThenDone(1), readOnly: true,
			wantExit: "completed", wantStatus: "completed", wantErr: "kept on branch " + agentInput().Branch, wantSteps: 2, wantTools: 1,
		},
		{
			name: "read-only task that changed nothing", script: toolsThenDone(1), readOnly: true, commitFn: unchanged,
			wantExit: "completed", wantStatus: "completed", wantSuccess: true, wantSteps: 2, wantTools: 1,
		},
		{
			name: "commit fails", script: toolsThenDone(1),
			commitFn: func(activities.CommitSubtaskInput) (activities.CommitSubtaskResult, error) {
				return activities.CommitSubtaskResult{}, temporal.NewNonRetryableApplicationError("disk full", "Commit", nil)
			},
			wantExit: "completed", wantStatus: "completed", wantErr: "commit: ", wantSteps: 2, wantTools: 1,
		},
		{
			name: "deadline without progress", script: sequence(nudged()), stepDelay: 10 * time.Minute, timeout: 15 * time.Minute,
			wantExit: "timeout", wantStatus: "timed_out", wantErr: "timed out after 15m0s", wantSteps: 2,
		},
		{
			name: "progress resets the deadline", script: toolsThenDone(4), stepDelay: 10 * time.Minute, timeout: 15 * time.Minute,
			wantExit: "completed", wantStatus: "completed", wantSuccess: true, wantSteps: 5, wantTools: 4,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld()
			w.fallback, w.commitFn, w.stepDelay, w.execFn = tt.script, tt.commitFn, tt.stepDelay, tt.execFn
			in := agentInput()
			in.Subtask.NeedsWorktree = !tt.readOnly
			if tt.maxSteps > 0 {
				in.MaxSteps = tt.maxSteps
			}
			if tt.timeout > 0 {
				in.Limits.SubagentTimeout = tt.timeout
			}
			res := runAgent(t, newEnv(t, w), in)

			if res.ExitReason != tt.wantExit || res.Status != tt.wantStatus || res.Success != tt.wantSuccess {
				t.Errorf("exit=%q status=%q success=%v, want %q %q %v (error %q)", res.ExitReason, res.Status, res.Success, tt.wantExit, tt.wantStatus, tt.wantSuccess, res.Error)
			}
			if tt.wantErr == "" && res.Error != "" || !strings.Contains(res.Error, tt.wantErr) {
				t.Errorf("error = %q, want it to contain %q", res.Error, tt.wantErr)
			}
			if res.Steps != tt.wantSteps || res.LLMCalls != tt.wantSteps || len(w.steps) != tt.wantSteps {
				t.Errorf("steps=%d llm calls=%d turns run=%d, want %d", res.Steps, res.LLMCalls, len(w.steps), tt.wantSteps)
			}
			if res.ToolCalls != tt.wantTools || len(w.execs) != tt.wantTools+tt.wantRefused || refused(w.execs) != tt.wantRefused {
				t.Errorf("tool calls=%d exec activities=%d refused=%d, want %d run and %d refused", res.ToolCalls, len(w.execs), refused(w.execs), tt.wantTools, tt.wantRefused)
			}
			if res.Usage != (activities.Usage{PromptTokens: 100 * tt.wantSteps, CompletionTokens: 10 * tt.wantSteps}) {
				t.Errorf("usage = %+v", res.Usage)
			}
			// Work is never lost: every ending commits the worktree.
			if len(w.commits) != 1 || w.commits[0].Worktree != "/wt/01-a-a1" || w.commits[0].BaseCommit != baseCommit {
				t.Errorf("commits = %+v, want one of the worktree", w.commits)
			}
			if res.Worktree != "/wt/01-a-a1" || res.Branch != in.Branch || res.BaseCommit != baseCommit || res.SubtaskID != agentID || res.Attempt != 1 {
				t.Errorf("result refs = %+v", res)
			}
			if tt.stepDelay > 0 && res.ExecutionTimeMs < int64(tt.wantSteps)*tt.stepDelay.Milliseconds() {
				t.Errorf("execution time %d ms, want at least %d turns of %s", res.ExecutionTimeMs, tt.wantSteps, tt.stepDelay)
			}
		})
	}
}

func TestSubAgentTurnsAndToolIndexes(t *testing.T) {
	w := newWorld()
	w.fallback = sequence(toolTurn("edit", "e1", "e2"), toolTurn("read", "r1"), finalTurn("STATUS: completed"))
	in := agentInput()
	res := runAgent(t, newEnv(t, w), in)
	if !res.Success || res.ToolCalls != 3 {
		t.Fatalf("result = %+v", res)
	}
	want := []string{"1/0", "1/1", "2/0"}
	for i, e := range w.execs {
		if got := fmt.Sprintf("%d/%d", e.Turn, e.Index); got != want[i] {
			t.Errorf("exec %d at turn/index %s, want %s", i, got, want[i])
		}
		if e.Worktree != "/wt/01-a-a1" || e.Ref != (activities.ConvRef{RunID: testRunID, SubtaskID: agentID, Attempt: 1}) || e.Limits != in.Tools {
			t.Errorf("exec %d input = %+v", i, e)
		}
	}
	for i, s := range w.steps {
		if s.Turn != i+1 || s.Model != "m" {
			t.Errorf("step %d input = %+v", i, s)
		}
	}
	st := w.starts[0]
	if st.Branch != in.Branch || st.IntegrationBranch != in.IntegrationBranch || st.RepoPath != repoRoot || st.Subtask.ID != agentID || st.Conflict != nil {
		t.Errorf("start input = %+v", st)
	}
}

func TestSubAgentSummarizesLargeOutput(t *testing.T) {
	w := newWorld()
	w.fallback = sequence(toolTurn("edit", "e1"), toolTurn("bash", "b1"), finalTurn("STATUS: completed"))
	w.execFn = func(in activities.ExecToolInput) activities.ExecToolResult {
		return activities.ExecToolResult{Name: "bash", OutputChars: 90000, NeedsSummary: in.Turn == 2}
	}
	res := runAgent(t, newEnv(t, w), agentInput())
	if len(w.summaries) != 1 {
		t.Fatalf("Summarize called %d times, want 1", len(w.summaries))
	}
	s := w.summaries[0]
	if s.Turn != 2 || s.Index != 0 || s.ToolName != "bash" || s.CallID != "call-0-b1" || s.Model != "m" {
		t.Errorf("summarize input = %+v", s)
	}
	if !res.Success || res.LLMCalls != 4 || res.Usage.PromptTokens != 3*100+7 {
		t.Errorf("success=%v llm calls=%d usage=%+v, want the summary counted", res.Success, res.LLMCalls, res.Usage)
	}
}

func TestSubAgentSwarmShareGoesToShareActivity(t *testing.T) {
	w := newWorld()
	w.fallback = sequence(toolTurn("edit", "e1"), toolTurn("swarm_share", "s1"), finalTurn("STATUS: completed"))
	res := runAgent(t, newEnv(t, w), agentInput())
	if len(w.shares) != 1 || len(w.execs) != 1 {
		t.Fatalf("shares=%d execs=%d, want 1 each", len(w.shares), len(w.execs))
	}
	if s := w.shares[0]; s.Turn != 2 || s.Index != 0 || s.ParentWorkflowID != testRunID || s.Ref.SubtaskID != agentID {
		t.Errorf("share input = %+v", s)
	}
	if !res.Success || res.ToolCalls != 2 {
		t.Errorf("success=%v tool calls=%d", res.Success, res.ToolCalls)
	}
}

func TestSubAgentActivityErrors(t *testing.T) {
	t.Run("start fails", func(t *testing.T) {
		w := newWorld()
		w.startErr = temporal.NewNonRetryableApplicationError("no such branch", "Git", nil)
		res := runAgent(t, newEnv(t, w), agentInput())
		if res.Success || res.ExitReason != workflows.ExitError || !strings.Contains(res.Error, "start subtask") {
			t.Errorf("result = %+v, want an error exit naming the start", res)
		}
		if len(w.steps) != 0 || len(w.commits) != 0 {
			t.Errorf("turns=%d commits=%d after a failed start", len(w.steps), len(w.commits))
		}
	})
	t.Run("model fails", func(t *testing.T) {
		w := newWorld()
		w.fallback = toolsThenDone(5)
		w.stepErr, w.failTurn = temporal.NewNonRetryableApplicationError("context length exceeded", "LLMBadRequest", nil), 2
		res := runAgent(t, newEnv(t, w), agentInput())
		if res.Success || res.ExitReason != workflows.ExitError || res.Status != activities.StatusFailed || !strings.Contains(res.Error, "context length exceeded") {
			t.Errorf("result = %+v, want a failed error exit", res)
		}
		if len(w.commits) != 1 || res.Commit == "" || res.Steps != 1 {
			t.Errorf("commits=%d commit=%q steps=%d: the first turn's work must be committed", len(w.commits), res.Commit, res.Steps)
		}
	})
}

// continueAsNew extracts the next run's input from a continue-as-new error.
func continueAsNew(t *testing.T, err error) workflows.SubAgentInput {
	t.Helper()
	next, can := nextRunInput[workflows.SubAgentInput](t, err)
	if can.WorkflowType.Name != workflows.SubAgentWorkflowName {
		t.Errorf("continues as %q", can.WorkflowType.Name)
	}
	if next.State == nil {
		t.Fatal("continue-as-new input carries no state")
	}
	return next
}

// nextRunInput decodes the next run's input from a continue-as-new error.
func nextRunInput[T any](t *testing.T, err error) (T, *workflow.ContinueAsNewError) {
	t.Helper()
	var next T
	var can *workflow.ContinueAsNewError
	if !errors.As(err, &can) {
		t.Fatalf("error = %v, want continue-as-new", err)
	}
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatalf("decode continue-as-new input: %v", err)
	}
	return next, can
}

func TestSubAgentContinueAsNew(t *testing.T) {
	w := newWorld()
	w.fallback = toolsThenDone(4)
	in := agentInput()
	in.ContinueAsNewEvery = 2
	env := newEnv(t, w)
	env.ExecuteWorkflow(workflows.SubAgentWorkflowName, in)
	next := continueAsNew(t, env.GetWorkflowError())

	st := next.State
	if st.Turn != 3 || st.Steps != 2 || st.ToolCalls != 2 || st.LLMCalls != 2 || st.Runs != 1 {
		t.Errorf("state = %+v, want turn 3, 2 steps, 2 tool calls, 2 llm calls, 1 run", st)
	}
	if st.Worktree != "/wt/01-a-a1" || st.Branch != in.Branch || st.BaseCommit != baseCommit || st.Deadline.IsZero() || st.StartedAt.IsZero() {
		t.Errorf("state refs = %+v", st)
	}
	if st.Usage != (activities.Usage{PromptTokens: 200, CompletionTokens: 20}) {
		t.Errorf("usage = %+v", st.Usage)
	}
	if next.Subtask.ID != agentID || next.MaxSteps != in.MaxSteps || next.ParentWorkflowID != testRunID {
		t.Errorf("next input lost fields: %+v", next)
	}

	// The next run resumes at turn 3 in the same worktree.
	w2 := newWorld()
	w2.fallback = toolsThenDone(4)
	next.ContinueAsNewEvery = 0
	res := runAgent(t, newEnv(t, w2), next)
	if len(w2.starts) != 0 {
		t.Error("the continued run created a new worktree")
	}
	if len(w2.steps) == 0 || w2.steps[0].Turn != 3 {
		t.Fatalf("continued run's turns = %+v, want to start at 3", w2.steps)
	}
	if !res.Success || res.Steps != 5 || res.ToolCalls != 4 || res.LLMCalls != 5 || res.ContinuedAsNew != 1 {
		t.Errorf("result = %+v, want 5 steps, 4 tool calls over both runs", res)
	}
	if w2.execs[0].Turn != 3 || w2.execs[0].Worktree != "/wt/01-a-a1" {
		t.Errorf("first tool of the continued run = %+v", w2.execs[0])
	}
}

func TestSubAgentContinueAsNewWhenSuggested(t *testing.T) {
	w := newWorld()
	env := newEnv(t, w)
	env.SetContinueAsNewSuggested(true)
	env.ExecuteWorkflow(workflows.SubAgentWorkflowName, agentInput())
	next := continueAsNew(t, env.GetWorkflowError())
	if next.State.Steps != 1 || next.State.Turn != 2 {
		t.Errorf("state = %+v, want one step done", next.State)
	}
}

// TestSubAgentStuckStateSurvivesContinueAsNew: the loop breaker counts
// repeats across runs.
func TestSubAgentStuckStateSurvivesContinueAsNew(t *testing.T) {
	w := newWorld()
	w.fallback = sequence(toolTurn("read", "read:x"))
	in := agentInput()
	in.ContinueAsNewEvery = 4
	env := newEnv(t, w)
	env.ExecuteWorkflow(workflows.SubAgentWorkflowName, in)
	next := continueAsNew(t, env.GetWorkflowError())
	if st := next.State; st.LastSig != "read:x" || st.Repeats != 4 || st.SameResults != 2 || st.Refused != 2 {
		t.Fatalf("state = %+v, want four repeats of read:x, two refused", next.State)
	}

	w2 := newWorld()
	w2.fallback = sequence(toolTurn("read", "read:x"))
	next.ContinueAsNewEvery = 0
	res := runAgent(t, newEnv(t, w2), next)
	if res.ExitReason != workflows.ExitStuck || len(w2.steps) != 2 || len(w2.execs) != 1 || refused(w2.execs) != 1 {
		t.Errorf("exit=%q turns=%d execs=%d, want one more refusal, then stuck on the second turn of the continued run", res.ExitReason, len(w2.steps), len(w2.execs))
	}
}
