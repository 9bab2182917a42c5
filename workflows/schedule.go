package workflows

import (
	"cmp"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"codeswarm/activities"

	"codeswarm/internal/textcut"
)

type taskState int

const (
	statePending taskState = iota
	stateRunning
	stateDone
)

// task is the parent's view of one subtask.
type task struct {
	sub      activities.Subtask
	state    taskState
	attempt  int
	reserved int
	future   workflow.ChildWorkflowFuture
	conflict *activities.ConflictInfo
	first    *SubAgentResult // first attempt, when a conflict caused a re-run
	last     SubAgentResult
	res      activities.SubtaskResult
	// started and ended time the current attempt; lastEvent is the
	// subtask's latest event, for the live table.
	started, ended time.Time
	lastEvent      string
	// childID and branch name the running sub-agent; resumeFrom is its
	// branch on the host the run left.
	childID    string
	branch     string
	resumeFrom string
	ctl        taskCtl
}

// keptNote names where a first attempt's work stays after a conflict.
func keptNote(r *SubAgentResult) string {
	return fmt.Sprintf("first attempt kept on branch %s at %s", r.Branch, activities.ShortSHA(r.Commit))
}

// removableWorktrees are the worktrees whose work is safely merged.
func (t *task) removableWorktrees() []string {
	var out []string
	if t.res.Merge == activities.MergeMerged && t.last.Worktree != "" {
		out = append(out, t.last.Worktree)
	}
	if t.first != nil && t.res.Merge == activities.MergeMerged && t.first.Worktree != "" {
		out = append(out, t.first.Worktree) // its commit stays on its branch
	}
	return out
}

// schedule runs subtasks as their dependencies are merged, under the
// concurrency cap, until nothing runs and nothing can start. It reports true
// when the run should continue as new instead (everything in flight
// settled; running sub-agents go on under the next run).
func (s *swarm) schedule(ctx workflow.Context) bool {
	for {
		s.blockUnreachable(ctx)
		if s.canDue(ctx) && s.settle(ctx) && s.canDue(ctx) {
			s.flush(ctx)
			return true
		}
		s.startReady(ctx)
		if s.running == 0 && !s.waitsForResume(ctx) {
			s.flush(ctx)
			return false
		}
		s.cancelInherited(ctx)
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(s.hs.wake, func(c workflow.ReceiveChannel, _ bool) { c.ReceiveAsync(nil) })
		for _, t := range s.tasks {
			if t.state == stateRunning && t.future != nil {
				t, fut := t, t.future
				sel.AddFuture(fut, func(f workflow.Future) {
					if t.future != fut {
						return // a move replaced the sub-agent: the old one's end is not the task's
					}
					s.onDone(ctx, t, f)
				})
			}
		}
		sel.AddReceive(s.childDone, func(c workflow.ReceiveChannel, _ bool) {
			var d activities.ChildDone
			c.ReceiveAsync(&d)
			if e, ok := s.inheritedEnd(d); ok {
				s.finishChildren(ctx, e)
			}
		})
		if !s.cancelSent && s.hasInherited() {
			sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) {})
		}
		s.addWake(ctx, sel)
		if !sel.HasPending() {
			s.flush(ctx) // about to wait: publish what this wake booked
		}
		sel.Select(ctx)
	}
}

func (s *swarm) byID(id string) *task {
	for _, t := range s.tasks {
		if t.sub.ID == id {
			return t
		}
	}
	return nil
}

// depsSatisfied: every dependency finished successfully (and, with
// auto-merge, its change is on the integration branch).
func (s *swarm) depsSatisfied(t *task) bool {
	for _, d := range t.sub.Dependencies {
		dep := s.byID(d)
		if dep == nil || dep.state != stateDone || !dep.res.Success {
			return false
		}
	}
	return true
}

func (s *swarm) blockUnreachable(ctx workflow.Context) {
	for changed := true; changed; {
		changed = false
		for _, t := range s.tasks {
			if t.state != statePending {
				continue
			}
			for _, d := range t.sub.Dependencies {
				if dep := s.byID(d); dep != nil && dep.state == stateDone && !dep.res.Success {
					if dep.res.Status == activities.StatusCancelled {
						s.complete(t, activities.StatusCancelled, "cancelled before it started: dependency "+d+" was cancelled")
						s.event(ctx, "cancelled", t.sub.ID, "dependency "+d+" was cancelled")
					} else {
						s.complete(t, activities.StatusBlocked, fmt.Sprintf("blocked: dependency %s did not succeed", d))
						s.event(ctx, "blocked", t.sub.ID, "dependency "+d+" did not succeed")
					}
					changed = true
					break
				}
			}
		}
	}
}

