package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"codeswarm/activities"
	"codeswarm/workflows"
)

// a names the activities for OnActivity, as the workflows do.
var a *activities.Activities

const (
	testRunID  = "swarm-test-run"
	baseCommit = "base000000000000"
	repoRoot   = "/repo"
	wsQueue    = "codeswarm-ws-host1"
)

// stepUsage is what every scripted model turn costs.
var stepUsage = activities.Usage{PromptTokens: 100, CompletionTokens: 10}

// planUsage is what every planner call costs.
var planUsage = activities.Usage{PromptTokens: 50, CompletionTokens: 20}

// script is a fake model for one subtask: it answers a turn.
type script func(in activities.AgentStepInput) activities.AgentStepResult

// toolTurn answers with tool calls named name, one per signature.
func toolTurn(name string, sigs ...string) activities.AgentStepResult {
	r := activities.AgentStepResult{Usage: stepUsage}
	for i, sig := range sigs {
		r.ToolCalls = append(r.ToolCalls, activities.ToolCallInfo{ID: fmt.Sprintf("call-%d-%s", i, sig), Name: name, Signature: sig})
	}
	return r
}

// finalTurn answers without tool calls.
func finalTurn(text string) activities.AgentStepResult {
	return activities.AgentStepResult{Final: text, Usage: stepUsage}
}

// toolsThenDone calls one distinct tool per turn for n turns, then reports
// completion: n+1 steps, n tool calls.
func toolsThenDone(n int) script {
	return func(in activities.AgentStepInput) activities.AgentStepResult {
		if in.Turn <= n {
			return toolTurn("edit", fmt.Sprintf("edit:%s:%d", in.Ref.SubtaskID, in.Turn))
		}
		return finalTurn("did " + in.Ref.SubtaskID + "\nSTATUS: completed")
	}
}

// sequence answers turn i with turns[i-1], and repeats the last one after.
func sequence(turns ...activities.AgentStepResult) script {
	return func(in activities.AgentStepInput) activities.AgentStepResult {
		return turns[min(in.Turn, len(turns))-1]
	}
}

// world is a fake outside world: a scripted model per subtask, a fake git
// repository and tool sandbox. Its methods are the activity mocks; they run on
// activity goroutines, so every field is guarded by mu.
type world struct {
	mu sync.Mutex

	subtasks []activities.Subtask
	scripts  map[string]script
	fallback script

	planFn     func(in activities.PlanInput, n int) (activities.PlanResult, error)
	commitFn   func(in activities.CommitSubtaskInput) (activities.CommitSubtaskResult, error)
	mergeFn    func(in activities.MergeSubtaskInput) (activities.MergeSubtaskResult, bool)
	verifyFn   func(in activities.VerifyInput, n int) activities.VerifyReport
	execFn     func(in activities.ExecToolInput) activities.ExecToolResult
	startErr   error
	prepareErr error
	mergeErr   error
	// sandbox is what PrepareRun reports ("" is an older worker: on).
	sandbox string
	// stepErr is returned by the model at turn failTurn.
	stepErr error
	// stepErrTimes > 0 returns stepErr only that many times.
	stepErrTimes int
	failTurn     int
	// stepDelay is how long each model turn takes on the workflow clock.
	stepDelay time.Duration
	// mergeDelay is how long a single MergeSubtask takes on the workflow clock.
	mergeDelay time.Duration

	head      string
	log       []string
	plans     []activities.PlanInput
	starts    []activities.StartSubtaskInput
	steps     []activities.AgentStepInput
	execs     []activities.ExecToolInput
	summaries []activities.SummarizeInput
	shares    []activities.SwarmShareInput
	commits   []activities.CommitSubtaskInput
	merges    []activities.MergeSubtaskInput
	batches   []activities.MergeSubtasksInput
	verifies  []activities.VerifyInput
	finishes  []activities.FinishRunInput
	children  []workflows.SubAgentInput
	childIDs  []string

	// hostEvents are what successive WatchHost calls report, each after its
	// delay on the workflow clock; after them the host never changes.
	hostEvents []hostEvent
	watches    []activities.WatchHostInput
	liveHosts  map[string]bool // queues CheckHost finds polling
	terminated []string
	saved      []activities.SaveMovedWorkInput // SaveMovedWork calls, with the log line "save:<subtask>"
	awaits     []activities.AwaitChildrenInput
	autoMove   time.Duration // workspace.auto_move_after of the preparing worker
	aliveHosts []string      // what AliveHosts reports
	aliveCalls int

	active, maxActive int
	merging           int
	mergeOverlap      bool

	// noRateLimit is what StartSubtask and PrepareRun report: no LLM rate
	// limit in force.
	noRateLimit bool

	// cacheHits are the result cache's hits StartSubtask reports, by
	// subtask ID, unless the input says NoCache; every start gets the key
	// "key:<subtask>".
	cacheHits map[string]*activities.CachedAgent

	// deferLocalStarts: a StartSubtask run as a local activity finds no
	// worktree at hand and answers Deferred.
	deferLocalStarts bool
	// treeFiles is the base tree's size PrepareRun reports (newWorld: 1).
	treeFiles int
}

