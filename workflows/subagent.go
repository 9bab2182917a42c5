package workflows

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"codeswarm/activities"
)

// Exit reasons of the agent loop.
const (
	ExitCompleted = "completed"
	ExitMaxSteps  = "max_steps"
	ExitTimeout   = "timeout"
	ExitStuck     = "stuck"
	ExitCancelled = "cancelled"
	ExitError     = "error"
)

// stuckRepeats is the identical tool call (same arguments) in a row that
// the loop breaker looks at: when the calls before it also returned the
// same result, it is refused instead of run, and the model is told it is
// repeating itself.
const stuckRepeats = 3

// refusalsBeforeStuck is how many refused repeats the model gets; the next
// identical call ends the sub-agent as stuck.
const refusalsBeforeStuck = 3

// SubAgentInput starts (or, with State, continues) one sub-agent.
type SubAgentInput struct {
	RunID             string             `json:"run_id"`
	ParentWorkflowID  string             `json:"parent_workflow_id"`
	Subtask           activities.Subtask `json:"subtask"`
	Attempt           int                `json:"attempt"`
	RepoPath          string             `json:"repo_path"`
	IntegrationBranch string             `json:"integration_branch"`
	Branch            string             `json:"branch"`
	WorkspaceQueue    string             `json:"workspace_queue"`
	// LLMQueue is the shared LLM queue that hands out permits to call the
	// model; the run sets it, and starts the sub-agent on WorkspaceQueue.
	// Without it (a sub-agent started on its own, as tests do) model calls
	// run on the LLM queue of the sub-agent's own task queue.
	LLMQueue   string                   `json:"llm_queue,omitempty"`
	DepContext string                   `json:"dep_context,omitempty"`
	Conflict   *activities.ConflictInfo `json:"conflict,omitempty"`
	Model      string                   `json:"model"`
	Limits     activities.Limits        `json:"limits"`
	MaxSteps   int                      `json:"max_steps"` // this sub-agent's share of the swarm budget
	// StepGrant, when set, is the chunk of MaxSteps reserved at the start:
	// past it the sub-agent asks the run for more (swarm.stepChunk).
	StepGrant int                   `json:"step_grant,omitempty"`
	Tools     activities.ToolLimits `json:"tools"`
	// ContinueAsNewEvery forces continue-as-new every N steps (0: only when
	// the server suggests it). Tests use it.
	ContinueAsNewEvery int            `json:"continue_as_new_every,omitempty"`
	State              *SubAgentState `json:"state,omitempty"`
	// ResumeFrom is this subtask's branch on the host the run moved from
	// (StartSubtaskInput.ResumeFrom).
	ResumeFrom string `json:"resume_from,omitempty"`
	// Control is the run's steering (pause, notes, budget), which the run
	// always gives; nil (a sub-agent started on its own, as tests do): no
	// steering, no usage reports to a run.
	Control *AgentControl `json:"control,omitempty"`
	// FastModel: the planner, on the same model, answered within
	// localStepMax, so the first turn runs locally too.
	FastModel bool `json:"fast_model,omitempty"`
	// NoCache: do not take this sub-agent's work from the result cache
	// (codeswarm run --no-cache); a completed one is still stored.
	NoCache bool `json:"no_cache,omitempty"`
}

// AgentProgress is where a sub-agent works and what it has done so far. The
// state a continued run carries over and the result it returns both embed
// it, so it is copied once, and its fields keep their JSON names at the top
// level of each (running histories depend on them).
type AgentProgress struct {
	Worktree   string           `json:"worktree"`
	Branch     string           `json:"branch"`
	BaseCommit string           `json:"base_commit"`
	Steps      int              `json:"steps"`
	ToolCalls  int              `json:"tool_calls"`
	LLMCalls   int              `json:"llm_calls"`
	Usage      activities.Usage `json:"usage"`
}

