package workflows

import (
	"path"
	"time"

	"go.temporal.io/sdk/workflow"

	"codeswarm/activities"
	"codeswarm/control"
)

// SwarmInput is everything a run needs; it holds no secrets.
type SwarmInput struct {
	RepoPath         string                `json:"repo_path"`
	Task             string                `json:"task"`
	BaseRef          string                `json:"base_ref"`
	Strategy         string                `json:"strategy"`
	Model            string                `json:"model"`
	PlannerModel     string                `json:"planner_model"`
	Limits           activities.Limits     `json:"limits"`
	Tools            activities.ToolLimits `json:"tools"`
	BranchPrefix     string                `json:"branch_prefix"`
	AutoMerge        bool                  `json:"auto_merge"`
	ResolveConflicts bool                  `json:"resolve_conflicts"`
	VerifyCommand    string                `json:"verify_command,omitempty"`
	VerifyMode       string                `json:"verify_mode,omitempty"` // "end" (default) or "each"
	VerifyTimeout    time.Duration         `json:"verify_timeout,omitempty"`
	Apply            bool                  `json:"apply"`
	// ContinueAsNewEvery is passed to every sub-agent (tests).
	ContinueAsNewEvery int `json:"continue_as_new_every,omitempty"`
	// Visibility says which search attributes the run keeps up to date
	// (none when the namespace lacks them).
	Visibility Visibility `json:"visibility"`
	// ApprovePlan holds the run after planning until approve or reject.
	ApprovePlan bool `json:"approve_plan,omitempty"`
	// NoCache: the planner and the sub-agents do not take their work from
	// the result cache (run --no-cache); what completes is still stored.
	NoCache bool `json:"no_cache,omitempty"`
	// Budget caps the run's tokens and cost (zero: no caps).
	Budget RunBudget `json:"budget,omitempty"`
	// ParentContinueAsNewAfter is the history length (events) at which the
	// parent continues as new (0: DefaultParentContinueAsNewAfter). Tests
	// set it low.
	ParentContinueAsNewAfter int `json:"parent_continue_as_new_after,omitempty"`
	// ParentHandoverDrain bounds how long the parent, once a
	// continue-as-new is due, starts no sub-agent while its own end (0:
	// handoverDrainMax; negative: no drain, hand over at once). Tests that
	// need sub-agents handed over running set it negative.
	ParentHandoverDrain time.Duration `json:"parent_handover_drain,omitempty"`
	// Carry is the state of the run this one continues (nil: a new run).
	Carry *Carry `json:"carry,omitempty"`
}

// Run phases reported by the progress query.
const (
	PhasePreparing = "preparing"
	PhasePlanning  = "planning"
	PhaseRunning   = "running"
	PhaseVerifying = "verifying"
	PhaseFinishing = "finishing"
	PhaseDone      = "done"
)

// SwarmWorkflow decomposes the task, runs one SubAgentWorkflow per subtask as
// soon as its dependencies are merged, merges each finished subtask into the
// integration branch, verifies, and reports.
func SwarmWorkflow(ctx workflow.Context, in SwarmInput) (activities.SwarmResult, error) {
	s := newSwarm(ctx, in)
	if err := s.registerHandlers(ctx); err != nil {
		return activities.SwarmResult{}, err
	}
	if err := s.registerHostHandlers(ctx); err != nil {
		return activities.SwarmResult{}, err
	}
	if err := s.registerControl(ctx); err != nil {
		return activities.SwarmResult{}, err
	}
	res, err := s.run(ctx)
	// Let in-flight swarm_share updates finish before the run closes.
	_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
	return s.outcome(ctx, res, err)
}

// endState is the RunState* the run ended in.
func (v *runView) endState(ctx workflow.Context, res activities.SwarmResult) string {
	switch {
	case res.Success:
		return control.RunStateSucceeded
	case ctx.Err() != nil:
		return control.RunStateCancelled
	case v.State == control.RunStateRejected:
		return control.RunStateRejected
	}
	return control.RunStateFailed
}

// outcome closes the workflow as what the run was: completed when it
// succeeded, cancelled when a cancel request ended it, failed otherwise,
// the failure carrying the result (activities.ResultOf reads it back).
func (s *swarm) outcome(ctx workflow.Context, res activities.SwarmResult, err error) (activities.SwarmResult, error) {
	if err != nil {
		return res, err
	}
	res.State = s.view.endState(ctx, res)
	packed, perr := res.Pack()
	if perr != nil {
		return res, perr
	}
	res = packed
	if res.Success {
		return res, nil
	}
	if ctx.Err() != nil {
		return res, activities.RunCancelled(res)
	}
	return res, activities.RunFailure(res)
}

