package workflows_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"codeswarm/activities"
	"codeswarm/workflows"
)

// twoStagePlan: A and B are independent, C depends on both.
func twoStagePlan() *world {
	w := newWorld(subtask("01-a", 0), subtask("02-b", 0), subtask("03-c", 1, "01-a", "02-b"))
	w.scripts["01-a"] = toolsThenDone(1) // 2 steps, 1 tool call
	w.scripts["02-b"] = toolsThenDone(3) // 4 steps, 3 tool calls
	w.scripts["03-c"] = toolsThenDone(2) // 3 steps, 2 tool calls
	// Turns take workflow time, so every launched sub-agent has its worktree
	// before any finishes: concurrency counts are deterministic.
	w.stepDelay = time.Second
	return w
}

func TestSwarmRunsStagesInDependencyOrder(t *testing.T) {
	w := twoStagePlan()
	env := newEnv(t, w)
	res := runSwarm(t, env, swarmInput())

	startC := w.indexOf("start:03-c")
	if startC < 0 {
		t.Fatalf("03-c never started; log %v", w.log)
	}
	for _, dep := range []string{"merge:01-a", "merge:02-b"} {
		if i := w.indexOf(dep); i < 0 || i > startC {
			t.Errorf("%s at %d, want before start:03-c at %d; log %v", dep, i, startC, w.log)
		}
	}
	if w.mergeOverlap {
		t.Error("two merges ran at the same time")
	}
	if len(w.merges) != 3 {
		t.Fatalf("merges = %d, want 3", len(w.merges))
	}
	if w.maxActive != 2 {
		t.Errorf("max concurrently running sub-agents = %d, want 2 (A and B together)", w.maxActive)
	}
	// C starts from the integration head holding both dependencies, with their results.
	startIn := w.starts[slices.IndexFunc(w.starts, func(s activities.StartSubtaskInput) bool { return s.Subtask.ID == "03-c" })]
	for _, want := range []string{"did 01-a", "did 02-b"} {
		if !strings.Contains(startIn.DepContext, want) {
			t.Errorf("03-c dep context %q lacks %q", startIn.DepContext, want)
		}
	}
	if !strings.HasPrefix(w.starts[2].IntegrationBranch, "codeswarm/"+testRunID) {
		t.Errorf("integration branch = %q", w.starts[2].IntegrationBranch)
	}

	lastMerge := fmt.Sprintf("merge-3-%s", "03-c")
	if !res.Success || res.Error != "" {
		t.Fatalf("success=%v error=%q, want success", res.Success, res.Error)
	}
	if res.RunID != testRunID || res.BaseCommit != baseCommit || res.HeadCommit != lastMerge {
		t.Errorf("run_id=%q base=%q head=%q, want %q %q %q", res.RunID, res.BaseCommit, res.HeadCommit, testRunID, baseCommit, lastMerge)
	}
	if res.Branch != workflows.IntegrationBranch("codeswarm", testRunID) {
		t.Errorf("branch = %q", res.Branch)
	}

	wantSub := []struct {
		id         string
		stage      int
		deps       []string
		steps, tcs int
	}{
		{"01-a", 0, []string{}, 2, 1},
		{"02-b", 0, []string{}, 4, 3},
		{"03-c", 1, []string{"01-a", "02-b"}, 3, 2},
	}
	for i, want := range wantSub {
		got := res.SubtaskResults[i]
		if got.ID != want.id || got.Stage != want.stage || !slices.Equal(got.Dependencies, want.deps) {
			t.Errorf("subtask %d = %s stage %d deps %v, want %s stage %d deps %v", i, got.ID, got.Stage, got.Dependencies, want.id, want.stage, want.deps)
		}
		if !got.Success || got.Status != activities.StatusCompleted || got.Merge != activities.MergeMerged || got.ExitReason != workflows.ExitCompleted {
			t.Errorf("%s: success=%v status=%q merge=%q exit=%q", got.ID, got.Success, got.Status, got.Merge, got.ExitReason)
		}
		if got.Steps != want.steps || got.ToolCalls != want.tcs || got.LLMCalls != want.steps {
			t.Errorf("%s: steps=%d tool_calls=%d llm_calls=%d, want %d %d %d", got.ID, got.Steps, got.ToolCalls, got.LLMCalls, want.steps, want.tcs, want.steps)
		}
		if !slices.Equal(got.FilesChanged, []string{want.id + ".go"}) || got.Conflicts == nil || len(got.Conflicts) != 0 {
			t.Errorf("%s: files_changed=%v conflicts=%#v", got.ID, got.FilesChanged, got.Conflicts)
		}
		if got.Commit != commitOf("/wt/"+want.id+"-a1") || got.Branch != workflows.SubtaskBranch("codeswarm", testRunID, want.id, 1) || !strings.HasPrefix(got.MergeCommit, "merge-") {
			t.Errorf("%s: commit=%q branch=%q merge_commit=%q", got.ID, got.Commit, got.Branch, got.MergeCommit)
		}
	}

	st := res.Stats
	if st.SubagentsSpawned != 3 || st.SubagentsCompleted != 3 || st.SubagentsFailed != 0 {
		t.Errorf("spawned/completed/failed = %d/%d/%d, want 3/3/0", st.SubagentsSpawned, st.SubagentsCompleted, st.SubagentsFailed)
	}
	if st.TotalToolCalls != 6 || st.TotalLLMCalls != 1+9 {
		t.Errorf("tool calls=%d llm calls=%d, want 6 and 10 (one plan + nine turns)", st.TotalToolCalls, st.TotalLLMCalls)
	}
	if st.PromptTokens != planUsage.PromptTokens+9*stepUsage.PromptTokens || st.CompletionTokens != planUsage.CompletionTokens+9*stepUsage.CompletionTokens {
		t.Errorf("tokens = %d/%d", st.PromptTokens, st.CompletionTokens)
	}
	if st.CriticalPathLength != 4+3 {
		t.Errorf("critical path = %d, want 7 (B then C)", st.CriticalPathLength)
	}
	wantStages := []activities.StageStats{{Stage: 0, SubagentCount: 2, MaxSteps: 4, TotalSteps: 6}, {Stage: 1, SubagentCount: 1, MaxSteps: 3, TotalSteps: 3}}
	if len(st.Stages) != len(wantStages) {
		t.Fatalf("stages = %+v, want %+v", st.Stages, wantStages)
	}
	for i, want := range wantStages {
		got := st.Stages[i]
		got.ExecutionTimeMs = 0
		if got != want {
			t.Errorf("stage %d = %+v, want %+v", i, got, want)
		}
	}

	fin := w.finishes[0]
	// The merged worktrees, all in one directory, go by name: 10,000
	// full paths were about 1 MB of input.
	if fin.IntegrationHead != lastMerge || fin.Apply || len(fin.RemoveWorktrees) != 0 || fin.WorktreesUnder != "/wt" ||
		!slices.Equal(finishRemoves(fin), []string{"/wt/01-a-a1", "/wt/02-b-a1", "/wt/03-c-a1"}) {
		t.Errorf("finish input = %+v", fin)
	}
}