// SubAgentState is what a continued run carries over: counters and
// references, never the conversation.
type SubAgentState struct {
	AgentProgress
	Turn    int    `json:"turn"`
	LastSig string `json:"last_sig,omitempty"`
	Repeats int    `json:"repeats,omitempty"`
	// LastHash is the result of the last run of LastSig; SameResults
	// counts its runs in a row that returned it; Refused counts the
	// repeats refused since.
	LastHash    string `json:"last_hash,omitempty"`
	SameResults int    `json:"same_results,omitempty"`
	Refused     int    `json:"refused,omitempty"`
	// NoRateLimit: the last model answer said no LLM rate limit was in force,
	// so the next turn calls the model without a permit.
	NoRateLimit bool      `json:"unpaced,omitempty"`
	StartedAt   time.Time `json:"started_at"`
	Deadline    time.Time `json:"deadline"`
	Runs        int       `json:"runs"`
	// ToolSeq numbers tool calls across continue-as-new (AgentView.Recent).
	ToolSeq int `json:"tool_seq,omitempty"`
	// Ctl is the steering state (with Control only).
	Ctl *AgentCtlState `json:"ctl,omitempty"`
	// FastModel: the last model answer took less than localStepMax, so
	// the next turn calls the model in a local activity (see localStep).
	FastModel bool `json:"fast_model,omitempty"`
	// CacheKey is the sub-agent's result cache key (StartSubtaskResult).
	// NoStore: its work depends on more than the key says (a steering
	// note, swarm_share values), so it is not stored.
	CacheKey string `json:"cache_key,omitempty"`
	NoStore  bool   `json:"no_store,omitempty"`
}

// SubAgentResult is the small result a sub-agent returns to its parent.
type SubAgentResult struct {
	SubtaskID  string `json:"subtask_id"`
	Attempt    int    `json:"attempt"`
	Success    bool   `json:"success"`
	Status     string `json:"status"`
	ExitReason string `json:"exit_reason"`
	Result     string `json:"result"`
	Error      string `json:"error,omitempty"`
	AgentProgress
	Commit          string   `json:"commit"`
	Changed         bool     `json:"changed"`
	FilesChanged    []string `json:"files_changed"`
	ExecutionTimeMs int64    `json:"execution_time_ms"`
	ContinuedAsNew  int      `json:"continued_as_new"`
	// Cached: the work came from the result cache (its commit reused on
	// this base, CachedFrom the commit it reuses); no model call was made.
	Cached     bool   `json:"cached,omitempty"`
	CachedFrom string `json:"cached_from,omitempty"`
}

// SubAgentWorkflow runs the tool-calling loop of one subtask in its own
// worktree, then commits. The conversation lives in the transcript store;
// only counters and references pass through history.
func SubAgentWorkflow(ctx workflow.Context, in SubAgentInput) (SubAgentResult, error) {
	ag := &agent{in: in, st: in.State}
	if err := ag.registerAgentQuery(ctx); err != nil {
		return SubAgentResult{}, err
	}
	ag.watchOrphan(ctx)
	if ag.st == nil {
		hit, err := ag.start(ctx)
		if err != nil {
			return ag.result(ExitError, "", err), nil
		}
		if hit != nil {
			// A result cache hit: the worktree holds the work already.
			// Branching on the new field is replay-safe: results recorded
			// before it have none.
			return ag.finishCached(ctx, hit), nil
		}
	}
	exit, final, err := ag.loop(ctx)
	var can *workflow.ContinueAsNewError
	if errors.As(err, &can) {
		return SubAgentResult{}, err
	}
	return ag.finish(ctx, exit, final, err), nil
}

type agent struct {
	in   SubAgentInput
	st   *SubAgentState
	view liveView
	// why explains an ExitBudget, or a stop because the run has closed.
	why string
	// orphanNotice is set when the sub-agent stops once its run has closed
	// (see watchOrphan); orphaned says a report found it closed.
	orphanNotice workflow.Channel
	orphaned     bool
	// cached: the work came from the result cache (finishCached).
	cached bool
}

func (ag *agent) ref() activities.ConvRef {
	return activities.ConvRef{RunID: ag.in.RunID, SubtaskID: ag.in.Subtask.ID, Attempt: ag.in.Attempt}
}

