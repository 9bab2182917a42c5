package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"codeswarm/activities"
)

// mergeQueue is the integration branch as the run has built it: the head
// its merges left and the last verify report. Ended sub-agents' changes
// join it one batch at a time (mergeAll).
type mergeQueue struct {
	Head   string                   `json:"head"`
	Verify *activities.VerifyReport `json:"verify,omitempty"`
}

// merge puts a finished subtask on the integration branch. A conflict gets one
// re-run from the new head when resolve_conflicts is on; its first attempt's
// branch and commit are kept either way.
func (s *swarm) merge(ctx workflow.Context, t *Task) {
	s.view.showBeforeWait(ctx)
	var m activities.MergeSubtaskResult
	err := s.onHost(ctx, gitTimeout, "merge "+t.Sub.ID, a.MergeSubtask, activities.MergeSubtaskInput{
		RunID:             s.runID,
		RepoPath:          s.Prep.RepoRoot,
		IntegrationBranch: s.branch,
		SubtaskID:         t.Sub.ID,
		Name:              t.Sub.Name,
		Commit:            t.last.Commit,
		Worktree:          t.last.Worktree,
	}, &m)
	if err != nil {
		s.mergeFailed(ctx, t, err)
		return
	}
	if m.Status == activities.MergeConflict {
		s.onConflict(ctx, t, m)
		return
	}
	s.applyMerge(ctx, t, m)
}

// mergeFailed records a merge activity that failed: the subtask fails, its
// commit kept on its branch.
func (s *swarm) mergeFailed(ctx workflow.Context, t *Task, err error) {
	t.Res.Success, t.Res.Error = false, "merge failed: "+err.Error()
	s.view.event(ctx, "failed", t.Sub.ID, "merge failed: "+err.Error())
}

// applyMerge records a merge outcome other than a conflict.
func (s *swarm) applyMerge(ctx workflow.Context, t *Task, m activities.MergeSubtaskResult) {
	switch m.Status {
	case activities.MergeMerged:
		s.merges.Head = m.Commit
		t.Res.Merge, t.Res.MergeCommit = activities.MergeMerged, m.Commit
		s.view.event(ctx, "merged", t.Sub.ID, fmt.Sprintf("merged into %s at %s", s.branch, activities.ShortSHA(m.Commit)))
		if s.in.verifyEach() && !s.runVerify(ctx, t.Sub.ID) {
			t.Res.VerifyFailed = s.merges.Verify.BrokenBy == t.Sub.ID
		}
	case activities.MergeNoChanges:
		t.Res.Merge = activities.MergeNoChanges
	default:
		t.Res.Success, t.Res.Error = false, fmt.Sprintf("merge returned unknown status %q", m.Status)
	}
}

// pathListMax is how many paths an event or error line names.
const pathListMax = 20

// pathList names paths in a line: the first pathListMax of them, then how
// many more there are (omitted counts those not even listed).
func pathList(paths []string, omitted int) string {
	if more := len(paths) - pathListMax; more > 0 {
		paths, omitted = paths[:pathListMax], omitted+more
	}
	line := strings.Join(paths, ", ")
	if omitted > 0 {
		line += fmt.Sprintf(" and %d more", omitted)
	}
	return line
}

// verifyEach: the verify command runs after every merge.
func (in SwarmInput) verifyEach() bool { return in.VerifyCommand != "" && in.VerifyMode == "each" }

func (s *swarm) onConflict(ctx workflow.Context, t *Task, m activities.MergeSubtaskResult) {
	paths := m.Conflicts
	t.Res.Conflicts, t.Res.ConflictsOmitted = orEmpty(paths), m.ConflictsOmitted
	s.view.event(ctx, "conflict", t.Sub.ID, "merge conflict in "+pathList(paths, m.ConflictsOmitted))
	rerun := s.in.ResolveConflicts && t.Attempt == 1 && ctx.Err() == nil && s.budget.stepAllowance() > 0
	if rerun && !s.plan.rerunFits(s.in.Limits.MaxSubagents) {
		rerun = false
		t.Res.Error = joinErr(t.Res.Error, fmt.Sprintf("not re-run to resolve the conflict: max_subagents (%d) reached", s.in.Limits.MaxSubagents))
		s.view.event(ctx, "conflict", t.Sub.ID, fmt.Sprintf("not re-run: max_subagents (%d) reached", s.in.Limits.MaxSubagents))
	}
	if rerun {
		first := t.last
		first.Result, first.FilesChanged, first.FilesOmitted = "", nil, 0 // the result counts only its figures and branch
		t.First = &first
		t.Conflict = &activities.ConflictInfo{
			Paths:       paths,
			FirstBase:   first.BaseCommit,
			FirstCommit: first.Commit,
		}
		s.launch(ctx, t, s.budget.stepAllowance())
		return
	}
	t.Res.Success, t.Res.Merge = false, activities.MergeConflict
	t.Res.Error = joinErr(t.Res.Error, fmt.Sprintf("merge conflict in %s; the work is kept on branch %s", pathList(paths, m.ConflictsOmitted), t.Res.Branch))
	if t.First != nil {
		t.Res.Error = joinErr(t.Res.Error, keptNote(t.First))
	}
}