// TestSwarmResultJSONFields pins the result JSON contract of DESIGN.md.
func TestSwarmResultJSONFields(t *testing.T) {
	w := twoStagePlan()
	res := runSwarm(t, newEnv(t, w), swarmInput())
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"run_id", "success", "branch", "base_commit", "head_commit", "result", "error", "subtask_results", "stats"} {
		if _, ok := m[k]; !ok {
			t.Errorf("result JSON lacks %q", k)
		}
	}
	sub := m["subtask_results"].([]any)[0].(map[string]any)
	for _, k := range []string{"id", "name", "stage", "dependencies", "success", "status", "result", "steps", "tool_calls", "execution_time_ms", "branch", "commit", "files_changed", "merge", "conflicts"} {
		if _, ok := sub[k]; !ok {
			t.Errorf("subtask JSON lacks %q", k)
		}
	}
	if c, ok := sub["conflicts"].([]any); !ok || len(c) != 0 {
		t.Errorf("conflicts = %#v, want []", sub["conflicts"])
	}
	stats := m["stats"].(map[string]any)
	for _, k := range []string{"subagents_spawned", "subagents_completed", "subagents_failed", "total_tool_calls", "total_llm_calls", "prompt_tokens", "completion_tokens", "critical_path_length", "execution_time_ms", "sequential_time_estimate_ms", "speedup_factor", "stages"} {
		if _, ok := stats[k]; !ok {
			t.Errorf("stats JSON lacks %q", k)
		}
	}
	if !strings.Contains(res.Result, "=== Subtask 3 (task 03-c) ===") {
		t.Errorf("aggregate result = %q", res.Result)
	}
}

