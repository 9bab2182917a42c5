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

	"codeswarm/internal/textcut"
)

// keptNote names where a first attempt's work stays after a conflict.
func keptNote(r *SubAgentResult) string {
	return fmt.Sprintf("first attempt kept on branch %s at %s", r.Branch, activities.ShortSHA(r.Commit))
}

// schedule runs subtasks as their dependencies are merged, under the
// concurrency cap, until nothing runs and nothing can start. It reports true
// when the run should continue as new instead (everything in flight
// settled; running sub-agents go on under the next run).
func (s *swarm) schedule(ctx workflow.Context) bool {
	for {
		s.blockUnreachable(ctx)
		due := s.handOverDue(ctx)
		if due && s.drained(ctx) && s.settle(ctx) && s.handOverDue(ctx) {
			s.view.flush(ctx)
			return true
		}
		if !due || s.handover.drainDone {
			s.startReady(ctx)
		}
		if s.plan.Running == 0 && !s.waitsForResume(ctx) {
			s.view.flush(ctx)
			return false
		}
		s.cancelInherited(ctx)
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(s.watch.moved, func(c workflow.ReceiveChannel, _ bool) { c.ReceiveAsync(nil) })
		for _, t := range s.plan.Tasks {
			if t.State == stateRunning && t.future != nil {
				t, fut := t, t.future
				sel.AddFuture(fut, func(f workflow.Future) {
					if t.future != fut {
						return // a move replaced the sub-agent: the old one's end is not the task's
					}
					s.onDone(ctx, t, f)
				})
			}
		}
		sel.AddReceive(s.children.ends, func(c workflow.ReceiveChannel, _ bool) {
			var d activities.ChildDone
			c.ReceiveAsync(&d)
			if e, ok := s.plan.inheritedEnd(d); ok {
				s.finishChildren(ctx, e)
			}
		})
		if !s.children.cancelSent && s.plan.hasInherited() {
			sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) {})
		}
		s.addStateChange(ctx, sel)
		if due && s.handover.drainTimer != nil {
			sel.AddFuture(s.handover.drainTimer, func(workflow.Future) { s.handover.drainTimer = nil })
		}
		if !sel.HasPending() {
			s.view.flush(ctx) // about to wait: publish what this pass recorded
		}
		sel.Select(ctx)
	}
}

func (s *swarm) blockUnreachable(ctx workflow.Context) {
	for changed := true; changed; {
		changed = false
		for _, t := range s.plan.Tasks {
			if t.State != statePending {
				continue
			}
			for _, d := range t.Sub.Dependencies {
				if dep := s.plan.byID(d); dep != nil && dep.State == stateDone && !dep.Res.Success {
					if dep.Res.Status == activities.StatusCancelled {
						t.complete(activities.StatusCancelled, "cancelled before it started: dependency "+d+" was cancelled")
						s.view.event(ctx, "cancelled", t.Sub.ID, "dependency "+d+" was cancelled")
					} else {
						t.complete(activities.StatusBlocked, fmt.Sprintf("blocked: dependency %s did not succeed", d))
						s.view.event(ctx, "blocked", t.Sub.ID, "dependency "+d+" did not succeed")
					}
					changed = true
					break
				}
			}
		}
	}
}

func (s *swarm) startReady(ctx workflow.Context) {
	if ctx.Err() == nil && s.view.holding() {
		return // paused: nothing new starts
	}
	limit := max(1, s.in.Limits.MaxConcurrent)
	for _, t := range s.plan.ready() {
		if ctx.Err() != nil {
			t.complete(activities.StatusCancelled, "cancelled before it started")
			continue
		}
		if s.plan.Running >= limit {
			return
		}
		steps, ok := s.budget.grant(s.plan.Running)
		if !ok {
			break
		}
		s.launch(ctx, t, steps)
	}
	if s.plan.Running == 0 && s.budget.stepsLeft() <= 0 && s.plan.hasPending() {
		s.reportUnfunded(ctx)
	}
}