// finishChildren records first and, when first is to be merged and other
// sub-agents' ends are already in, those as well, merging all their changes
// in one activity: one dispatch and one workflow task instead of one of each
// per sub-agent, and one refresh of the live view.
func (s *swarm) finishChildren(ctx workflow.Context, first childEnd) {
	if !s.batchable(first) {
		s.finishChild(ctx, first.t, first.r, first.err)
		return
	}
	ends := append([]childEnd{first}, s.readyEnds(ctx, first.t)...)
	var merges []*Task
	for _, e := range ends {
		if s.recordEnd(ctx, e.t, e.r, e.err) {
			merges = append(merges, e.t)
		}
	}
	s.mergeAll(ctx, merges)
	for _, e := range ends {
		if e.t.State == stateDone {
			s.share.publishResult(e.t)
		}
	}
	s.view.touch()
}

// batchable: first's change is to be merged, merges are not verified one by
// one (each needs its own verify), and another end is already in.
func (s *swarm) batchable(first childEnd) bool {
	if first.err != nil || !first.r.Success || !first.r.Changed || !s.in.AutoMerge || s.in.verifyEach() {
		return false
	}
	return s.plan.endWaiting(first.t) || s.children.ends.Len() > 0
}

// mergeAll merges the recorded subtasks' changes in their order: a single one
// as merge does, several in one MergeSubtasks activity. Each outcome is then
// recorded as merge records it; conflicts last, so a conflict re-run starts from
// (and says it starts from) the head the whole batch left.
func (s *swarm) mergeAll(ctx workflow.Context, ts []*Task) {
	switch len(ts) {
	case 0:
		return
	case 1:
		s.merge(ctx, ts[0])
		return
	}
	out, err := s.mergeBatch(ctx, ts)
	if err != nil {
		for _, t := range ts {
			s.mergeFailed(ctx, t, err)
		}
		return
	}
	var conflicts []int
	for i, t := range ts {
		if out[i].Status == activities.MergeConflict {
			conflicts = append(conflicts, i)
			continue
		}
		s.applyMerge(ctx, t, out[i])
	}
	for _, i := range conflicts {
		s.onConflict(ctx, ts[i], out[i])
	}
}

// mergeBatch runs MergeSubtasks for ts on the run's host.
func (s *swarm) mergeBatch(ctx workflow.Context, ts []*Task) ([]activities.MergeSubtaskResult, error) {
	s.view.showBeforeWait(ctx)
	items := make([]activities.MergeSubtaskInput, len(ts))
	ids := make([]string, len(ts))
	for i, t := range ts {
		items[i] = activities.MergeSubtaskInput{
			SubtaskID: t.Sub.ID,
			Name:      t.Sub.Name,
			Commit:    t.last.Commit,
			Worktree:  t.last.Worktree,
		}
		ids[i] = t.Sub.ID
	}
	var out activities.MergeSubtasksResult
	err := s.onHost(ctx, gitTimeout, fmt.Sprintf("merge %d: %s", len(ts), strings.Join(ids, ", ")), a.MergeSubtasks, activities.MergeSubtasksInput{
		RunID:             s.runID,
		RepoPath:          s.Prep.RepoRoot,
		IntegrationBranch: s.branch,
		Head:              s.merges.Head,
		Items:             items,
	}, &out)
	if err == nil && len(out.Results) != len(ts) {
		err = fmt.Errorf("merge returned %d outcomes for %d subtasks", len(out.Results), len(ts))
	}
	return out.Results, err
}

func (s *swarm) runVerify(ctx workflow.Context, after string) bool {
	timeout := s.in.VerifyTimeout
	if timeout <= 0 {
		timeout = 30 * time.Minute
	}
	s.view.showBeforeWait(ctx)
	var rep activities.VerifyReport
	err := s.onHost(ctx, timeout+time.Minute, "verify: "+s.in.VerifyCommand, a.Verify, activities.VerifyInput{
		RunID:     s.runID,
		RepoPath:  s.Prep.RepoRoot,
		Commit:    s.merges.Head,
		Command:   s.in.VerifyCommand,
		Timeout:   timeout,
		MaxOutput: 8000,
	}, &rep)
	if err != nil {
		rep = activities.VerifyReport{
			Command:  s.in.VerifyCommand,
			Commit:   s.merges.Head,
			ExitCode: -1,
			Output:   "verify could not run: " + err.Error(),
		}
	}
	if !rep.OK && after != "" {
		rep.BrokenBy = after
		if s.merges.Verify != nil && !s.merges.Verify.OK {
			rep.BrokenBy = s.merges.Verify.BrokenBy
		}
	}
	s.merges.Verify = &rep
	s.view.event(ctx, "verify", after, fmt.Sprintf("%q on %s: exit %d", s.in.VerifyCommand, activities.ShortSHA(s.merges.Head), rep.ExitCode))
	return rep.OK
}
