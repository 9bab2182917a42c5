package workflows

import (
	"errors"
	"fmt"
	"time"

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
	// LocalGit: StartSubtask and CommitSubtask run as local activities on
	// the host (gitActivity). Runs set it; histories recorded before it
	// ran them as activities and replay so.
	LocalGit bool `json:"local_git,omitempty"`
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
	Commit       string   `json:"commit"`
	Changed      bool     `json:"changed"`
	FilesChanged []string `json:"files_changed"`
	// FilesOmitted counts changed files not listed (MaxListedPaths).
	FilesOmitted    int   `json:"files_changed_omitted,omitempty"`
	ExecutionTimeMs int64 `json:"execution_time_ms"`
	ContinuedAsNew  int   `json:"continued_as_new"`
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
	return activities.ConvRef{
		RunID:     ag.in.RunID,
		SubtaskID: ag.in.Subtask.ID,
		Attempt:   ag.in.Attempt,
	}
}

func (ag *agent) start(ctx workflow.Context) (*activities.CachedAgent, error) {
	now := workflow.Now(ctx)
	ag.st = &SubAgentState{
		Turn:      1,
		StartedAt: now,
		Deadline:  now.Add(ag.in.Limits.SubagentTimeout),
		FastModel: ag.in.FastModel,
	}
	var res activities.StartSubtaskResult
	summary := "start worktree " + ag.in.Branch
	ag.doing(ctx, callGit, summary)
	in := activities.StartSubtaskInput{
		Ref:               ag.ref(),
		RepoPath:          ag.in.RepoPath,
		IntegrationBranch: ag.in.IntegrationBranch,
		Branch:            ag.in.Branch,
		Subtask:           ag.in.Subtask,
		DepContext:        ag.in.DepContext,
		Conflict:          ag.in.Conflict,
		ResumeFrom:        ag.in.ResumeFrom,
		Model:             ag.in.Model,
		Tools:             ag.in.Tools,
		NoCache:           ag.in.NoCache,
	}
	err := ag.gitActivity(ctx, summary, a.StartSubtask, in).Get(ctx, &res)
	if err == nil && res.Deferred {
		// The local start would have waited for a worktree (a wide run
		// whose worktrees all are at work, or a tree slow to check out):
		// the wait goes to an activity, where it holds no workflow task.
		err = ag.hostActivity(ctx, summary, a.StartSubtask, in).Get(ctx, &res)
	}
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

// localGitMaxFiles is the largest base tree whose sub-agents start and
// commit their worktrees in local activities. Those steps stat every file
// (the sandbox's ownership walk, git add, the commit's index refresh): on
// B8's 10,001-file tree, under load, they held their workflow tasks past
// the 2 s timeout (751 timed out in one full run, none as activities).
const localGitMaxFiles = 2500

// localGitTree: a run on a base tree of files files (0: unknown) starts
// its sub-agents with LocalGit.
func localGitTree(files int) bool {
	return files > 0 && files <= localGitMaxFiles
}

// gitActivity runs StartSubtask or CommitSubtask. On the host (LocalGit)
// it is a local activity in the sub-agent's workflow task, as its file
// tools are: the first model call follows the worktree's start in the same
// task, and the commit follows the last one, where an activity cost a
// workflow task and its dispatch each. A local StartSubtask does not wait
// for a worktree: it answers Deferred, and start runs it again as an
// activity. Elsewhere, and in histories recorded before LocalGit, it is an
// activity on the workspace queue.
func (ag *agent) gitActivity(ctx workflow.Context, summary string, activity, in any) workflow.Future {
	if ag.in.LocalGit && ag.onHost(ctx) {
		return workflow.ExecuteLocalActivity(localWorkspaceOptions(ctx, gitTimeout, ag.retries(), summary), activity, in)
	}
	return ag.hostActivity(ctx, summary, activity, in)
}

// hostActivity runs a git step as an activity on the workspace queue.
func (ag *agent) hostActivity(ctx workflow.Context, summary string, activity, in any) workflow.Future {
	return workflow.ExecuteActivity(summarized(workspaceOptions(ctx, ag.in.WorkspaceQueue, gitTimeout, ag.retries()), summary), activity, in)
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
		Ref:          ag.ref(),
		Turn:         ag.st.Turn,
		Model:        ag.in.Model,
		ContextLimit: ag.in.Limits.ContextLimit,
		Notes:        notes,
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
	c := llmCall{
		onHost:   ag.onHost(ctx),
		permit:   permit,
		llmQueue: ag.in.LLMQueue,
		wsQueue:  ag.in.WorkspaceQueue,
		timeout:  ag.in.Limits.LLMTimeout,
		summary:  summary,
	}
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
