package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"codeswarm/activities"
)

// childChannels are the run's lines to its sub-agents: signals it sends
// (inflight until delivered), usage reports they send (reports), the ends
// of sub-agents an earlier run started, which AwaitChildren reports (ends),
// and the cancel of that AwaitChildren call (stopAwait).
type childChannels struct {
	inflight   int
	reports    workflow.ReceiveChannel
	ends       workflow.ReceiveChannel
	stopAwait  workflow.CancelFunc
	cancelSent bool // the run's cancellation went to inherited sub-agents
}

// startChild starts t's sub-agent on the run's current workspace host. After
// a move it gets a new workflow ID and branch, resuming from its old branch.
func (s *swarm) startChild(ctx workflow.Context, t *Task) {
	summary, details := childMetadata(t)
	opts := workflow.ChildWorkflowOptions{
		WorkflowID: t.ChildID,
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
		TaskQueue: s.Prep.WorkspaceQueue,
	}
	cctx := workflow.WithChildOptions(ctx, opts)
	in := SubAgentInput{
		RunID:              s.runID,
		ParentWorkflowID:   s.runID,
		Subtask:            t.Sub,
		Attempt:            t.Attempt,
		RepoPath:           s.Prep.RepoRoot,
		IntegrationBranch:  s.branch,
		Branch:             t.Branch,
		WorkspaceQueue:     s.Prep.WorkspaceQueue,
		DepContext:         s.plan.depContext(t),
		Conflict:           t.Conflict,
		Model:              s.in.Model,
		Limits:             s.in.Limits,
		MaxSteps:           t.Reserved,
		Tools:              s.in.Tools,
		ContinueAsNewEvery: s.in.ContinueAsNewEvery,
		ResumeFrom:         t.ResumeFrom,
		Control:            s.controlFor(t),
		LLMQueue:           llmQueueOf(ctx),
		FastModel:          s.FastModel,
		NoCache:            s.in.NoCache,
		LocalGit:           localGitTree(s.Prep.TreeFiles),
	}
	if t.Reserved > 0 {
		// It holds a chunk and asks for more, up to its own cap.
		in.MaxSteps, in.StepGrant = s.in.Limits.MaxStepsPerSubagent, t.Reserved
	}
	t.future = workflow.ExecuteChildWorkflow(cctx, SubAgentWorkflowName, in)
}

// onDone records the end of a sub-agent this run started.
func (s *swarm) onDone(ctx workflow.Context, t *Task, f workflow.Future) {
	if f != workflow.Future(t.future) {
		return // a sub-agent a move replaced
	}
	var r SubAgentResult
	err := f.Get(ctx, &r)
	s.finishChildren(ctx, childEnd{t: t, r: r, err: err})
}

// signal sends sig to t's sub-agent once it has started, by workflow
// ID so that it reaches the current run after a continue-as-new. Signals
// are issued in the order they were sent; one to a sub-agent that ended is
// dropped. It signals the sub-agent's current workflow ID (a move renames
// it), a sub-agent an earlier run started (no future here) at once, and
// counts the signal in flight until it is delivered, so the run does not
// continue as new before.
func (c *childChannels) signal(ctx workflow.Context, t *Task, sig ControlSignal) {
	id := t.ChildID
	fut := t.future
	c.inflight++
	workflow.Go(ctx, func(gctx workflow.Context) {
		defer func() { c.inflight-- }()
		if fut != nil && fut.GetChildWorkflowExecution().Get(gctx, nil) != nil {
			return
		}
		_ = workflow.SignalExternalWorkflow(gctx, id, "", agentControlSignal, sig).Get(gctx, nil)
	})
}

// awaitInherited has AwaitChildren report the end of every sub-agent an
// earlier run started. It runs detached from the run's cancellation, so a
// cancelled run still learns that its inherited sub-agents ended.
func (s *swarm) awaitInherited(ctx workflow.Context) {
	var ids []string
	for _, t := range s.plan.Tasks {
		if t.State == stateRunning {
			ids = append(ids, t.ChildID)
		}
	}
	if len(ids) == 0 {
		return
	}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	actx, cancel := workflow.WithCancel(dctx)
	s.children.stopAwait = cancel
	actx = workflow.WithActivityOptions(actx, workflow.ActivityOptions{
		TaskQueue:           s.mainQueue,
		StartToCloseTimeout: watchLifetime,
		HeartbeatTimeout:    heartbeatTimeout,
		Summary:             activities.FirstLine(fmt.Sprintf("await %d inherited sub-agents", len(ids)), summaryCap),
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    10 * time.Second,
		},
	})
	workflow.ExecuteActivity(actx, a.AwaitChildren, activities.AwaitChildrenInput{
		ParentID: s.runID,
		Children: ids,
	})
}

// onChildDone records an inherited sub-agent's end. A repeat (AwaitChildren
// retried) or the end of a sub-agent a move replaced is ignored.
func (s *swarm) onChildDone(ctx workflow.Context, d activities.ChildDone) {
	if e, ok := s.plan.inheritedEnd(d); ok {
		s.finishChild(ctx, e.t, e.r, e.err)
	}
}

// inheritedEnd decodes an inherited sub-agent's end; false for a repeat or
// a sub-agent a move replaced.
func (p *taskTable) inheritedEnd(d activities.ChildDone) (childEnd, bool) {
	t := p.inherited(d.ChildWorkflowID)
	if t == nil {
		return childEnd{}, false
	}
	var r SubAgentResult
	var err error
	switch {
	case d.Cancelled:
		err = temporal.NewCanceledError(d.Error)
	case d.Error != "":
		err = errors.New(d.Error)
	default:
		if jerr := json.Unmarshal(d.Result, &r); jerr != nil {
			err = fmt.Errorf("decode the result of %s: %w", d.ChildWorkflowID, jerr)
		}
	}
	return childEnd{t: t, r: r, err: err}, true
}

// cancelInherited passes the run's cancellation on to the sub-agents an
// earlier run started (those started by this run get it from their
// context), once; their ends come back through AwaitChildren.
func (s *swarm) cancelInherited(ctx workflow.Context) {
	if ctx.Err() == nil || s.children.cancelSent {
		return
	}
	s.children.cancelSent = true
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	for _, t := range s.plan.Tasks {
		if t.State == stateRunning && t.future == nil {
			id := t.ChildID
			f := workflow.RequestCancelExternalWorkflow(dctx, id, "")
			workflow.Go(dctx, func(gctx workflow.Context) {
				if err := f.Get(gctx, nil); err != nil {
					workflow.GetLogger(gctx).Warn("cancel an inherited sub-agent", "child", id, "error", err)
				}
			})
		}
	}
}

// childEnd is a sub-agent's end, waiting to be recorded.
type childEnd struct {
	t   *Task
	r   SubAgentResult
	err error
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
		e, ok := s.plan.inheritedEnd(d)
		if ok && e.t != except && !slices.ContainsFunc(out, func(o childEnd) bool { return o.t == e.t }) {
			out = append(out, e) // a repeat report of one end is ignored, as onChildDone does
		}
	}
	return out
}
