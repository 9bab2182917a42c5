package workflows

import (
	"cmp"
	"strconv"

	"go.temporal.io/sdk/workflow"

	"codeswarm/activities"
	"codeswarm/control"
)

// RunBudget is what a run may spend in tokens and money, and what its
// models cost. The CLI fills it from swarm.max_* and llm.prices; 0 caps are
// no caps. It holds prices, never keys.
type RunBudget struct {
	MaxTokens             int64            `json:"max_tokens,omitempty"`
	MaxCostUSD            float64          `json:"max_cost_usd,omitempty"`
	MaxTokensPerSubagent  int64            `json:"max_tokens_per_subagent,omitempty"`
	MaxCostUSDPerSubagent float64          `json:"max_cost_usd_per_subagent,omitempty"`
	Price                 activities.Price `json:"price"`
	PlannerPrice          activities.Price `json:"planner_price"`
	// MaxAnswerTokens is llm.max_tokens: the longest answer a call can get,
	// which every estimate of a call's cost assumes.
	MaxAnswerTokens int `json:"max_answer_tokens,omitempty"`
	// FirstPromptTokens estimates a conversation's first prompt (system
	// prompt and tool definitions) before any call has reported its size.
	FirstPromptTokens int `json:"first_prompt_tokens,omitempty"`
}

// Defaults the CLI uses for the estimates.
const (
	// DefaultFirstPromptTokens is a generous size of the system prompt and
	// tool definitions that open every conversation.
	DefaultFirstPromptTokens = 6000
	// grantCalls is how many calls of the size asked for a grant covers
	// (when the budget has room), so a sub-agent asks the parent about once
	// every grantCalls steps rather than before every step.
	grantCalls = 4
	// reportEvery is how often (in steps) a sub-agent reports its usage to
	// the parent between requests, for the live table.
	reportEvery = 10
)

// BudgetReport is a sub-agent's usage so far (cumulative, so a repeated or
// late report does no harm) and, with Ask, what its next call may cost.
type BudgetReport struct {
	Subtask    string           `json:"subtask"`
	Attempt    int              `json:"attempt"`
	Step       int              `json:"step"`
	Usage      activities.Usage `json:"usage"`
	Ask        bool             `json:"ask,omitempty"`
	NeedTokens int64            `json:"need_tokens,omitempty"`
	NeedUSD    float64          `json:"need_usd,omitempty"`
	// NeedSteps asks for more steps (SubAgentInput.StepGrant).
	NeedSteps int `json:"need_steps,omitempty"`
}

// onReport records a sub-agent's usage and serves its request.
func (s *swarm) onReport(ctx workflow.Context, r BudgetReport) {
	t := s.plan.byID(r.Subtask)
	if t == nil || t.State != stateRunning || t.Attempt != r.Attempt || r.Step < t.Control.Step {
		return // a late report from an attempt that has ended
	}
	t.Control.Step, t.Control.Usage = r.Step, r.Usage
	if r.Ask {
		t.Control.Ask = &r
	}
	s.serve(ctx)
	s.view.refresh(ctx)
	if s.handOverDue(ctx) {
		s.steer.notifyChange() // reports alone grow the history: the schedule hands over
	}
}

// serve grants what waiting sub-agents ask for. When a request cannot be
// met and no other sub-agent can move either, the run pauses on its
// budget; when every request is met again, it runs on.
func (s *swarm) serve(ctx workflow.Context) {
	if s.view.State == control.RunStatePaused || s.view.State == control.RunStateAwaitingApproval {
		return
	}
	blocked := ""
	for _, t := range s.plan.Tasks {
		if t.State == stateRunning && t.Control.Ask != nil {
			if why := s.tryGrant(ctx, t); why != "" && blocked == "" {
				blocked = why
			}
		}
	}
	if blocked != "" && s.plan.allRunningWait() && s.denySteps(ctx) {
		// Steps cannot be added to a run: those waiting stop instead.
		blocked = ""
		for _, t := range s.plan.Tasks {
			if t.State == stateRunning && t.Control.Ask != nil {
				blocked = cmp.Or(blocked, s.tryGrant(ctx, t))
			}
		}
	}
	switch {
	case blocked != "" && s.plan.allRunningWait():
		s.view.setState(ctx, control.RunStateBudgetPaused, blocked)
	case blocked == "" && s.view.State == control.RunStateBudgetPaused:
		s.view.setState(ctx, control.RunStateRunning, "")
		s.steer.notifyChange()
	}
}

// allRunningWait: every running sub-agent waits for allowance, so nothing
// will hand any back.
func (p *taskTable) allRunningWait() bool {
	for _, t := range p.Tasks {
		if t.State == stateRunning && t.Control.Ask == nil {
			return false
		}
	}
	return true
}

// tryGrant raises t's allowance to cover its next call, and up to
// grantCalls-1 more of the same size out of its fair share of what is left
// (so the first sub-agent to ask does not take it all); it returns why it
// cannot.
func (s *swarm) tryGrant(ctx workflow.Context, t *Task) string {
	if t.Control.Ask.NeedSteps > 0 {
		return s.tryGrantSteps(ctx, t)
	}
	grantT, grantUSD, why := s.budget.allowance(t, s.plan.running())
	if why != "" {
		return why
	}
	t.Control.GrantTokens, t.Control.GrantUSD, t.Control.Ask = grantT, grantUSD, nil
	s.children.signal(ctx, t, ControlSignal{
		Kind:        signalGrant,
		GrantTokens: grantT,
		GrantUSD:    grantUSD,
	})
	return ""
}

// tryGrantSteps gives t another chunk of steps out of what the run's step
// budget has left, up to max_steps_per_subagent; it returns why it cannot.
func (s *swarm) tryGrantSteps(ctx workflow.Context, t *Task) string {
	g, why := s.budget.moreSteps(t)
	if why != "" {
		return why
	}
	t.Reserved += g
	s.budget.Reserved += g
	t.Control.Ask = nil
	s.children.signal(ctx, t, ControlSignal{Kind: signalGrant, GrantSteps: t.Reserved})
	return ""
}

// denySteps answers every sub-agent waiting for steps that none are left:
// when every running sub-agent waits, none will hand steps back.
func (s *swarm) denySteps(ctx workflow.Context) bool {
	denied := false
	for _, t := range s.plan.Tasks {
		if t.State == stateRunning && t.Control.Ask != nil && t.Control.Ask.NeedSteps > 0 {
			t.Control.Ask = nil
			s.children.signal(ctx, t, ControlSignal{Kind: signalGrant, StepsDenied: true})
			denied = true
		}
	}
	return denied
}

// afterChild records an ended sub-agent: its cost joins the run's, its
// allowance goes back, and requests it was holding up may be served.
func (s *swarm) afterChild(ctx workflow.Context, t *Task, r SubAgentResult) {
	price := s.in.Budget.Price
	s.budget.Cost += price.Cost(r.Usage)
	t.Res.CostUSD = price.Cost(activities.Usage{
		PromptTokens:       t.Res.PromptTokens,
		CompletionTokens:   t.Res.CompletionTokens,
		CachedPromptTokens: t.Res.CachedPromptTokens,
	})
	notes := t.Control.Notes
	t.Control = TaskControl{Notes: notes}
	s.serve(ctx)
}

// thousands writes n with thousands separators: 200,000.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	out := ""
	for len(s) > 3 {
		out = "," + s[len(s)-3:] + out
		s = s[:len(s)-3]
	}
	out = s + out
	if neg {
		out = "-" + out
	}
	return out
}