func (ag *agent) start(ctx workflow.Context) (*activities.CachedAgent, error) {
	now := workflow.Now(ctx)
	ag.st = &SubAgentState{Turn: 1, StartedAt: now, Deadline: now.Add(ag.in.Limits.SubagentTimeout), FastModel: ag.in.FastModel}
	var res activities.StartSubtaskResult
	ag.doing(ctx, callGit, "start worktree "+ag.in.Branch)
	err := workflow.ExecuteActivity(summarized(ag.gitCtx(ctx), "start worktree "+ag.in.Branch), a.StartSubtask, activities.StartSubtaskInput{
		Ref: ag.ref(), RepoPath: ag.in.RepoPath, IntegrationBranch: ag.in.IntegrationBranch, Branch: ag.in.Branch,
		Subtask: ag.in.Subtask, DepContext: ag.in.DepContext, Conflict: ag.in.Conflict, ResumeFrom: ag.in.ResumeFrom,
		Model: ag.in.Model, Tools: ag.in.Tools, NoCache: ag.in.NoCache,
	}).Get(ctx, &res)
	if err != nil {
		return nil, fmt.Errorf("start subtask: %s", errText(err))
	}
	ag.st.Worktree, ag.st.Branch, ag.st.BaseCommit = res.Worktree, res.Branch, res.BaseCommit
	ag.st.CacheKey = res.CacheKey
	// The first turn skips its LLM permit when StartSubtask, on the same
	// host, saw no rate limit in force, as later turns do after an
	// AgentStep that saw none: a permit round trip and a workflow task
	// less at every sub-agent's start.
	ag.st.NoRateLimit = res.NoRateLimit
	return res.Cached, nil
}

// retries is swarm.max_retries for tool and git activities; 0 means one
// attempt and no retry.
func (ag *agent) retries() int {
	return ag.in.Limits.MaxRetries
}

func (ag *agent) gitCtx(ctx workflow.Context) workflow.Context {
	return workspaceOptions(ctx, ag.in.WorkspaceQueue, gitTimeout, ag.retries())
}

// loop runs model turns until the model stops calling tools or a limit hits.
func (ag *agent) loop(ctx workflow.Context) (exit, final string, err error) {
	stepsThisRun := 0
	for {
		if exit := ag.limitReached(ctx); exit != "" {
			return exit, "", nil
		}
		if ag.shouldContinueAsNew(ctx, stepsThisRun) {
			ag.st.Runs++
			if ag.in.Control != nil {
				ag.drain(ctx) // a signal not taken now would be lost
			}
			next := ag.in
			next.State = ag.st
			return "", "", workflow.NewContinueAsNewError(ctx, SubAgentWorkflowName, next)
		}
		if exit := ag.gate(ctx); exit != "" {
			return exit, "", nil
		}
		step, err := ag.step(ctx)
		if err != nil {
			return ag.errorExit(ctx, err), "", err
		}
		stepsThisRun++
		if step.Nudged {
			continue
		}
		if len(step.ToolCalls) == 0 {
			return ExitCompleted, step.Final, nil
		}
		if exit, err := ag.runTools(ctx, step.ToolCalls); exit != "" || err != nil {
			return exit, "", err
		}
		ag.st.Deadline = workflow.Now(ctx).Add(ag.in.Limits.SubagentTimeout)
	}
}

func (ag *agent) limitReached(ctx workflow.Context) string {
	switch {
	case ctx.Err() != nil:
		return ExitCancelled
	case ag.st.Steps >= ag.in.MaxSteps:
		return ExitMaxSteps
	case workflow.Now(ctx).After(ag.st.Deadline):
		return ExitTimeout
	}
	return ""
}

func (ag *agent) shouldContinueAsNew(ctx workflow.Context, stepsThisRun int) bool {
	if stepsThisRun == 0 {
		return false
	}
	if ag.in.ContinueAsNewEvery > 0 && stepsThisRun >= ag.in.ContinueAsNewEvery {
		return true
	}
	return workflow.GetInfo(ctx).GetContinueAsNewSuggested()
}