func newWorld(subtasks ...activities.Subtask) *world {
	return &world{subtasks: subtasks, scripts: map[string]script{}, fallback: toolsThenDone(1), head: baseCommit, treeFiles: 1}
}

// subtask builds a plan entry the way the planner activity returns it.
func subtask(id string, stage int, deps ...string) activities.Subtask {
	return activities.Subtask{ID: id, Name: "task " + id, Instruction: "do " + id, Dependencies: orNil(deps), NeedsWorktree: true, Stage: stage}
}

func orNil(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}

func (w *world) record(entry string) {
	w.log = append(w.log, entry)
}

// indexOf is the position of entry in the log, or -1.
func (w *world) indexOf(entry string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Index(w.log, entry)
}

func (w *world) count(prefix string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, e := range w.log {
		if strings.HasPrefix(e, prefix) {
			n++
		}
	}
	return n
}

func (w *world) prepareRun(_ context.Context, in activities.PrepareRunInput) (activities.PrepareRunResult, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.record("prepare")
	if w.prepareErr != nil {
		return activities.PrepareRunResult{}, w.prepareErr
	}
	return activities.PrepareRunResult{RepoRoot: repoRoot, BaseCommit: baseCommit, BaseBranch: "main", WorkspaceQueue: wsQueue, RepoListing: "main.go", Sandbox: w.sandbox, AutoMoveAfter: w.autoMove, NoRateLimit: w.noRateLimit, TreeFiles: w.treeFiles}, nil
}

func (w *world) plan(_ context.Context, in activities.PlanInput) (activities.PlanResult, error) {
	w.mu.Lock()
	w.plans = append(w.plans, in)
	n := len(w.plans)
	w.record("plan")
	fn, subtasks := w.planFn, w.subtasks
	w.mu.Unlock()
	if fn != nil {
		return fn(in, n)
	}
	return activities.PlanResult{Subtasks: subtasks, Usage: planUsage}, nil
}

// finishRemoves is every worktree a FinishRun input names for removal.
func finishRemoves(in activities.FinishRunInput) []string {
	out := slices.Clone(in.RemoveWorktrees)
	for _, n := range in.RemoveNames {
		out = append(out, path.Join(in.WorktreesUnder, n))
	}
	return out
}

func worktreeOf(ref activities.ConvRef) string {
	return fmt.Sprintf("/wt/%s-a%d", ref.SubtaskID, ref.Attempt)
}

func (w *world) startSubtask(ctx context.Context, in activities.StartSubtaskInput) (activities.StartSubtaskResult, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.deferLocalStarts && activity.GetInfo(ctx).IsLocalActivity {
		w.record("start-deferred:" + in.Subtask.ID)
		return activities.StartSubtaskResult{Deferred: true}, nil
	}
	w.starts = append(w.starts, in)
	w.record("start:" + in.Subtask.ID)
	if w.startErr != nil {
		return activities.StartSubtaskResult{}, w.startErr
	}
	w.active++
	w.maxActive = max(w.maxActive, w.active)
	res := activities.StartSubtaskResult{Worktree: worktreeOf(in.Ref), Branch: in.Branch, BaseCommit: w.head, NoRateLimit: w.noRateLimit}
	if w.cacheHits != nil {
		res.CacheKey = "key:" + in.Subtask.ID
		if hit := w.cacheHits[in.Subtask.ID]; hit != nil && !in.NoCache {
			res.Cached = hit
		}
	}
	return res, nil
}