// swarm is one run of SwarmWorkflow: its input and the owners of its
// state, each of which carries its own part on across continue-as-new.
type swarm struct {
	in        SwarmInput
	runID     string
	branch    string // the integration branch
	mainQueue string // the task queue the run's workflow runs on
	phase     string
	runRecord
	plan     taskTable     // the subtasks
	merges   mergeQueue    // the integration branch's head and its verify
	budget   ledger        // steps, tokens and cost: caps, grants, use
	steer    steering      // pause and plan approval
	view     runView       // events, state and what the Web UI shows
	watch    hostWatch     // the workspace host: watched and moved
	share    shareStore    // swarm_share
	children childChannels // signals to and from the sub-agents
	handover handoverDrain // the drain before a continue-as-new
}

// runRecord is what a run knows of itself beyond its input.
type runRecord struct {
	// Runs counts the runs of this continue-as-new chain before this one.
	Runs    int                         `json:"runs"`
	Prep    activities.PrepareRunResult `json:"prep"`
	Started time.Time                   `json:"started"`
	// PlanNote says how the plan was made when not as asked (repaired,
	// single subtask).
	PlanNote string `json:"plan_note,omitempty"`
	// FastModel: the planner answered within localStepMax on the
	// sub-agents' model (SubAgentInput.FastModel).
	FastModel bool `json:"fast_model,omitempty"`
	// PlanCached: the plan came from the result cache.
	PlanCached bool `json:"plan_cached,omitempty"`
}

func newSwarm(ctx workflow.Context, in SwarmInput) *swarm {
	info := workflow.GetInfo(ctx)
	id := info.WorkflowExecution.ID
	s := &swarm{
		in:        in,
		runID:     id,
		branch:    IntegrationBranch(in.BranchPrefix, id),
		mainQueue: info.TaskQueueName,
		phase:     PhasePreparing,
		runRecord: runRecord{Started: workflow.Now(ctx)},
		budget:    newLedger(in),
		view:      runView{viewState: viewState{State: control.RunStateRunning}},
		watch:     hostWatch{moved: workflow.NewBufferedChannel(ctx, 1)},
	}
	s.view.tasks, s.view.spend, s.view.in, s.view.phase = &s.plan, &s.budget, &s.in, &s.phase
	return s
}

func (s *swarm) run(ctx workflow.Context) (activities.SwarmResult, error) {
	if s.in.Carry != nil {
		return s.continued(ctx)
	}
	s.view.refresh(ctx)
	if err := s.prepare(ctx); err != nil {
		return s.failed(ctx, err), nil
	}
	stopWatch, err := s.startHostWatch(ctx)
	if err != nil {
		return s.failed(ctx, err), nil
	}
	defer stopWatch()
	s.phase = PhasePlanning
	var plan []activities.Subtask
	plan, err = s.decompose(ctx)
	if err != nil {
		fin := s.finish(ctx)
		res := s.failed(ctx, err)
		if fin.DroppedBranch {
			res.Branch = ""
		}
		return res, nil
	}
	s.setPlan(ctx, plan)
	if s.in.ApprovePlan {
		if reason := s.awaitApproval(ctx); reason != "" {
			s.phase = PhaseFinishing
			fin := s.finish(ctx)
			s.phase = PhaseDone
			res := s.result(ctx, fin)
			res.Error = "plan rejected: " + reason
			return res.SwarmResult, nil
		}
	}
	s.phase = PhaseRunning
	s.view.refresh(ctx)
	return s.scheduleAndConclude(ctx, stopWatch)
}

// continued goes on with the run a continue-as-new handed over: its plan is
// made and its sub-agents started by an earlier run run on.
func (s *swarm) continued(ctx workflow.Context) (activities.SwarmResult, error) {
	s.restore(s.in.Carry)
	s.in.Carry = nil // the state lives in s now
	if s.Prep.Sandbox == "off" {
		if err := workflow.UpsertMemo(ctx, map[string]interface{}{"sandbox": unsandboxedNote}); err != nil {
			return s.failed(ctx, err), nil
		}
	}
	stopWatch, err := s.startHostWatch(ctx)
	if err != nil {
		return s.failed(ctx, err), nil
	}
	defer stopWatch()
	if s.watch.Lost {
		s.armAutoMove(ctx)
	}
	s.awaitInherited(ctx)
	s.view.refresh(ctx)
	return s.scheduleAndConclude(ctx, stopWatch)
}