// reportUnfunded marks every subtask that has not started as not run: the
// budget is spent and no running sub-agent can hand steps back.
func (s *swarm) reportUnfunded(ctx workflow.Context) {
	msg := fmt.Sprintf("not run: swarm step budget spent (%d of max_total_steps=%d used)", s.budget.Used, s.in.Limits.MaxTotalSteps)
	for _, t := range s.plan.Tasks {
		if t.State == statePending {
			t.complete(activities.StatusNoBudget, msg)
			s.view.event(ctx, activities.StatusNoBudget, t.Sub.ID, "step budget spent")
		}
	}
}

func (s *swarm) launch(ctx workflow.Context, t *Task, steps int) {
	if steps <= 0 {
		t.complete(activities.StatusFailed, fmt.Sprintf("swarm step budget exhausted (max_total_steps=%d)", s.in.Limits.MaxTotalSteps))
		s.view.event(ctx, "failed", t.Sub.ID, "step budget exhausted")
		return
	}
	t.Attempt++
	t.Reserved = steps
	s.budget.Reserved += steps
	s.plan.Running++
	s.plan.Spawned++
	t.State = stateRunning
	t.Started, t.Ended = workflow.Now(ctx), time.Time{}
	t.ChildID = ChildWorkflowID(s.runID, t.Sub.ID, t.Attempt)
	t.Branch = SubtaskBranch(s.in.BranchPrefix, s.runID, t.Sub.ID, t.Attempt)
	t.ResumeFrom = ""
	s.plan.progressed++
	s.startChild(ctx, t)
	what := "started"
	if t.Attempt > 1 {
		what = "restarted to resolve a merge conflict"
	}
	s.view.event(ctx, "started", t.Sub.ID, fmt.Sprintf("%s %s (stage %d) from %s", what, t.Sub.Name, t.Sub.Stage, activities.ShortSHA(s.merges.Head)))
	s.view.touch()
}

// depResultCap bounds each dependency's result in a dependent's prompt.
const depResultCap = 4000

func (p *taskTable) depContext(t *Task) string {
	var b strings.Builder
	for _, d := range t.Sub.Dependencies {
		if dep := p.byID(d); dep != nil {
			fmt.Fprintf(&b, "\n--- Result from dependency %s (%s) ---\n%s\n", d, dep.Sub.Name, capString(dep.Res.Result, depResultCap))
		}
	}
	return b.String()
}

// finishChild records a sub-agent's end, whichever run started it: its
// figures, its merge and its published result.
func (s *swarm) finishChild(ctx workflow.Context, t *Task, r SubAgentResult, err error) {
	if s.recordEnd(ctx, t, r, err) {
		s.merge(ctx, t)
	}
	if t.State == stateDone {
		s.share.publishResult(t)
	}
	s.view.touch()
}

// recordEnd records a sub-agent's figures and end; it reports whether its
// change is to be merged.
func (s *swarm) recordEnd(ctx workflow.Context, t *Task, r SubAgentResult, err error) bool {
	s.plan.Running--
	s.budget.Reserved -= t.Reserved
	s.plan.progressed++
	t.State = stateDone
	t.future = nil
	t.Ended = workflow.Now(ctx)
	if err != nil {
		r = s.lostResult(t, err)
	}
	s.budget.record(r)
	t.last, t.LastWorktree = r, r.Worktree
	s.plan.fillResult(t, r)
	s.afterChild(ctx, t, r)
	kind := "finished"
	if !r.Success {
		kind = "failed"
	}
	s.view.event(ctx, kind, t.Sub.ID, fmt.Sprintf("%s after %d steps, %d tool calls: %s", r.Status, r.Steps, r.ToolCalls, activities.FirstLine(cmp.Or(r.Error, r.Result), 160)))
	return r.Success && s.in.AutoMerge && r.Changed
}