func (w *world) agentStep(ctx context.Context, in activities.AgentStepInput) (activities.AgentStepResult, error) {
	w.mu.Lock()
	if slices.Contains(w.terminated, activity.GetInfo(ctx).WorkflowExecution.ID) {
		// The test environment does not end a terminated child: it stops
		// at its next model call, as a real one would have ended.
		w.mu.Unlock()
		return activities.AgentStepResult{}, temporal.NewNonRetryableApplicationError("terminated", "test.terminated", nil)
	}
	w.steps = append(w.steps, in)
	s, ok := w.scripts[in.Ref.SubtaskID]
	if !ok {
		s = w.fallback
	}
	fail, err := w.stepErr != nil && in.Turn == w.failTurn, w.stepErr
	if fail && w.stepErrTimes > 0 {
		w.stepErrTimes--
		if w.stepErrTimes == 0 {
			w.stepErr = nil
		}
	}
	w.mu.Unlock()
	if fail {
		return activities.AgentStepResult{}, err
	}
	return s(in), nil
}

func (w *world) execTool(_ context.Context, in activities.ExecToolInput) (activities.ExecToolResult, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.execs = append(w.execs, in)
	if w.execFn != nil {
		return w.execFn(in), nil
	}
	return activities.ExecToolResult{Name: "edit", OutputChars: 10}, nil
}

func (w *world) summarize(_ context.Context, in activities.SummarizeInput) (activities.SummarizeResult, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.summaries = append(w.summaries, in)
	return activities.SummarizeResult{Summarized: true, Chars: 200, Usage: activities.Usage{PromptTokens: 7, CompletionTokens: 3}}, nil
}

func (w *world) swarmShare(_ context.Context, in activities.SwarmShareInput) (activities.SwarmShareResult, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.shares = append(w.shares, in)
	return activities.SwarmShareResult{Action: "list"}, nil
}

func commitOf(worktree string) string { return "commit:" + worktree }

func (w *world) commitSubtask(_ context.Context, in activities.CommitSubtaskInput) (activities.CommitSubtaskResult, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.commits = append(w.commits, in)
	w.record("commit:" + in.SubtaskID)
	w.active--
	if w.commitFn != nil {
		return w.commitFn(in)
	}
	return activities.CommitSubtaskResult{Commit: commitOf(in.Worktree), Changed: true, FilesChanged: []string{in.SubtaskID + ".go"}}, nil
}

// mergeSubtask merges onto the fake integration head. It holds the merge open
// for a moment (real time), so two merges issued at once would overlap.
func (w *world) mergeSubtask(_ context.Context, in activities.MergeSubtaskInput) (activities.MergeSubtaskResult, error) {
	w.mu.Lock()
	w.merging++
	w.mergeOverlap = w.mergeOverlap || w.merging > 1
	w.mu.Unlock()
	time.Sleep(5 * time.Millisecond)

	w.mu.Lock()
	defer w.mu.Unlock()
	w.merging--
	w.merges = append(w.merges, in)
	if w.mergeErr != nil {
		return activities.MergeSubtaskResult{}, w.mergeErr
	}
	if w.mergeFn != nil {
		if res, ok := w.mergeFn(in); ok {
			w.record("merge-" + res.Status + ":" + in.SubtaskID)
			return res, nil
		}
	}
	w.head = fmt.Sprintf("merge-%d-%s", len(w.merges), in.SubtaskID)
	w.record("merge:" + in.SubtaskID)
	return activities.MergeSubtaskResult{Status: activities.MergeMerged, Commit: w.head, FilesChanged: []string{in.SubtaskID + ".go"}}, nil
}

// mergeSubtasks merges a batch item by item, as the real activity does,
// through mergeSubtask, so merges and mergeFn see every item.
func (w *world) mergeSubtasks(ctx context.Context, in activities.MergeSubtasksInput) (activities.MergeSubtasksResult, error) {
	w.mu.Lock()
	w.batches = append(w.batches, in)
	w.mu.Unlock()
	var out activities.MergeSubtasksResult
	for _, item := range in.Items {
		item.RunID, item.RepoPath, item.IntegrationBranch = in.RunID, in.RepoPath, in.IntegrationBranch
		res, err := w.mergeSubtask(ctx, item)
		if err != nil {
			return activities.MergeSubtasksResult{}, err
		}
		out.Results = append(out.Results, res)
	}
	return out, nil
}