// ready lists pending subtasks whose dependencies are met, highest priority
// first, then plan order.
func (s *swarm) ready() []*task {
	var out []*task
	for _, t := range s.tasks {
		if t.state == statePending && s.depsSatisfied(t) {
			out = append(out, t)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].sub.Priority > out[j].sub.Priority })
	return out
}

func (s *swarm) startReady(ctx workflow.Context) {
	if ctx.Err() == nil && s.holding() {
		return // paused: nothing new starts
	}
	limit := max(1, s.in.Limits.MaxConcurrent)
	for _, t := range s.ready() {
		if ctx.Err() != nil {
			s.complete(t, activities.StatusCancelled, "cancelled before it started")
			continue
		}
		if s.running >= limit {
			return
		}
		steps, ok := s.grant()
		if !ok {
			break
		}
		s.launch(ctx, t, steps)
	}
	if s.running == 0 && s.budgetSpent() && s.hasPending() {
		s.reportUnfunded(ctx)
	}
}

// stepAllowance is what a sub-agent may reserve now from the swarm-wide
// budget, so running sub-agents together can never exceed max_total_steps.
func (s *swarm) stepAllowance() int {
	left := s.in.Limits.MaxTotalSteps - s.used - s.reserved
	return min(s.stepChunk(), left)
}

// minStepChunk is the smallest chunk of steps a sub-agent reserves at once.
const minStepChunk = 10

// stepChunk is how many steps a sub-agent reserves at a time: a whole
// max_steps_per_subagent while the budget holds that for twice the
// concurrency, else a share of it (at least minStepChunk). Sub-agents ask
// for more as they go (SubAgentInput.StepGrant), so the step budget does
// not cap concurrency at max_total_steps / max_steps_per_subagent.
func (s *swarm) stepChunk() int {
	perSub := s.in.Limits.MaxStepsPerSubagent
	return min(perSub, max(minStepChunk, s.in.Limits.MaxTotalSteps/(2*max(1, s.in.Limits.MaxConcurrent))))
}

func (s *swarm) budgetSpent() bool { return s.in.Limits.MaxTotalSteps-s.used-s.reserved <= 0 }

func (s *swarm) hasPending() bool {
	for _, t := range s.tasks {
		if t.state == statePending {
			return true
		}
	}
	return false
}

// grant reserves a sub-agent's steps. A full share is granted at once; a
// partial one only when nothing runs, because a running sub-agent hands its
// unused reservation back when it finishes: until then the subtask waits
// rather than starting short or failing while steps are still unspent.
func (s *swarm) grant() (int, bool) {
	steps := s.stepAllowance()
	if steps >= s.stepChunk() {
		return steps, true
	}
	if steps > 0 && s.running == 0 {
		return steps, true
	}
	return 0, false
}

// reportUnfunded marks every subtask that has not started as not run: the
// budget is spent and no running sub-agent can hand steps back.
func (s *swarm) reportUnfunded(ctx workflow.Context) {
	msg := fmt.Sprintf("not run: swarm step budget spent (%d of max_total_steps=%d used)", s.used, s.in.Limits.MaxTotalSteps)
	for _, t := range s.tasks {
		if t.state == statePending {
			s.complete(t, activities.StatusNoBudget, msg)
			s.event(ctx, activities.StatusNoBudget, t.sub.ID, "step budget spent")
		}
	}
}

