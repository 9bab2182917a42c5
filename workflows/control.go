package workflows

import (
	"fmt"

	"go.temporal.io/sdk/workflow"

	"codeswarm/activities"
	"codeswarm/control"
)

// Signals between a run and its sub-agents (internal to the workflows).
const (
	// agentControlSignal carries a ControlSignal from the run to a sub-agent.
	agentControlSignal = "agent_control"
	// budgetReportSignal carries a BudgetReport from a sub-agent to the run.
	budgetReportSignal = "budget_report"
)

// ControlSignal kinds.
const (
	signalPause = "pause"
	signalGrant = "grant"
	signalTell  = "tell"
)

// ControlSignal is what the run tells a running sub-agent: pause or go on
// (the highest Seq wins), a new allowance (cumulative), or notes.
type ControlSignal struct {
	Kind        string   `json:"kind"`
	Seq         int      `json:"seq,omitempty"`
	Paused      bool     `json:"paused,omitempty"`
	GrantTokens int64    `json:"grant_tokens,omitempty"`
	GrantUSD    float64  `json:"grant_usd,omitempty"`
	Notes       []string `json:"notes,omitempty"`
	// GrantSteps is the sub-agent's step allowance (cumulative; with
	// SubAgentInput.StepGrant); StepsDenied says none is left for it.
	GrantSteps  int  `json:"grant_steps,omitempty"`
	StepsDenied bool `json:"steps_denied,omitempty"`
}

// AgentControl is a sub-agent's share of the run's steering: its budget
// rules and the notes sent to it before it started.
type AgentControl struct {
	Budget RunBudget `json:"budget"`
	Notes  []string  `json:"notes,omitempty"`
	// Paused starts the sub-agent paused (a conflict re-run launched while
	// the run is paused); PauseSeq orders it with later pause signals.
	Paused   bool `json:"paused,omitempty"`
	PauseSeq int  `json:"pause_seq,omitempty"`
}

// steerState is the run's steering that a continued run carries on.
type steerState struct {
	PauseSeq     int    `json:"pause_seq,omitempty"` // orders pause and resume signals
	Approval     string `json:"approval,omitempty"`  // "", "approved" or "rejected"
	RejectReason string `json:"reject_reason,omitempty"`
}

// steering owns pause, resume and plan approval; changed ends the wait of the
// schedule when one of them (or the budget) lets it go on.
type steering struct {
	steerState
	changed workflow.Channel
}

// registerControl sets up the steering updates, the plan query and the
// sub-agents' usage reports. A validator's refusal writes nothing to history.
func (s *swarm) registerControl(ctx workflow.Context) error {
	s.steer.changed = workflow.NewBufferedChannel(ctx, 1)
	s.children.reports = workflow.GetSignalChannel(ctx, budgetReportSignal)
	s.children.ends = workflow.GetSignalChannel(ctx, activities.ChildDoneSignal)
	workflow.Go(ctx, func(gctx workflow.Context) {
		for {
			var r BudgetReport
			s.children.reports.Receive(gctx, &r)
			s.onReport(gctx, r)
		}
	})
	if err := workflow.SetQueryHandler(ctx, control.PlanQueryName, s.planView); err != nil {
		return err
	}
	type update struct {
		name    string
		handler any
		check   any
	}
	for _, u := range []update{
		{control.PauseUpdateName, s.pause, s.checkPause},
		{control.ResumeUpdateName, s.resume, s.checkResume},
		{control.ApproveUpdateName, s.approve, s.checkApprove},
		{control.RejectUpdateName, s.reject, s.checkReject},
		{control.TellUpdateName, s.tell, s.checkTell},
	} {
		if err := workflow.SetUpdateHandlerWithOptions(ctx, u.name, u.handler, workflow.UpdateHandlerOptions{Validator: u.check}); err != nil {
			return err
		}
	}
	return nil
}

func (v *runView) reply(msg string) control.ControlReply {
	return control.ControlReply{State: v.State, Message: msg}
}

// ended refuses steering a run that is past its sub-agents.
func (s *swarm) ended() error {
	if s.phase == PhaseFinishing || s.phase == PhaseDone || s.phase == PhaseVerifying {
		return fmt.Errorf("run %s is %s: nothing left to steer", s.runID, s.phase)
	}
	return nil
}
