package workflows

import (
	"errors"
	"fmt"
	"strings"

	"go.temporal.io/sdk/workflow"

	"codeswarm/activities"
	"codeswarm/control"
)

func (s *swarm) checkPause(req control.PauseRequest) error {
	if err := s.ended(); err != nil {
		return err
	}
	switch s.view.State {
	case control.RunStatePaused:
		return fmt.Errorf("run %s is already paused (%s)", s.runID, s.view.StateReason)
	case control.RunStateAwaitingApproval:
		return fmt.Errorf("run %s is awaiting approval of its plan: nothing runs yet; approve or reject it", s.runID)
	}
	return nil
}

// pause stops the run: running sub-agents stop before their next model
// call (after the tool results of their current step are recorded), and
// no subtask starts.
func (s *swarm) pause(ctx workflow.Context, req control.PauseRequest) (control.ControlReply, error) {
	reason := strings.TrimSpace(req.Reason)
	if reason == "" {
		reason = "paused by codeswarm pause"
	}
	s.view.setState(ctx, control.RunStatePaused, reason)
	n := s.signalPause(ctx, true)
	return s.view.reply(fmt.Sprintf("run %s paused: %d running sub-agents stop after their current step; nothing new starts", s.runID, n)), nil
}

func (s *swarm) signalPause(ctx workflow.Context, paused bool) int {
	s.steer.PauseSeq++
	n := 0
	for _, t := range s.plan.Tasks {
		if t.State == stateRunning {
			s.children.signal(ctx, t, ControlSignal{
				Kind:   signalPause,
				Seq:    s.steer.PauseSeq,
				Paused: paused,
			})
			n++
		}
	}
	return n
}

func (s *swarm) checkResume(req control.ResumeRequest) error {
	if req.AddTokens < 0 || req.AddUSD < 0 {
		return errors.New("--add-tokens and --add-usd must be 0 or more")
	}
	if s.view.State != control.RunStatePaused && s.view.State != control.RunStateBudgetPaused {
		return fmt.Errorf("run %s is not paused (state %s)", s.runID, s.view.State)
	}
	if req.AddTokens > 0 && s.budget.MaxTokens == 0 {
		return fmt.Errorf("run %s has no token cap (swarm.max_tokens was 0): --add-tokens has nothing to raise", s.runID)
	}
	if req.AddUSD > 0 && s.budget.MaxUSD == 0 {
		return fmt.Errorf("run %s has no cost cap (swarm.max_cost_usd was 0): --add-usd has nothing to raise", s.runID)
	}
	if s.view.State == control.RunStateBudgetPaused && req.AddTokens == 0 && req.AddUSD == 0 {
		return fmt.Errorf("run %s is paused on its budget (%s): raise it with --add-tokens N or --add-usd X", s.runID, s.view.StateReason)
	}
	return nil
}

// resume raises the caps and lets the run go on; requests the old caps
// could not meet are looked at again.
func (s *swarm) resume(ctx workflow.Context, req control.ResumeRequest) (control.ControlReply, error) {
	s.budget.MaxTokens += req.AddTokens
	s.budget.MaxUSD += req.AddUSD
	wasPaused := s.view.State == control.RunStatePaused
	s.view.setState(ctx, control.RunStateRunning, "")
	if wasPaused {
		s.signalPause(ctx, false)
	}
	s.serve(ctx)
	s.steer.notifyChange()
	msg := fmt.Sprintf("run %s resumed", s.runID)
	if s.view.State == control.RunStateBudgetPaused {
		msg = fmt.Sprintf("run %s is still paused: %s", s.runID, s.view.StateReason)
	}
	return s.view.reply(msg), nil
}

func (s *swarm) checkApprove(control.ApproveRequest) error {
	if s.view.State != control.RunStateAwaitingApproval {
		return fmt.Errorf("run %s is not awaiting approval (state %s)", s.runID, s.view.State)
	}
	return nil
}

func (s *swarm) approve(ctx workflow.Context, _ control.ApproveRequest) (control.ControlReply, error) {
	s.steer.Approval = "approved"
	s.view.setState(ctx, control.RunStateRunning, "")
	return s.view.reply(fmt.Sprintf("plan of run %s approved: %d subtasks start", s.runID, len(s.plan.Tasks))), nil
}

func (s *swarm) checkReject(req control.RejectRequest) error {
	if err := s.checkApprove(control.ApproveRequest{}); err != nil {
		return err
	}
	if strings.TrimSpace(req.Reason) == "" {
		return errors.New("reject needs a reason (--reason TEXT)")
	}
	return nil
}

func (s *swarm) reject(ctx workflow.Context, req control.RejectRequest) (control.ControlReply, error) {
	s.steer.Approval, s.steer.RejectReason = "rejected", strings.TrimSpace(req.Reason)
	s.view.setState(ctx, control.RunStateRejected, s.steer.RejectReason)
	return s.view.reply(fmt.Sprintf("plan of run %s rejected: the run ends without running a subtask", s.runID)), nil
}

