package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"codeswarm/activities"
)

// llmQueue is the cluster's shared, rate-limited LLM queue: the one of the
// main queue the parent runs on.
func llmQueueOf(ctx workflow.Context) string {
	return LLMQueue(workflow.GetInfo(ctx).TaskQueueName)
}

func (s *swarm) prepare(ctx workflow.Context) error {
	actx := summarized(workspaceOptions(ctx, workflow.GetInfo(ctx).TaskQueueName, gitTimeout, s.in.Limits.MaxRetries), "prepare run")
	err := workflow.ExecuteActivity(actx, a.PrepareRun, activities.PrepareRunInput{
		RunID:             s.runID,
		RepoPath:          s.in.RepoPath,
		BaseRef:           s.in.BaseRef,
		IntegrationBranch: s.branch,
	}).Get(ctx, &s.Prep)
	if err != nil {
		return fmt.Errorf("prepare run: %w", err)
	}
	s.merges.Head = s.Prep.BaseCommit
	s.view.event(ctx, "prepared", "", fmt.Sprintf("base %s, integration branch %s", activities.ShortSHA(s.Prep.BaseCommit), s.branch))
	return s.markUnsandboxed(ctx)
}

// unsandboxedNote is the memo's "sandbox" entry of a run whose host does
// not confine model-run commands.
const unsandboxedNote = "off: model-run commands are NOT confined on this host (tools.sandbox: off)"

// markUnsandboxed says, where people look (the run's events and its memo in
// the Web UI), that model-run commands are not confined on this run's host.
func (s *swarm) markUnsandboxed(ctx workflow.Context) error {
	if s.Prep.Sandbox != "off" {
		return nil
	}
	s.view.event(ctx, "sandbox", "", unsandboxedNote)
	if err := workflow.UpsertMemo(ctx, map[string]interface{}{"sandbox": unsandboxedNote}); err != nil {
		return fmt.Errorf("record sandbox off in the memo: %w", err)
	}
	return nil
}

// plannerPermit: the planner's call takes an LLM permit first, except the
// first call when PrepareRun's worker had no rate limit in force; a repair,
// like a call answered 429, takes one.
func (s *swarm) plannerPermit(attempt int) bool {
	return !(attempt == 0 && s.Prep.NoRateLimit)
}

// planError is a planner call that failed for good: its text is the cause
// as a user reads it, without the SDK's "activity error (type: …)" frame.
type planError struct{ err error }

func (e planError) Error() string { return "planning failed: " + errText(e.err) }

func (e planError) Unwrap() error { return e.err }

// decompose asks the planner, repairs an invalid plan once, and falls back to
// a single subtask. Only an LLM error that cannot be retried fails the run.
func (s *swarm) decompose(ctx workflow.Context) ([]activities.Subtask, error) {
	if s.in.Strategy == "none" {
		s.PlanNote = "strategy none: single subtask"
		return activities.SingleTaskPlan(s.in.Task), nil
	}
	model := s.in.PlannerModel
	if model == "" {
		model = s.in.Model
	}
	in := activities.PlanInput{
		RunID:       s.runID,
		Task:        s.in.Task,
		Strategy:    s.in.Strategy,
		RepoListing: s.Prep.RepoListing,
		MaxSubtasks: s.in.Limits.MaxSubagents,
		Model:       model,
		RepoPath:    s.Prep.RepoRoot,
		BaseCommit:  s.Prep.BaseCommit,
		NoCache:     s.in.NoCache,
	}
	problem := ""
	for attempt := 0; attempt < 2; attempt++ {
		in.Attempt, in.RepairProblem = attempt, problem
		var res activities.PlanResult
		if err := callLLM(ctx, llmCall{
			onHost:   true,
			permit:   s.plannerPermit(attempt),
			llmQueue: llmQueueOf(ctx),
			wsQueue:  s.Prep.WorkspaceQueue,
			timeout:  s.in.Limits.LLMTimeout,
			summary:  planSummary(attempt, model),
		}, a.Plan, in, &res); err != nil {
			return nil, planError{err}
		}
		if !res.Cached {
			s.budget.LLMCalls++
		}
		s.budget.Usage = s.budget.Usage.Add(res.Usage)
		// The sub-agents' model answered this fast, if it is the planner's.
		s.FastModel = model == s.in.Model && res.ModelMs > 0 && time.Duration(res.ModelMs)*time.Millisecond < localStepMax
		s.budget.Cost += s.in.Budget.PlannerPrice.Cost(res.Usage)
		if res.Problem == "" {
			s.PlanCached = res.Cached
			if res.Cached {
				s.view.event(ctx, "cached", "", "plan taken from the result cache: no model call")
			}
			if attempt > 0 {
				s.PlanNote = "plan repaired after: " + problem
			}
			return res.Subtasks, nil
		}
		problem = res.Problem
		s.view.event(ctx, "plan_invalid", "", problem)
	}
	s.PlanNote = "planner gave no valid plan (" + problem + "); ran the task as a single subtask"
	s.view.event(ctx, "plan_fallback", "", s.PlanNote)
	workflow.GetLogger(ctx).Warn("plan fallback: running the task as a single subtask", "problem", problem)
	return activities.SingleTaskPlan(s.in.Task), nil
}

func (s *swarm) setPlan(ctx workflow.Context, plan []activities.Subtask) {
	for _, st := range plan {
		s.plan.Tasks = append(s.plan.Tasks, &Task{Sub: st, State: statePending})
	}
	names := make([]string, len(plan))
	for i, st := range plan {
		names[i] = fmt.Sprintf("%s (stage %d)", st.ID, st.Stage)
	}
	s.view.event(ctx, "planned", "", fmt.Sprintf("%d subtasks: %s", len(plan), strings.Join(names, ", ")))
}

// planSummary is the planner call's line in the Web UI.
func planSummary(attempt int, model string) string {
	if attempt > 0 {
		return fmt.Sprintf("plan repair (%s)", model)
	}
	return fmt.Sprintf("plan (%s)", model)
}

func (s *swarm) planView() (PlanView, error) {
	v := PlanView{
		State:    s.view.State,
		Note:     s.PlanNote,
		Subtasks: make([]activities.Subtask, 0, len(s.plan.Tasks)),
	}
	for _, t := range s.plan.Tasks {
		v.Subtasks = append(v.Subtasks, t.Sub)
	}
	return v, nil
}

// PlanView is the answer to control.PlanQueryName: the run's plan.
type PlanView struct {
	State    string               `json:"state"`
	Note     string               `json:"note,omitempty"`
	Subtasks []activities.Subtask `json:"subtasks"`
}