func (ag *agent) step(ctx workflow.Context) (activities.AgentStepResult, error) {
	var res activities.AgentStepResult
	ag.doing(ctx, callModel, turnSummary(ag.st.Turn, ag.in.Model))
	c := ag.llmCall(ctx, !ag.st.NoRateLimit, turnSummary(ag.st.Turn, ag.in.Model))
	c.local = ag.localStep(ctx)
	notes := ag.notes()
	ag.st.NoStore = ag.st.NoStore || len(notes) > 0
	err := callLLM(ctx, c, a.AgentStep, activities.AgentStepInput{
		Ref: ag.ref(), Turn: ag.st.Turn, Model: ag.in.Model, ContextLimit: ag.in.Limits.ContextLimit, Notes: notes,
	}, &res)
	if err != nil {
		return res, err
	}
	ag.st.FastModel = time.Duration(res.ModelMs)*time.Millisecond < localStepMax
	ag.st.NoRateLimit = res.NoRateLimit
	ag.st.Steps++
	ag.st.LLMCalls++
	ag.st.Usage = ag.st.Usage.Add(res.Usage)
	ag.st.Turn++
	ag.afterStep(ctx, res.Usage)
	return res, nil
}

// onHost reports whether this sub-agent runs on its workspace queue (and
// so calls the model there, after a permit), as every sub-agent a run
// starts does; one started on its own without an LLMQueue calls the model
// on the shared LLM queue.
func (ag *agent) onHost(ctx workflow.Context) bool {
	return ag.in.LLMQueue != "" && workflow.GetInfo(ctx).TaskQueueName == ag.in.WorkspaceQueue
}

// callLLM runs a model activity where this sub-agent's conversation is,
// after a permit when permit.
func (ag *agent) callLLM(ctx workflow.Context, permit bool, summary string, activity, in, out any) error {
	return callLLM(ctx, ag.llmCall(ctx, permit, summary), activity, in, out)
}

// llmCall says where this sub-agent's model calls run.
func (ag *agent) llmCall(ctx workflow.Context, permit bool, summary string) llmCall {
	c := llmCall{onHost: ag.onHost(ctx), permit: permit, llmQueue: ag.in.LLMQueue, wsQueue: ag.in.WorkspaceQueue,
		timeout: ag.in.Limits.LLMTimeout, summary: summary}
	if !c.onHost {
		c.llmQueue = LLMQueue(workflow.GetInfo(ctx).TaskQueueName)
	}
	return c
}

// localStepMax is the longest model answer after which the next model call
// still runs as a local activity. A local activity saves an activity
// dispatch and a workflow task per model call (about 5 ms on this
// machine's benchmarks: most of a fast model's step), and local calls run
// back to back in one workflow task. While one runs, the workflow task
// heartbeats every 0.8 × subAgentTaskTimeout (three events each), and only
// then are signals (pause, tell, cancel) and the calls' markers taken in.
// Past a second the saving is under 1 %, so slow models keep activities.
const localStepMax = time.Second

// subAgentTaskTimeout is the workflow task timeout of a sub-agent (the
// server's default is 10 s). Local model calls hold the workflow
// task, which the SDK heartbeats at 80 % of it: the sub-agent takes in
// signals and queries, and records its calls, at least every 1.6 s; and a
// host that dies during a local call is noticed after 2 s (a restarted
// worker fails the task at once: see internal/swarmworker's journal).
const subAgentTaskTimeout = 2 * time.Second

// localStep reports whether this turn's model call runs as a local
// activity: on the host (where the conversation is), once the
// model answered the last call in under localStepMax. The first call is an
// activity unless the planner's answer (same model) came that fast: a
// provider's model typically takes seconds, and a slow call would hold the
// workflow task (queries then wait for its heartbeat).
func (ag *agent) localStep(ctx workflow.Context) bool {
	return ag.st.FastModel && ag.onHost(ctx)
}