func (s *swarm) launch(ctx workflow.Context, t *task, steps int) {
	if steps <= 0 {
		s.complete(t, activities.StatusFailed, fmt.Sprintf("swarm step budget exhausted (max_total_steps=%d)", s.in.Limits.MaxTotalSteps))
		s.event(ctx, "failed", t.sub.ID, "step budget exhausted")
		return
	}
	t.attempt++
	t.reserved = steps
	s.reserved += steps
	s.running++
	s.spawned++
	t.state = stateRunning
	t.started, t.ended = workflow.Now(ctx), time.Time{}
	t.childID = ChildWorkflowID(s.runID, t.sub.ID, t.attempt)
	t.branch = SubtaskBranch(s.in.BranchPrefix, s.runID, t.sub.ID, t.attempt)
	t.resumeFrom = ""
	s.progressed++
	s.startChild(ctx, t)
	what := "started"
	if t.attempt > 1 {
		what = "restarted to resolve a merge conflict"
	}
	s.event(ctx, "started", t.sub.ID, fmt.Sprintf("%s %s (stage %d) from %s", what, t.sub.Name, t.sub.Stage, activities.ShortSHA(s.head)))
	s.touch()
}

// startChild starts t's sub-agent on the run's current workspace host. After
// a move it gets a new workflow ID and branch, resuming from its old branch.
func (s *swarm) startChild(ctx workflow.Context, t *task) {
	summary, details := childMetadata(t)
	opts := workflow.ChildWorkflowOptions{
		WorkflowID: t.childID,
		// The server applies the close policy when the parent continues as
		// new as well; the run cancels its sub-agents itself.
		ParentClosePolicy:   enumspb.PARENT_CLOSE_POLICY_ABANDON,
		WaitForCancellation: true,
		StaticSummary:       summary,
		StaticDetails:       details,
		// Its local model calls hold its workflow task (localStep).
		WorkflowTaskTimeout: subAgentTaskTimeout,
		// The sub-agent runs where its worktree and transcript are; only
		// its permits go to the shared LLM queue.
		TaskQueue: s.prep.WorkspaceQueue,
	}
	cctx := workflow.WithChildOptions(ctx, opts)
	in := SubAgentInput{
		RunID: s.runID, ParentWorkflowID: s.runID, Subtask: t.sub, Attempt: t.attempt,
		RepoPath: s.prep.RepoRoot, IntegrationBranch: s.branch, Branch: t.branch,
		WorkspaceQueue: s.prep.WorkspaceQueue, DepContext: s.depContext(t), Conflict: t.conflict,
		Model: s.in.Model, Limits: s.in.Limits, MaxSteps: t.reserved, Tools: s.in.Tools,
		ContinueAsNewEvery: s.in.ContinueAsNewEvery, ResumeFrom: t.resumeFrom, Control: s.controlFor(t), LLMQueue: s.llmQueue(ctx),
		FastModel: s.fastModel,
	}
	if t.reserved > 0 {
		// It holds a chunk and asks for more, up to its own cap.
		in.MaxSteps, in.StepGrant = s.in.Limits.MaxStepsPerSubagent, t.reserved
	}
	t.future = workflow.ExecuteChildWorkflow(cctx, SubAgentWorkflowName, in)
}

// depResultCap bounds each dependency's result in a dependent's prompt.
const depResultCap = 4000

func (s *swarm) depContext(t *task) string {
	var b strings.Builder
	for _, d := range t.sub.Dependencies {
		if dep := s.byID(d); dep != nil {
			fmt.Fprintf(&b, "\n--- Result from dependency %s (%s) ---\n%s\n", d, dep.sub.Name, capString(dep.res.Result, depResultCap))
		}
	}
	return b.String()
}

// onDone books the end of a sub-agent this run started.
func (s *swarm) onDone(ctx workflow.Context, t *task, f workflow.Future) {
	if f != workflow.Future(t.future) {
		return // a sub-agent a move replaced
	}
	var r SubAgentResult
	err := f.Get(ctx, &r)
	s.finishChildren(ctx, childEnd{t: t, r: r, err: err})
}

// finishChild books a sub-agent's end, whichever run started it: its
// figures, its merge and its published result.
func (s *swarm) finishChild(ctx workflow.Context, t *task, r SubAgentResult, err error) {
	if s.bookEnd(ctx, t, r, err) {
		s.merge(ctx, t)
	}
	if t.state == stateDone {
		s.publishResult(t)
	}
	s.touch()
}