// A host without the sandbox is said so in the result and in the memo the
// Web UI shows; with the sandbox on, the memo is left alone.
func TestSwarmSaysWhenSandboxIsOff(t *testing.T) {
	for _, mode := range []string{"on", "off"} {
		t.Run(mode, func(t *testing.T) {
			w := twoStagePlan()
			w.sandbox = mode
			env := newEnv(t, w)
			memo := map[string]interface{}{} // upserts merge, as the server does
			env.OnUpsertMemo(mock.Anything).Run(func(args mock.Arguments) {
				maps.Copy(memo, args.Get(0).(map[string]interface{}))
			}).Return(nil).Maybe()
			res := runSwarm(t, env, swarmInput())
			if res.Sandbox != mode {
				t.Errorf("result sandbox = %q, want %q", res.Sandbox, mode)
			}
			note, _ := memo["sandbox"].(string)
			if (mode == "off") != strings.Contains(note, "NOT confined") {
				t.Errorf("sandbox %s: memo = %v", mode, memo)
			}
		})
	}
}

func TestSwarmMaxConcurrent(t *testing.T) {
	for _, limit := range []int{1, 2, 3} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			w := newWorld(subtask("01-a", 0), subtask("02-b", 0), subtask("03-c", 0), subtask("04-d", 0), subtask("05-e", 0))
			w.fallback = toolsThenDone(2)
			w.stepDelay = time.Second
			in := swarmInput()
			in.Limits.MaxConcurrent = limit
			res := runSwarm(t, newEnv(t, w), in)
			if !res.Success {
				t.Fatalf("run failed: %s", res.Error)
			}
			if w.maxActive != limit {
				t.Errorf("at most %d sub-agents ran at once, want exactly the cap %d", w.maxActive, limit)
			}
			if w.count("start:") != 5 || w.count("merge:") != 5 {
				t.Errorf("starts=%d merges=%d, want 5 each", w.count("start:"), w.count("merge:"))
			}
		})
	}
}

func TestSwarmPriorityOrdersReadySubtasks(t *testing.T) {
	w := newWorld(subtask("01-a", 0), subtask("02-b", 0), subtask("03-c", 0))
	w.subtasks[2].Priority = 5
	in := swarmInput()
	in.Limits.MaxConcurrent = 1
	runSwarm(t, newEnv(t, w), in)
	if got := w.starts[0].Subtask.ID; got != "03-c" {
		t.Errorf("first started %s, want the high-priority 03-c", got)
	}
}

