package workflows

import (
	"fmt"
	"slices"
	"strings"

	"go.temporal.io/sdk/workflow"

	"codeswarm/activities"
)

// childEnd is a sub-agent's end, waiting to be booked.
type childEnd struct {
	t   *Task
	r   SubAgentResult
	err error
}

// finishChildren books first and, when first is to be merged and other
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
		if s.bookEnd(ctx, e.t, e.r, e.err) {
			merges = append(merges, e.t)
		}
	}
	s.mergeAll(ctx, merges)
	for _, e := range ends {
		if e.t.State == stateDone {
			s.publishResult(e.t)
		}
	}
	s.touch()
}

// batchable: first's change is to be merged, merges are not verified one by
// one (each needs its own verify), and another end is already in.
func (s *swarm) batchable(first childEnd) bool {
	if first.err != nil || !first.r.Success || !first.r.Changed || !s.in.AutoMerge || s.verifyEach() {
		return false
	}
	return s.plan.endWaiting(first.t) || s.children.ends.Len() > 0
}

// readyEnds takes every end already in, other than except's: the ends of
// sub-agents this run started, in plan order, then inherited ones in the
// order they were reported. A ready future's Get does not block.
func (s *swarm) readyEnds(ctx workflow.Context, except *Task) []childEnd {
	var out []childEnd
	for _, t := range s.plan.Tasks {
		if t != except && t.State == stateRunning && t.future != nil && t.future.IsReady() {
			var r SubAgentResult
			err := t.future.Get(ctx, &r)
			out = append(out, childEnd{t: t, r: r, err: err})
		}
	}
	for {
		var d activities.ChildDone
		if !s.children.ends.ReceiveAsync(&d) {
			break
		}
		e, ok := s.inheritedEnd(d)
		if ok && e.t != except && !slices.ContainsFunc(out, func(o childEnd) bool { return o.t == e.t }) {
			out = append(out, e) // a repeat report of one end is ignored, as onChildDone does
		}
	}
	return out
}

// mergeAll merges the booked subtasks' changes in their order: a single one
// as merge does, several in one MergeSubtasks activity. Each outcome is then
// booked as merge books it; conflicts last, so a conflict re-run starts from
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
		s.onConflict(ctx, ts[i], out[i].Conflicts)
	}
}

// mergeBatch runs MergeSubtasks for ts on the run's host.
func (s *swarm) mergeBatch(ctx workflow.Context, ts []*Task) ([]activities.MergeSubtaskResult, error) {
	s.showBeforeWait(ctx)
	items := make([]activities.MergeSubtaskInput, len(ts))
	ids := make([]string, len(ts))
	for i, t := range ts {
		items[i] = activities.MergeSubtaskInput{SubtaskID: t.Sub.ID, Name: t.Sub.Name, Commit: t.last.Commit}
		ids[i] = t.Sub.ID
	}
	var out activities.MergeSubtasksResult
	err := s.onHost(ctx, gitTimeout, fmt.Sprintf("merge %d: %s", len(ts), strings.Join(ids, ", ")), a.MergeSubtasks, activities.MergeSubtasksInput{
		RunID: s.runID, RepoPath: s.Prep.RepoRoot, IntegrationBranch: s.branch, Head: s.merges.Head, Items: items,
	}, &out)
	if err == nil && len(out.Results) != len(ts) {
		err = fmt.Errorf("merge returned %d outcomes for %d subtasks", len(out.Results), len(ts))
	}
	return out.Results, err
}