// bookEnd books a sub-agent's figures and end; it reports whether its
// change is to be merged.
func (s *swarm) bookEnd(ctx workflow.Context, t *task, r SubAgentResult, err error) bool {
	s.running--
	s.reserved -= t.reserved
	s.progressed++
	t.state = stateDone
	t.future = nil
	t.ended = workflow.Now(ctx)
	if err != nil {
		r = s.lostResult(t, err)
	}
	s.used += r.Steps
	s.llmCalls += r.LLMCalls
	s.usage = s.usage.Add(r.Usage)
	t.last = r
	s.fillResult(t, r)
	s.afterChild(ctx, t, r)
	kind := "finished"
	if !r.Success {
		kind = "failed"
	}
	s.event(ctx, kind, t.sub.ID, fmt.Sprintf("%s after %d steps, %d tool calls: %s", r.Status, r.Steps, r.ToolCalls, activities.FirstLine(cmp.Or(r.Error, r.Result), 160)))
	return r.Success && s.in.AutoMerge && r.Changed
}

// lostResult stands for the result of a sub-agent whose workflow ended
// without one (terminated, timed out, failed): it says so plainly and names
// its branch and worktree, where the work it committed and left is kept.
func (s *swarm) lostResult(t *task, err error) SubAgentResult {
	r := SubAgentResult{SubtaskID: t.sub.ID, Attempt: t.attempt, Status: activities.StatusFailed, Error: err.Error()}
	r.Branch = t.branch
	var terminated *temporal.TerminatedError
	switch {
	case temporal.IsCanceledError(err):
		r.Status = activities.StatusCancelled
	case errors.As(err, &terminated):
		r.Error = "its sub-agent workflow " + t.childID + " was terminated; what it committed is on branch " + t.branch + " and its worktree is kept"
	}
	if s.prep.WorkspaceRoot != "" && s.hs.moves == 0 {
		r.Worktree = activities.WorktreeDir(s.prep.WorkspaceRoot, s.runID, t.sub.ID, t.attempt)
	}
	return r
}

func (s *swarm) fillResult(t *task, r SubAgentResult) {
	prevConflicts := t.res.Conflicts
	t.res = activities.SubtaskResult{
		ID: t.sub.ID, Name: t.sub.Name, Stage: t.sub.Stage, Dependencies: orEmpty(t.sub.Dependencies),
		Success: r.Success, Status: r.Status, Result: capString(r.Result, s.textCap()), Steps: r.Steps, ToolCalls: r.ToolCalls,
		ExecutionTimeMs: r.ExecutionTimeMs, Error: capString(r.Error, maxErrorText), Branch: r.Branch, Commit: r.Commit,
		FilesChanged: orEmpty(r.FilesChanged), Merge: activities.MergeSkipped, Conflicts: orEmpty(prevConflicts),
		ExitReason: r.ExitReason, Attempts: t.attempt, Worktree: r.Worktree,
		PromptTokens: r.Usage.PromptTokens, CompletionTokens: r.Usage.CompletionTokens, LLMCalls: r.LLMCalls,
		UsageEstimated: r.Usage.Estimated || (t.first != nil && t.first.Usage.Estimated),
	}
	if t.first != nil {
		// Every figure counts both attempts, as the run's totals do.
		t.res.ToolCalls += t.first.ToolCalls
		t.res.Steps += t.first.Steps
		t.res.ExecutionTimeMs += t.first.ExecutionTimeMs
		t.res.PromptTokens += t.first.Usage.PromptTokens
		t.res.CompletionTokens += t.first.Usage.CompletionTokens
		t.res.LLMCalls += t.first.LLMCalls
		if !r.Success {
			// A failed re-run must still say where the first attempt's work is.
			t.res.Error = joinErr(t.res.Error, keptNote(t.first))
		}
	}
	if r.Success && !r.Changed {
		t.res.Merge = activities.MergeNoChanges
	}
	if !r.Success && r.Commit != "" && !r.Changed && t.sub.NeedsWorktree && r.ExitReason == ExitCompleted {
		t.res.Merge = activities.MergeNoChanges
	}
}

// merge puts a finished subtask on the integration branch. A conflict gets one
// re-run from the new head when resolve_conflicts is on; its first attempt's
// branch and commit are kept either way.
func (s *swarm) merge(ctx workflow.Context, t *task) {
	s.showBeforeWait(ctx)
	var m activities.MergeSubtaskResult
	err := s.onHost(ctx, gitTimeout, "merge "+t.sub.ID, a.MergeSubtask, activities.MergeSubtaskInput{
		RunID: s.runID, RepoPath: s.prep.RepoRoot, IntegrationBranch: s.branch,
		SubtaskID: t.sub.ID, Name: t.sub.Name, Commit: t.last.Commit,
	}, &m)
	if err != nil {
		s.mergeFailed(ctx, t, err)
		return
	}
	if m.Status == activities.MergeConflict {
		s.onConflict(ctx, t, m.Conflicts)
		return
	}
	s.applyMerge(ctx, t, m)
}