func TestSwarmFailureBlocksDependents(t *testing.T) {
	// A fails; B needs A, C needs B (transitively blocked); D is independent.
	w := newWorld(subtask("01-a", 0), subtask("02-b", 1, "01-a"), subtask("03-c", 2, "02-b"), subtask("04-d", 0))
	w.scripts["01-a"] = sequence(finalTurn("cannot do it\nSTATUS: blocked"))
	res := runSwarm(t, newEnv(t, w), swarmInput())

	if res.Success {
		t.Fatal("run succeeded with a failed subtask")
	}
	for _, id := range []string{"02-b", "03-c"} {
		r := subtaskResult(t, res, id)
		if r.Status != activities.StatusBlocked || r.Success || r.Merge != activities.MergeSkipped {
			t.Errorf("%s: status=%q success=%v merge=%q, want blocked", id, r.Status, r.Success, r.Merge)
		}
		if w.indexOf("start:"+id) >= 0 {
			t.Errorf("%s was started", id)
		}
		if !strings.Contains(res.Error, id+" (blocked)") {
			t.Errorf("error %q does not name %s", res.Error, id)
		}
		if r.FilesChanged == nil || r.Conflicts == nil || len(r.Dependencies) != 1 {
			t.Errorf("%s: nil slices or lost deps in %+v", id, r)
		}
	}
	if r := subtaskResult(t, res, "01-a"); r.Status != activities.StatusBlocked || r.Merge != activities.MergeSkipped || r.Error == "" {
		t.Errorf("01-a = %+v, want its own reported status blocked, not merged", r)
	}
	if !strings.Contains(subtaskResult(t, res, "02-b").Error, "01-a") {
		t.Error("02-b's error does not name the dependency that failed")
	}
	if r := subtaskResult(t, res, "04-d"); !r.Success || r.Merge != activities.MergeMerged {
		t.Errorf("independent 04-d = %+v, want merged", r)
	}
	if !strings.Contains(res.Error, "3 of 4 subtasks did not succeed") {
		t.Errorf("error = %q", res.Error)
	}
	if st := res.Stats; st.SubagentsSpawned != 2 || st.SubagentsFailed != 1 || st.SubagentsCompleted != 1 {
		t.Errorf("spawned/completed/failed = %d/%d/%d, want 2/1/1", st.SubagentsSpawned, st.SubagentsCompleted, st.SubagentsFailed)
	}
}

func TestSwarmAutoMergeOff(t *testing.T) {
	w := twoStagePlan()
	in := swarmInput()
	in.AutoMerge = false
	res := runSwarm(t, newEnv(t, w), in)
	if len(w.merges) != 0 {
		t.Errorf("%d merges with auto-merge off", len(w.merges))
	}
	if !res.Success || res.HeadCommit != baseCommit {
		t.Errorf("success=%v head=%q", res.Success, res.HeadCommit)
	}
	for _, r := range res.SubtaskResults {
		if r.Merge != activities.MergeSkipped {
			t.Errorf("%s merge = %q, want skipped", r.ID, r.Merge)
		}
	}
}

// TestSwarmChildContinueAsNew runs sub-agents that continue as new every two
// steps: the parent still sees whole results.
func TestSwarmChildContinueAsNew(t *testing.T) {
	w := twoStagePlan()
	in := swarmInput()
	in.ContinueAsNewEvery = 2
	res := runSwarm(t, newEnv(t, w), in)
	if !res.Success {
		t.Fatalf("run failed: %s", res.Error)
	}
	if r := subtaskResult(t, res, "02-b"); r.Steps != 4 || r.ToolCalls != 3 {
		t.Errorf("02-b steps=%d tool calls=%d after continue-as-new, want 4 and 3", r.Steps, r.ToolCalls)
	}
	if w.count("start:") != 3 {
		t.Errorf("worktrees created %d times, want 3 (continued runs reuse theirs)", w.count("start:"))
	}
}