func (w *world) verify(_ context.Context, in activities.VerifyInput) (activities.VerifyReport, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.verifies = append(w.verifies, in)
	w.record("verify:" + in.Commit)
	if w.verifyFn != nil {
		return w.verifyFn(in, len(w.verifies)), nil
	}
	return activities.VerifyReport{Command: in.Command, Commit: in.Commit, OK: true}, nil
}

func (w *world) finishRun(_ context.Context, in activities.FinishRunInput) (activities.FinishRunResult, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.finishes = append(w.finishes, in)
	w.record("finish")
	return activities.FinishRunResult{Applied: in.Apply}, nil
}

// hostEvent is one change of the run's host that WatchHost reports.
type hostEvent struct {
	after time.Duration
	alive bool
	seen  time.Time
}

// watchDelay is how long the next WatchHost call takes on the workflow clock.
func (w *world) watchDelay() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := len(w.watches); n < len(w.hostEvents) {
		return w.hostEvents[n].after
	}
	return 1000 * time.Hour
}

func (w *world) watchHost(_ context.Context, in activities.WatchHostInput) (activities.HostStatus, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(w.watches)
	w.watches = append(w.watches, in)
	if n < len(w.hostEvents) {
		ev := w.hostEvents[n]
		w.record(fmt.Sprintf("host-alive:%v", ev.alive))
		return activities.HostStatus{Queue: in.Queue, Alive: ev.alive, LastSeen: ev.seen}, nil
	}
	return activities.HostStatus{Queue: in.Queue, Alive: in.Alive}, nil
}

func (w *world) checkHost(_ context.Context, in activities.HostStatusInput) (activities.HostStatus, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return activities.HostStatus{Queue: in.Queue, Alive: w.liveHosts[in.Queue]}, nil
}

func (w *world) listAliveHosts(_ context.Context, _ activities.AliveHostsInput) (activities.AliveHostsResult, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.aliveCalls++
	return activities.AliveHostsResult{Hosts: w.aliveHosts}, nil
}

func (w *world) terminateChild(_ context.Context, in activities.TerminateChildInput) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.terminated = append(w.terminated, in.WorkflowID)
	w.log = append(w.log, "terminate:"+in.WorkflowID)
	return nil
}

// saveMovedWork records the save and reports two files committed.
func (w *world) saveMovedWork(ctx context.Context, in activities.SaveMovedWorkInput) (activities.SaveMovedWorkResult, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.saved = append(w.saved, in)
	w.log = append(w.log, "save:"+in.SubtaskID+"@"+activity.GetInfo(ctx).TaskQueue)
	return activities.SaveMovedWorkResult{Commit: "saved-" + in.SubtaskID, Changed: true, FilesChanged: []string{"a.go", "b.go"}}, nil
}

// awaitChildren records what a continued run waits for; the test signals
// the children's ends itself.
func (w *world) awaitChildren(_ context.Context, in activities.AwaitChildrenInput) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.awaits = append(w.awaits, in)
	return nil
}