// mergeFailed books a merge activity that failed: the subtask fails, its
// commit kept on its branch.
func (s *swarm) mergeFailed(ctx workflow.Context, t *task, err error) {
	t.res.Success, t.res.Error = false, "merge failed: "+err.Error()
	s.event(ctx, "failed", t.sub.ID, "merge failed: "+err.Error())
}

// applyMerge books a merge outcome other than a conflict.
func (s *swarm) applyMerge(ctx workflow.Context, t *task, m activities.MergeSubtaskResult) {
	switch m.Status {
	case activities.MergeMerged:
		s.head = m.Commit
		t.res.Merge, t.res.MergeCommit = activities.MergeMerged, m.Commit
		s.event(ctx, "merged", t.sub.ID, fmt.Sprintf("merged into %s at %s", s.branch, activities.ShortSHA(m.Commit)))
		if s.verifyEach() && !s.runVerify(ctx, t.sub.ID) {
			t.res.VerifyFailed = s.verify.BrokenBy == t.sub.ID
		}
	case activities.MergeNoChanges:
		t.res.Merge = activities.MergeNoChanges
	default:
		t.res.Success, t.res.Error = false, fmt.Sprintf("merge returned unknown status %q", m.Status)
	}
}

// verifyEach: the verify command runs after every merge.
func (s *swarm) verifyEach() bool { return s.in.VerifyCommand != "" && s.in.VerifyMode == "each" }

func (s *swarm) onConflict(ctx workflow.Context, t *task, paths []string) {
	t.res.Conflicts = orEmpty(paths)
	s.event(ctx, "conflict", t.sub.ID, "merge conflict in "+strings.Join(paths, ", "))
	rerun := s.in.ResolveConflicts && t.attempt == 1 && ctx.Err() == nil && s.stepAllowance() > 0
	if rerun && !s.canSpawnExtra() {
		rerun = false
		t.res.Error = joinErr(t.res.Error, fmt.Sprintf("not re-run to resolve the conflict: max_subagents (%d) reached", s.in.Limits.MaxSubagents))
		s.event(ctx, "conflict", t.sub.ID, fmt.Sprintf("not re-run: max_subagents (%d) reached", s.in.Limits.MaxSubagents))
	}
	if rerun {
		first := t.last
		t.first = &first
		t.conflict = &activities.ConflictInfo{Paths: paths, FirstBase: first.BaseCommit, FirstCommit: first.Commit}
		s.launch(ctx, t, s.stepAllowance())
		return
	}
	t.res.Success, t.res.Merge = false, activities.MergeConflict
	t.res.Error = joinErr(t.res.Error, fmt.Sprintf("merge conflict in %s; the work is kept on branch %s", strings.Join(paths, ", "), t.res.Branch))
	if t.first != nil {
		t.res.Error = joinErr(t.res.Error, keptNote(t.first))
	}
}

// canSpawnExtra reports whether a sub-agent beyond the plan (a conflict
// re-run) fits under max_subagents, counting the ones already spawned and
// a slot for every planned subtask that has not started yet.
func (s *swarm) canSpawnExtra() bool {
	committed := s.spawned
	for _, t := range s.tasks {
		if t.state == statePending {
			committed++
		}
	}
	return committed < s.in.Limits.MaxSubagents
}

func (s *swarm) complete(t *task, status, errText string) {
	t.state = stateDone
	t.res = activities.SubtaskResult{
		ID: t.sub.ID, Name: t.sub.Name, Stage: t.sub.Stage, Dependencies: orEmpty(t.sub.Dependencies),
		Status: status, Error: errText, FilesChanged: []string{}, Merge: activities.MergeSkipped, Conflicts: []string{},
	}
}

// capString cuts s to at most n bytes, on a character boundary, marking
// the cut.
func capString(s string, n int) string { return textcut.Head(s, n, "\n...[truncated]") }

func orEmpty(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}