// awaitApproval holds a run started with --approve-plan after planning. It
// returns the reason when the plan is rejected.
func (s *swarm) awaitApproval(ctx workflow.Context) string {
	s.view.setState(ctx, control.RunStateAwaitingApproval,
		fmt.Sprintf("the plan (%d subtasks) waits: codeswarm plan %s, then approve or reject --reason", len(s.plan.Tasks), s.runID))
	if err := workflow.Await(ctx, func() bool { return s.steer.Approval != "" }); err != nil {
		return "" // cancelled: the schedule reports every subtask as cancelled
	}
	if s.steer.Approval != "rejected" {
		return ""
	}
	for _, t := range s.plan.Tasks {
		t.complete(activities.StatusCancelled, "not run: the plan was rejected: "+s.steer.RejectReason)
	}
	s.view.event(ctx, "rejected", "", s.steer.RejectReason)
	return s.steer.RejectReason
}

func (s *swarm) checkTell(req control.TellRequest) error {
	if err := s.ended(); err != nil {
		return err
	}
	if strings.TrimSpace(req.Message) == "" {
		return errors.New("the note is empty")
	}
	if req.Subtask == "" {
		if s.plan.countRunning() == 0 {
			return fmt.Errorf("no sub-agent of run %s is running: name a subtask with --subtask (known: %s)", s.runID, s.plan.knownIDs())
		}
		return nil
	}
	t := s.plan.byID(req.Subtask)
	if t == nil {
		return fmt.Errorf("run %s has no subtask %q (known: %s)", s.runID, req.Subtask, s.plan.knownIDs())
	}
	if t.State == stateDone {
		return fmt.Errorf("subtask %s has ended (%s): it reads no more notes", t.Sub.ID, t.Res.Status)
	}
	return nil
}

// tell delivers a note to running sub-agents now, or to a subtask that has
// not started when it starts.
func (s *swarm) tell(ctx workflow.Context, req control.TellRequest) (control.ControlReply, error) {
	msg := strings.TrimSpace(req.Message)
	var sent []string
	for _, t := range s.plan.Tasks {
		if req.Subtask != "" && t.Sub.ID != req.Subtask {
			continue
		}
		switch t.State {
		case stateRunning:
			s.children.signal(ctx, t, ControlSignal{Kind: signalTell, Notes: []string{msg}})
			sent = append(sent, t.Sub.ID)
		case statePending:
			if req.Subtask == "" {
				continue
			}
			t.Control.Notes = append(t.Control.Notes, msg)
			s.view.event(ctx, "note", t.Sub.ID, "note queued until it starts")
			return s.view.reply(fmt.Sprintf("note queued for %s: it reads it when it starts", t.Sub.ID)), nil
		}
	}
	s.view.event(ctx, "note", strings.Join(sent, ","), activities.FirstLine(msg, 120))
	return s.view.reply(fmt.Sprintf("note sent to %s: read before the next model call", strings.Join(sent, ", "))), nil
}

// notifyChange ends the schedule's wait after the state changed.
func (st *steering) notifyChange() {
	if st.changed != nil {
		st.changed.SendAsync(true)
	}
}

// holding: the run is paused, so nothing new starts.
func (v *runView) holding() bool {
	return v.State == control.RunStatePaused || v.State == control.RunStateBudgetPaused
}

// waitsForResume: nothing runs, subtasks are left, and the run is paused:
// the schedule waits for resume or cancel instead of ending.
func (s *swarm) waitsForResume(ctx workflow.Context) bool {
	return ctx.Err() == nil && s.view.holding() && s.plan.hasPending()
}

// addStateChange lets the schedule's select return when the state changes (or,
// while nothing runs, when the run is cancelled).
func (s *swarm) addStateChange(ctx workflow.Context, sel workflow.Selector) {
	sel.AddReceive(s.steer.changed, func(c workflow.ReceiveChannel, _ bool) { c.ReceiveAsync(nil) })
	if s.plan.Running == 0 {
		sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) {})
	}
}

// controlFor is the steering a sub-agent starts with.
func (s *swarm) controlFor(t *Task) *AgentControl {
	if t.Control.Usage.Total() > 0 {
		// The sub-agent a move terminated: what it last reported stays
		// spent (its attempt never returns a result that would count it).
		s.budget.charge(t.Control)
	}
	notes := t.Control.Notes
	t.Control = TaskControl{}
	return &AgentControl{
		Budget:   s.in.Budget,
		Notes:    notes,
		Paused:   s.view.State == control.RunStatePaused,
		PauseSeq: s.steer.PauseSeq,
	}
}