// quietLogger keeps test output readable.
func quietLogger() log.Logger {
	return log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// newEnv builds a test environment with both workflows registered by name and
// every activity mocked by w.
func newEnv(t *testing.T, w *world) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var ts testsuite.WorkflowTestSuite
	ts.SetLogger(quietLogger())
	env := ts.NewTestWorkflowEnvironment()
	env.SetTestTimeout(30 * time.Second)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: testRunID, TaskQueue: "codeswarm"})
	env.RegisterWorkflowWithOptions(workflows.SwarmWorkflow, workflow.RegisterOptions{Name: workflows.SwarmWorkflowName})
	env.RegisterWorkflowWithOptions(workflows.SubAgentWorkflow, workflow.RegisterOptions{Name: workflows.SubAgentWorkflowName})
	env.RegisterActivity(&activities.Activities{})

	env.OnActivity(a.PrepareRun, mock.Anything, mock.Anything).Return(w.prepareRun)
	env.OnActivity(a.Plan, mock.Anything, mock.Anything).Return(w.plan)
	env.OnActivity(a.StartSubtask, mock.Anything, mock.Anything).Return(w.startSubtask)
	step := env.OnActivity(a.AgentStep, mock.Anything, mock.Anything).Return(w.agentStep)
	if w.stepDelay > 0 {
		step.After(w.stepDelay) // advances workflow time, not wall time
	}
	env.OnActivity(a.ExecTool, mock.Anything, mock.Anything).Return(w.execTool)
	env.OnActivity(a.Summarize, mock.Anything, mock.Anything).Return(w.summarize)
	env.OnActivity(a.SwarmShare, mock.Anything, mock.Anything).Return(w.swarmShare)
	env.OnActivity(a.CommitSubtask, mock.Anything, mock.Anything).Return(w.commitSubtask)
	merge := env.OnActivity(a.MergeSubtask, mock.Anything, mock.Anything).Return(w.mergeSubtask)
	if w.mergeDelay > 0 {
		merge.After(w.mergeDelay) // workflow time, so other sub-agents end meanwhile
	}
	env.OnActivity(a.MergeSubtasks, mock.Anything, mock.Anything).Return(w.mergeSubtasks)
	env.OnActivity(a.Verify, mock.Anything, mock.Anything).Return(w.verify)
	env.OnActivity(a.FinishRun, mock.Anything, mock.Anything).Return(w.finishRun)
	env.OnActivity(a.WatchHost, mock.Anything, mock.Anything).Return(w.watchHost).AfterFn(w.watchDelay)
	env.OnActivity(a.CheckHost, mock.Anything, mock.Anything).Return(w.checkHost)
	env.OnActivity(a.TerminateChild, mock.Anything, mock.Anything).Return(w.terminateChild)
	env.OnActivity(a.AliveHosts, mock.Anything, mock.Anything).Return(w.listAliveHosts)
	env.OnActivity(a.SaveMovedWork, mock.Anything, mock.Anything).Return(w.saveMovedWork)
	env.OnActivity(a.AwaitChildren, mock.Anything, mock.Anything).Return(w.awaitChildren)

	env.SetOnChildWorkflowStartedListener(func(info *workflow.Info, _ workflow.Context, args converter.EncodedValues) {
		var in workflows.SubAgentInput
		if err := args.Get(&in); err != nil {
			t.Errorf("decode child input: %v", err)
			return
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		w.children = append(w.children, in)
		w.childIDs = append(w.childIDs, info.WorkflowExecution.ID)
	})
	return env
}

// swarmInput is a run with generous limits; tests override what they probe.
func swarmInput() workflows.SwarmInput {
	return workflows.SwarmInput{
		RepoPath: "/repo", Task: "refactor everything", Strategy: "automatic", Model: "m", BranchPrefix: "codeswarm",
		AutoMerge: true, ResolveConflicts: true,
		Limits: activities.Limits{
			MaxSubagents: 10, MaxConcurrent: 4, MaxStepsPerSubagent: 20, MaxTotalSteps: 500,
			SubagentTimeout: time.Hour, LLMTimeout: 5 * time.Minute, MaxRetries: 3,
		},
		Tools: activities.ToolLimits{BashTimeout: time.Minute, BashMaxTimeout: 10 * time.Minute},
	}
}

// runSwarm runs the parent to completion and returns its result.
func runSwarm(t *testing.T, env *testsuite.TestWorkflowEnvironment, in workflows.SwarmInput) activities.SwarmResult {
	t.Helper()
	env.ExecuteWorkflow(workflows.SwarmWorkflowName, in)
	if !env.IsWorkflowCompleted() {
		t.Fatal("swarm workflow did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		// A run that did not succeed fails (or is cancelled) with its
		// result in the failure's details.
		res, ok := activities.ResultOf(err)
		if !ok {
			t.Fatalf("swarm workflow error: %v", err)
		}
		if res.Success {
			t.Fatalf("the workflow failed (%v) but its result says success", err)
		}
		var app *temporal.ApplicationError
		if errors.As(err, &app) && (app.Message() != res.Error || !app.NonRetryable()) {
			t.Fatalf("failure %q (non-retryable %v), want the run's reason %q, non-retryable", app.Message(), app.NonRetryable(), res.Error)
		}
		return res
	}
	var res activities.SwarmResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatalf("decode swarm result: %v", err)
	}
	if err := res.Unpack(); err != nil {
		t.Fatal(err)
	}
	if !res.Success {
		t.Fatalf("the workflow completed but its result says the run failed: %s", res.Error)
	}
	return res
}

// subtaskResult finds one subtask's entry of the result.
func subtaskResult(t *testing.T, res activities.SwarmResult, id string) activities.SubtaskResult {
	t.Helper()
	for _, r := range res.SubtaskResults {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("no subtask result %q in %+v", id, res.SubtaskResults)
	return activities.SubtaskResult{}
}