// lostResult stands for the result of a sub-agent whose workflow ended
// without one (terminated, timed out, failed): it says so plainly and names
// its branch and worktree, where the work it committed and left is kept.
func (s *swarm) lostResult(t *Task, err error) SubAgentResult {
	r := SubAgentResult{
		SubtaskID: t.Sub.ID,
		Attempt:   t.Attempt,
		Status:    activities.StatusFailed,
		Error:     err.Error(),
	}
	r.Branch = t.Branch
	var terminated *temporal.TerminatedError
	switch {
	case temporal.IsCanceledError(err):
		r.Status = activities.StatusCancelled
	case errors.As(err, &terminated):
		r.Error = "its sub-agent workflow " + t.ChildID + " was terminated; what it committed is on branch " + t.Branch + " and its worktree is kept"
	}
	if s.Prep.WorkspaceRoot != "" && s.watch.Moves == 0 {
		r.Worktree = activities.WorktreeDir(s.Prep.WorkspaceRoot, s.runID, t.Sub.ID, t.Attempt)
	}
	return r
}

func (p *taskTable) fillResult(t *Task, r SubAgentResult) {
	prevConflicts, prevOmitted := t.Res.Conflicts, t.Res.ConflictsOmitted
	t.Res = activities.SubtaskResult{
		ID:                 t.Sub.ID,
		Name:               t.Sub.Name,
		Stage:              t.Sub.Stage,
		Dependencies:       orEmpty(t.Sub.Dependencies),
		Success:            r.Success,
		Status:             r.Status,
		Result:             capString(r.Result, p.textCap()),
		Steps:              r.Steps,
		ToolCalls:          r.ToolCalls,
		ExecutionTimeMs:    r.ExecutionTimeMs,
		Error:              capString(r.Error, maxErrorText),
		Branch:             r.Branch,
		Commit:             r.Commit,
		FilesChanged:       orEmpty(r.FilesChanged),
		FilesOmitted:       r.FilesOmitted,
		Merge:              activities.MergeSkipped,
		Conflicts:          orEmpty(prevConflicts),
		ConflictsOmitted:   prevOmitted,
		ExitReason:         r.ExitReason,
		Attempts:           t.Attempt,
		Worktree:           r.Worktree,
		PromptTokens:       r.Usage.PromptTokens,
		CompletionTokens:   r.Usage.CompletionTokens,
		LLMCalls:           r.LLMCalls,
		CachedPromptTokens: r.Usage.CachedPromptTokens,
		Cached:             r.Cached,
		UsageEstimated:     r.Usage.Estimated || (t.First != nil && t.First.Usage.Estimated),
	}
	if t.First != nil {
		// Every figure counts both attempts, as the run's totals do.
		t.Res.ToolCalls += t.First.ToolCalls
		t.Res.Steps += t.First.Steps
		t.Res.ExecutionTimeMs += t.First.ExecutionTimeMs
		t.Res.PromptTokens += t.First.Usage.PromptTokens
		t.Res.CompletionTokens += t.First.Usage.CompletionTokens
		t.Res.CachedPromptTokens += t.First.Usage.CachedPromptTokens
		t.Res.LLMCalls += t.First.LLMCalls
		if !r.Success {
			// A failed re-run must still say where the first attempt's work is.
			t.Res.Error = joinErr(t.Res.Error, keptNote(t.First))
		}
	}
	if r.Success && !r.Changed {
		t.Res.Merge = activities.MergeNoChanges
	}
	if !r.Success && r.Commit != "" && !r.Changed && t.Sub.NeedsWorktree && r.ExitReason == ExitCompleted {
		t.Res.Merge = activities.MergeNoChanges
	}
}

func (t *Task) complete(status, errText string) {
	t.State = stateDone
	t.Res = activities.SubtaskResult{
		ID:           t.Sub.ID,
		Name:         t.Sub.Name,
		Stage:        t.Sub.Stage,
		Dependencies: orEmpty(t.Sub.Dependencies),
		Status:       status,
		Error:        errText,
		FilesChanged: []string{},
		Merge:        activities.MergeSkipped,
		Conflicts:    []string{},
	}
}

// capString cuts s to at most n bytes, on a character boundary, marking
// the cut.
func capString(s string, n int) string { return textcut.Head(s, n, truncatedMark) }

func orEmpty(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}