// scheduleAndConclude runs the schedule, then either hands the run over to
// a new one (its host watch stopped) or concludes it.
func (s *swarm) scheduleAndConclude(ctx workflow.Context, stopWatch func()) (activities.SwarmResult, error) {
	if s.schedule(ctx) {
		s.watch.stop(ctx)
		stopWatch()
		return activities.SwarmResult{}, s.continueAsNew(ctx)
	}
	return s.conclude(ctx), nil
}

// conclude verifies, finishes and reports once no sub-agent runs.
func (s *swarm) conclude(ctx workflow.Context) activities.SwarmResult {
	if s.in.VerifyCommand != "" && s.in.VerifyMode != "each" && s.plan.anyMerged() && ctx.Err() == nil {
		s.phase = PhaseVerifying
		s.runVerify(ctx, "")
	}
	s.phase = PhaseFinishing
	fin := s.finish(ctx)
	s.phase = PhaseDone
	res := s.result(ctx, fin)
	s.view.event(ctx, "done", "", res.summaryLine())
	s.view.end(ctx, res.Success)
	return res.SwarmResult
}

// finish restores the repository, removes merged worktrees and applies.
func (s *swarm) finish(ctx workflow.Context) activities.FinishRunResult {
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	s.watch.stop(dctx)
	var remove []string
	for _, t := range s.plan.Tasks {
		remove = append(remove, t.removableWorktrees()...)
	}
	under, names := splitUnder(remove)
	if names != nil {
		remove = nil
	}
	in := activities.FinishRunInput{
		RunID:           s.runID,
		RepoPath:        s.Prep.RepoRoot,
		GCAutoPrev:      s.Prep.GCAutoPrev,
		GCAutoHad:       s.Prep.GCAutoHad,
		RemoveWorktrees: remove,
		WorktreesUnder:  under,
		RemoveNames:     names,
		Apply:           s.in.Apply && s.succeeded(),
		BaseBranch:      s.Prep.BaseBranch,
		BaseCommit:      s.Prep.BaseCommit,
		IntegrationHead: s.merges.Head,
	}
	if !s.succeeded() {
		in.DropEmptyBranch = s.branch
	}
	var out activities.FinishRunResult
	if err := s.onHost(dctx, gitTimeout, "finish run", a.FinishRun, in, &out); err != nil {
		workflow.GetLogger(ctx).Warn("finish run", "error", err)
	}
	if s.in.Apply && !s.succeeded() {
		out.ApplyError = "not applied: the run did not succeed"
	}
	return out
}

// splitUnder returns the directory all of paths are in and their names in
// it, or "" and nil when they are not all in one directory (or there are
// none). A run's worktrees are all <workspace.root>/<run>/<name>.
func splitUnder(paths []string) (dir string, names []string) {
	if len(paths) == 0 {
		return "", nil
	}
	dir = path.Dir(paths[0])
	names = make([]string, 0, len(paths))
	for _, p := range paths {
		d, name := path.Split(p)
		if path.Clean(d) != dir || name == "" || name == "." || name == ".." {
			return "", nil
		}
		names = append(names, name)
	}
	return dir, names
}

func (s *swarm) succeeded() bool {
	return s.plan.allSucceeded() && (s.merges.Verify == nil || s.merges.Verify.OK)
}

func (s *swarm) failed(ctx workflow.Context, err error) activities.SwarmResult {
	s.view.end(ctx, false)
	return activities.SwarmResult{
		RunID:          s.runID,
		Branch:         s.branch,
		BaseCommit:     s.Prep.BaseCommit,
		HeadCommit:     s.merges.Head,
		Error:          err.Error(),
		Sandbox:        s.Prep.Sandbox,
		SubtaskResults: []activities.SubtaskResult{},
		Stats: activities.Stats{
			ExecutionTimeMs: workflow.Now(ctx).Sub(s.Started).Milliseconds(),
			Stages:          []activities.StageStats{},
		},
	}
}