// runTools executes the turn's tool calls in order; turn is the turn they
// belong to (already advanced in state).
func (ag *agent) runTools(ctx workflow.Context, calls []activities.ToolCallInfo) (string, error) {
	turn := ag.st.Turn - 1
	for i, call := range calls {
		switch ag.judge(call.Signature) {
		case verdictStuck:
			return ExitStuck, nil
		case verdictRefuse:
			if err := ag.refuseTool(ctx, turn, i, callBrief(call)); err != nil {
				return ag.errorExit(ctx, err), err
			}
			continue
		}
		hash, err := ag.runTool(ctx, turn, i, call)
		if errors.Is(err, errBudgetStop) {
			return ExitBudget, nil
		}
		if err != nil {
			return ag.errorExit(ctx, err), err
		}
		ag.noteResult(hash)
		ag.st.ToolCalls++
	}
	return "", nil
}

type verdict int

const (
	verdictRun verdict = iota
	verdictRefuse
	verdictStuck
)

// judge decides whether a tool call runs. Only the stuckRepeats-th and
// later identical calls in a row are looked at.
func (ag *agent) judge(sig string) verdict {
	if !ag.repeated(sig) {
		return verdictRun
	}
	if ag.st.SameResults < stuckRepeats-1 {
		return verdictRun // same call, new results: a legitimate repeat (polling, re-running tests)
	}
	ag.st.Refused++
	if ag.st.Refused > refusalsBeforeStuck {
		return verdictStuck
	}
	return verdictRefuse
}

// repeated counts identical calls in a row and reports whether this one is
// at least the stuckRepeats-th.
func (ag *agent) repeated(sig string) bool {
	if sig == ag.st.LastSig {
		ag.st.Repeats++
	} else {
		ag.st.LastSig, ag.st.Repeats = sig, 1
		ag.st.SameResults, ag.st.Refused = 0, 0
	}
	return ag.st.Repeats >= stuckRepeats
}

// noteResult counts runs of the current call in a row with the same result.
func (ag *agent) noteResult(hash string) {
	if ag.st.SameResults > 0 && hash == ag.st.LastHash {
		ag.st.SameResults++
		return
	}
	ag.st.LastHash, ag.st.SameResults = hash, 1
}

// refuseTool stores the "you are repeating yourself" result of a call that
// is not run, so the conversation stays valid.
func (ag *agent) refuseTool(ctx workflow.Context, turn, index int, brief string) error {
	actx := summarized(workspaceOptions(ctx, ag.in.WorkspaceQueue, quickToolTimeout, ag.retries()), "refused repeat: "+brief)
	return workflow.ExecuteActivity(actx, a.ExecTool, activities.ExecToolInput{
		Ref: ag.ref(), Turn: turn, Index: index, Worktree: ag.st.Worktree, Limits: ag.in.Tools, Repeated: true,
	}).Get(ctx, nil)
}

// runTool runs one call and returns the hash of its result.
func (ag *agent) runTool(ctx workflow.Context, turn, index int, call activities.ToolCallInfo) (string, error) {
	brief := callBrief(call)
	ag.noteTool(ctx, brief)
	if call.Name == "swarm_share" {
		ag.st.NoStore = true // a hit would not publish again, and what it read is not in the key
		actx := summarized(workspaceOptions(ctx, workflow.GetInfo(ctx).TaskQueueName, time.Minute, ag.retries()), brief)
		var res activities.SwarmShareResult
		err := workflow.ExecuteActivity(actx, a.SwarmShare, activities.SwarmShareInput{
			Ref: ag.ref(), Turn: turn, Index: index, ParentWorkflowID: ag.in.ParentWorkflowID,
			MaxValueBytes: ag.in.Tools.ShareMaxValueBytes,
		}).Get(ctx, &res)
		return res.ResultHash, err
	}
	tin := activities.ExecToolInput{Ref: ag.ref(), Turn: turn, Index: index, Worktree: ag.st.Worktree, Limits: ag.in.Tools}
	var res activities.ExecToolResult
	var err error
	if ag.runsLocally(ctx, call.Name) {
		// The options of a read fit a file change too: the same short
		// timeout and retries, and the journal makes a retry safe.
		err = workflow.ExecuteLocalActivity(readOnlyToolOptions(ctx, ag.retries(), brief), a.ExecTool, tin).Get(ctx, &res)
	} else {
		actx := workspaceOptions(ctx, ag.in.WorkspaceQueue, quickToolTimeout, ag.retries())
		if call.Name == "bash" {
			actx = workspaceOptions(ctx, ag.in.WorkspaceQueue, ag.in.Tools.BashMaxTimeout+time.Minute, ag.retries())
		}
		err = workflow.ExecuteActivity(summarized(actx, brief), a.ExecTool, tin).Get(ctx, &res)
	}
	if !res.NeedsSummary {
		ag.noteOutput(res.OutputChars)
	}
	if err != nil || !res.NeedsSummary {
		return res.ResultHash, err
	}
	if err := ag.summaryAllowance(ctx, res.OutputChars); err != nil {
		return res.ResultHash, err
	}
	var sum activities.SummarizeResult
	err = ag.callLLM(ctx, true, fmt.Sprintf("summarize %s output (%s)", call.Name, ag.in.Model), a.Summarize, activities.SummarizeInput{
		Ref: ag.ref(), Turn: turn, Index: index, ToolName: call.Name, CallID: call.ID, Model: ag.in.Model,
	}, &sum)
	ag.noteOutput(sum.Chars)
	if sum.Summarized {
		ag.st.LLMCalls++
		ag.st.Usage = ag.st.Usage.Add(sum.Usage)
	}
	return res.ResultHash, err
}