// TestActivitiesRunOnTheirQueues: everything that reads a run's transcripts
// or worktrees (model calls included) runs on the run's host; each model call
// first takes a permit from the shared LLM queue (one rate limit for all
// workers); sub-agent workflows run on the host too.
func TestActivitiesRunOnTheirQueues(t *testing.T) {
	w := twoStagePlan()
	w.scripts["01-a"] = sequence(toolTurn("bash", "b"), toolTurn("swarm_share", "s"), finalTurn("STATUS: completed"))
	w.execFn = func(activities.ExecToolInput) activities.ExecToolResult {
		return activities.ExecToolResult{Name: "bash", NeedsSummary: true}
	}
	env := newEnv(t, w)
	var mu sync.Mutex
	queues := map[string]map[string]bool{}
	counts := map[string]int{}
	started := func(info *activity.Info) {
		mu.Lock()
		defer mu.Unlock()
		counts[info.ActivityType.Name]++
		if queues[info.ActivityType.Name] == nil {
			queues[info.ActivityType.Name] = map[string]bool{}
		}
		queues[info.ActivityType.Name][info.TaskQueue] = true
	}
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) { started(info) })
	// A local activity runs in the worker of its workflow task: on the
	// host's queue for a sub-agent.
	locals := map[string]bool{}
	env.SetOnLocalActivityStartedListener(func(info *activity.Info, _ context.Context, _ []any) {
		started(info)
		mu.Lock()
		locals[info.ActivityType.Name] = true
		mu.Unlock()
	})
	in := swarmInput()
	in.VerifyCommand = "make test"
	runSwarm(t, env, in)
	// The run's sub-agents start and commit their worktrees in local
	// activities (SubAgentInput.LocalGit).
	if !locals["StartSubtask"] || !locals["CommitSubtask"] {
		t.Errorf("local activities %v, want StartSubtask and CommitSubtask among them", locals)
	}

	if len(w.shares) != 1 || w.shares[0].ParentWorkflowID != testRunID {
		t.Errorf("swarm_share calls = %+v, want one addressed to the run", w.shares)
	}
	const main, llm = "codeswarm", "codeswarm" + activities.LLMQueueSuffix
	want := map[string]string{
		"PrepareRun": main, "LLMPermit": llm, "Plan": wsQueue, "AgentStep": wsQueue, "Summarize": wsQueue, "SwarmShare": wsQueue,
		"StartSubtask": wsQueue, "ExecTool": wsQueue, "CommitSubtask": wsQueue, "MergeSubtask": wsQueue,
		"Verify": wsQueue, "FinishRun": wsQueue,
	}
	for name, queue := range want {
		if got := queues[name]; len(got) != 1 || !got[queue] {
			t.Errorf("%s ran on %v, want only %s", name, got, queue)
		}
	}
	if calls := counts["Plan"] + counts["AgentStep"] + counts["Summarize"]; counts["LLMPermit"] != calls || calls == 0 {
		t.Errorf("%d permits for %d model calls, want one each", counts["LLMPermit"], calls)
	}
}

// TestSwarmChildWorkflowFails mocks the sub-agents: a child that fails as a
// workflow (not with a result) counts as a failed subtask.
func TestSwarmChildWorkflowFails(t *testing.T) {
	w := newWorld(subtask("01-a", 0), subtask("02-b", 0), subtask("03-c", 1, "01-a"), subtask("04-d", 0))
	env := newEnv(t, w)
	env.OnWorkflow(workflows.SubAgentWorkflow, mock.Anything, mock.Anything).Return(
		func(_ workflow.Context, in workflows.SubAgentInput) (workflows.SubAgentResult, error) {
			if in.Subtask.ID == "01-a" {
				return workflows.SubAgentResult{}, errors.New("worker lost the worktree")
			}
			if in.Subtask.ID == "04-d" {
				return workflows.SubAgentResult{}, temporal.NewCanceledError()
			}
			return workflows.SubAgentResult{
				SubtaskID: in.Subtask.ID, Attempt: in.Attempt, Success: true, Status: activities.StatusCompleted, ExitReason: workflows.ExitCompleted,
				Result: "ok", AgentProgress: workflows.AgentProgress{Steps: 3, ToolCalls: 2, LLMCalls: 3, Branch: in.Branch},
				Commit: "c-" + in.Subtask.ID, Changed: true, FilesChanged: []string{"x.go"},
			}, nil
		})
	res := runSwarm(t, env, swarmInput())
	ra := subtaskResult(t, res, "01-a")
	if ra.Success || ra.Status != activities.StatusFailed || !strings.Contains(ra.Error, "worker lost the worktree") {
		t.Errorf("01-a = %+v, want failed with the child's error", ra)
	}
	if d := subtaskResult(t, res, "04-d"); d.Status != activities.StatusCancelled {
		t.Errorf("04-d status = %q, want cancelled", d.Status)
	}
	if c := subtaskResult(t, res, "03-c"); c.Status != activities.StatusBlocked {
		t.Errorf("03-c status = %q, want blocked", c.Status)
	}
	if b := subtaskResult(t, res, "02-b"); !b.Success || b.Merge != activities.MergeMerged || len(w.merges) != 1 || w.merges[0].Commit != "c-02-b" {
		t.Errorf("02-b = %+v, merges %+v", b, w.merges)
	}
	if res.Stats.TotalLLMCalls != 1+3 || res.Stats.SubagentsFailed != 2 {
		t.Errorf("stats = %+v", res.Stats)
	}
}