// runsLocally reports whether a tool call runs as a local activity: only on
// the host (where the worktree, journal and transcript are), reads and file
// changes (write, edit, multiedit: an edit step costs one workflow task
// instead of two, and no activity dispatch). bash (long, heartbeats, killed
// on cancel) and swarm_share (the parent's store) stay activities.
func (ag *agent) runsLocally(ctx workflow.Context, tool string) bool {
	return ag.onHost(ctx) && (activities.IsReadOnlyTool(tool) || activities.IsFileChangeTool(tool))
}

func (ag *agent) errorExit(ctx workflow.Context, err error) string {
	var app *temporal.ApplicationError
	switch {
	case temporal.IsCanceledError(err) || ctx.Err() != nil:
		return ExitCancelled
	case errors.As(err, &app) && app.Type() == activities.RunClosedType:
		// Its run was terminated: stop as a cancelled sub-agent does.
		ag.orphaned = true
		return ExitCancelled
	}
	return ExitError
}

// finish commits whatever the worktree holds (work is never lost, even on
// failure or cancellation) and applies the change policy.
func (ag *agent) finish(ctx workflow.Context, exit, final string, loopErr error) SubAgentResult {
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	var commit activities.CommitSubtaskResult
	ag.view.lastStatus = cmp.Or(activities.ParseStatus(final), exit)
	ag.doing(ctx, callGit, "commit "+ag.in.Subtask.ID)
	cerr := workflow.ExecuteActivity(summarized(ag.gitCtx(dctx), "commit "+ag.in.Subtask.ID), a.CommitSubtask, activities.CommitSubtaskInput{
		RunID: ag.in.RunID, SubtaskID: ag.in.Subtask.ID, Name: ag.in.Subtask.Name, Worktree: ag.st.Worktree, BaseCommit: ag.st.BaseCommit,
		Cache: ag.cacheStore(exit, final),
	}).Get(dctx, &commit)
	res := ag.result(exit, final, loopErr)
	res.ExecutionTimeMs = workflow.Now(ctx).Sub(ag.st.StartedAt).Milliseconds()
	res.Commit, res.Changed, res.FilesChanged = commit.Commit, commit.Changed, commit.FilesChanged
	if cerr != nil {
		res.Success, res.Error = false, joinErr(res.Error, "commit: "+cerr.Error())
		return res
	}
	ag.applyPolicy(&res)
	ag.doing(ctx, "", "done: "+res.Status)
	return res
}