// TestPermitsOnlyWhileLimited: a model answer that says no rate limit is in
// force lets the next turn call the model without a permit; one that says a
// limit is in force (or the first turn, before any answer) takes one.
func TestPermitsOnlyWhileLimited(t *testing.T) {
	w := newWorld(subtask("01-a", 0))
	noRateLimit := func(r activities.AgentStepResult) activities.AgentStepResult { r.NoRateLimit = true; return r }
	// Turn 1 (permit: first) says noRateLimit, turn 2 (no permit) says paced,
	// turn 3 (permit) says noRateLimit, turn 4 (no permit) is final.
	w.scripts["01-a"] = sequence(noRateLimit(toolTurn("read", "r1")), toolTurn("read", "r2"), noRateLimit(toolTurn("read", "r3")), finalTurn("STATUS: completed"))
	env := newEnv(t, w)
	var mu sync.Mutex
	var order []string
	var execs []bool // local or not, per ExecTool
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		mu.Lock()
		defer mu.Unlock()
		if info.ActivityType.Name == "ExecTool" {
			execs = append(execs, false)
		}
		if n := info.ActivityType.Name; n == "LLMPermit" || n == "AgentStep" {
			order = append(order, n)
		}
	})
	env.SetOnLocalActivityStartedListener(func(info *activity.Info, _ context.Context, _ []any) {
		mu.Lock()
		defer mu.Unlock()
		if info.ActivityType.Name == "ExecTool" {
			execs = append(execs, true)
		}
		if info.ActivityType.Name == "AgentStep" {
			order = append(order, "AgentStep")
		}
	})
	res := runSwarm(t, env, swarmInput())
	if !res.Success {
		t.Fatalf("run failed: %s", res.Error)
	}
	// The planner's call comes first, always with a permit.
	want := "LLMPermit AgentStep AgentStep LLMPermit AgentStep AgentStep"
	if got := strings.Join(order[1:], " "); order[0] != "LLMPermit" || got != want {
		t.Errorf("model activities %v, want the planner's permit, then %s", order, want)
	}
	// Reads run as local activities in the sub-agent's (host's) worker.
	if len(execs) != 3 || slices.Contains(execs, false) {
		t.Errorf("ExecTool of 3 reads ran local: %v, want 3 local activities", execs)
	}
}

// TestRateLimitedCallRetriesAfterAPermit: a model call answered 429 is not
// retried by Temporal (the retry would skip the cluster's rate limit) but
// called again after a new permit, even while the last answer said no limit
// was in force.
func TestRateLimitedCallRetriesAfterAPermit(t *testing.T) {
	w := newWorld(subtask("01-a", 0))
	noRateLimit := func(r activities.AgentStepResult) activities.AgentStepResult { r.NoRateLimit = true; return r }
	w.scripts["01-a"] = sequence(noRateLimit(toolTurn("read", "r1")), finalTurn("STATUS: completed"))
	w.stepErr = temporal.NewApplicationErrorWithOptions("429", activities.ErrTypeRateLimit, temporal.ApplicationErrorOptions{NextRetryDelay: time.Second})
	w.failTurn, w.stepErrTimes = 2, 2
	env := newEnv(t, w)
	var mu sync.Mutex
	var order []string
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		mu.Lock()
		defer mu.Unlock()
		if n := info.ActivityType.Name; n == "LLMPermit" || n == "AgentStep" {
			order = append(order, fmt.Sprintf("%s#%d", n, info.Attempt))
		}
	})
	env.SetOnLocalActivityStartedListener(func(info *activity.Info, _ context.Context, _ []any) {
		mu.Lock()
		defer mu.Unlock()
		if info.ActivityType.Name == "AgentStep" {
			order = append(order, fmt.Sprintf("AgentStep#%d", info.Attempt))
		}
	})
	res := runSwarm(t, env, swarmInput())
	if !res.Success {
		t.Fatalf("run failed: %s", res.Error)
	}
	want := "LLMPermit#1 AgentStep#1 AgentStep#1 LLMPermit#1 AgentStep#1 LLMPermit#1 AgentStep#1"
	if got := strings.Join(order[1:], " "); got != want {
		t.Errorf("model activities %v, want the planner's permit, then %s", order, want)
	}
}