// finishCached ends a sub-agent whose work came from the result cache:
// StartSubtask put it in the worktree as a commit on the base, and the
// usual commit activity reports it; no model turn is taken.
func (ag *agent) finishCached(ctx workflow.Context, hit *activities.CachedAgent) SubAgentResult {
	ag.cached = true
	ag.doing(ctx, "", "result cache hit: reusing "+activities.ShortSHA(hit.From))
	res := ag.finish(ctx, ExitCompleted, hit.Result, nil)
	res.Cached, res.CachedFrom = true, hit.From
	return res
}

// cacheStore asks CommitSubtask to store this sub-agent's result: only one
// that completed, ran its own model turns, and whose work depends on nothing
// but its cache key.
func (ag *agent) cacheStore(exit, final string) *activities.CacheStore {
	st := ag.st
	if ag.cached || st == nil || st.CacheKey == "" || st.NoStore || exit != ExitCompleted ||
		activities.ParseStatus(final) != activities.StatusCompleted || ag.why != "" {
		return nil
	}
	return &activities.CacheStore{
		Key: st.CacheKey, RepoPath: ag.in.RepoPath, Ref: ag.ref(), FinalTurn: st.Turn - 1, NeedsWorktree: ag.in.Subtask.NeedsWorktree,
		Steps: st.Steps, ToolCalls: st.ToolCalls, LLMCalls: st.LLMCalls, Usage: st.Usage,
	}
}

func (ag *agent) applyPolicy(res *SubAgentResult) {
	if !res.Success {
		return
	}
	switch {
	case ag.in.Subtask.NeedsWorktree && !res.Changed:
		res.Success, res.Error = false, "the subtask was meant to change code but changed no files"
	case !ag.in.Subtask.NeedsWorktree && res.Changed:
		res.Success, res.Error = false, fmt.Sprintf("read-only subtask changed %d files; its work is kept on branch %s", len(res.FilesChanged), res.Branch)
	}
}

func (ag *agent) result(exit, final string, loopErr error) SubAgentResult {
	st := ag.st
	if st == nil {
		st = &SubAgentState{}
	}
	res := SubAgentResult{
		SubtaskID: ag.in.Subtask.ID, Attempt: ag.in.Attempt, ExitReason: exit, Result: final,
		AgentProgress: st.AgentProgress, ContinuedAsNew: st.Runs,
	}
	res.Status, res.Success, res.Error = outcome(exit, final, ag.in, st)
	if ag.why != "" {
		res.Error = ag.why
	}
	if loopErr != nil {
		res.Error = joinErr(res.Error, errText(loopErr))
	}
	return res
}

func outcome(exit, final string, in SubAgentInput, st *SubAgentState) (status string, success bool, errText string) {
	switch exit {
	case ExitCompleted:
		switch s := activities.ParseStatus(final); s {
		case activities.StatusCompleted:
			return s, true, ""
		case "":
			return activities.StatusFailed, false, "the final message has no STATUS line"
		default:
			return s, false, "the sub-agent reported STATUS: " + s
		}
	case ExitMaxSteps:
		return activities.StatusFailed, false, fmt.Sprintf("sub-agent hit max steps (%d)", in.MaxSteps)
	case ExitTimeout:
		return activities.StatusTimedOut, false, fmt.Sprintf("sub-agent timed out after %s without progress", in.Limits.SubagentTimeout)
	case ExitStuck:
		return activities.StatusFailed, false, stuckText(st)
	case ExitCancelled:
		return activities.StatusCancelled, false, "cancelled"
	}
	return activities.StatusFailed, false, ""
}

func stuckText(st *SubAgentState) string {
	if st.Refused == 0 {
		return fmt.Sprintf("stuck: the same tool call was repeated %d times in a row", stuckRepeats)
	}
	return fmt.Sprintf("stuck: the same tool call with the same result was made %d times in a row, "+
		"and again after %d requests to change approach", st.Repeats, st.Refused-1)
}

func joinErr(a, b string) string {
	if a == "" {
		return b
	}
	if b == "" || strings.Contains(a, b) {
		return a
	}
	return a + "; " + b
}

// errText is the readable cause of an activity failure: the application
// error's message, without the SDK's "activity error (type: …)" wrapping.
func errText(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.Message() != "" {
		return appErr.Message()
	}
	return err.Error()
}
