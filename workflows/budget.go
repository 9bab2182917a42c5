package workflows

import (
	"cmp"
	"fmt"
	"strconv"

	"go.temporal.io/sdk/workflow"

	"codeswarm/activities"
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

// taskCtl is the parent's ledger of one running sub-agent and the notes
// waiting for a subtask that has not started.
type taskCtl struct {
	grantTokens int64
	grantUSD    float64
	usage       activities.Usage
	step        int
	ask         *BudgetReport
	notes       []string
}

// onReport books a sub-agent's usage and serves its request.
func (s *swarm) onReport(ctx workflow.Context, r BudgetReport) {
	t := s.byID(r.Subtask)
	if t == nil || t.state != stateRunning || t.attempt != r.Attempt || r.Step < t.ctl.step {
		return // a late report from an attempt that has ended
	}
	t.ctl.step, t.ctl.usage = r.Step, r.Usage
	if r.Ask {
		t.ctl.ask = &r
	}
	s.serve(ctx)
	s.refresh(ctx)
	if s.canDue(ctx) {
		s.poke() // reports alone grow the history: the schedule hands over
	}
}

// serve grants what waiting sub-agents ask for. When a request cannot be
// met and no other sub-agent can move either, the run pauses on its
// budget; when every request is met again, it runs on.
func (s *swarm) serve(ctx workflow.Context) {
	if s.state == activities.RunStatePaused || s.state == activities.RunStateAwaitingApproval {
		return
	}
	blocked := ""
	for _, t := range s.tasks {
		if t.state == stateRunning && t.ctl.ask != nil {
			if why := s.tryGrant(ctx, t); why != "" && blocked == "" {
				blocked = why
			}
		}
	}
	if blocked != "" && s.allRunningWait() && s.denySteps(ctx) {
		// Steps cannot be added to a run: those waiting stop instead.
		blocked = ""
		for _, t := range s.tasks {
			if t.state == stateRunning && t.ctl.ask != nil {
				blocked = cmp.Or(blocked, s.tryGrant(ctx, t))
			}
		}
	}
	switch {
	case blocked != "" && s.allRunningWait():
		s.setState(ctx, activities.RunStateBudgetPaused, blocked)
	case blocked == "" && s.state == activities.RunStateBudgetPaused:
		s.setState(ctx, activities.RunStateRunning, "")
		s.poke()
	}
}

// allRunningWait: every running sub-agent waits for allowance, so nothing
// will hand any back.
func (s *swarm) allRunningWait() bool {
	for _, t := range s.tasks {
		if t.state == stateRunning && t.ctl.ask == nil {
			return false
		}
	}
	return true
}

// committed is what the run has spent or handed out: finished calls plus
// every running sub-agent's allowance (or its use, when larger).
func (s *swarm) committed() (int64, float64) {
	tokens, usd := s.usage.Total(), s.ctl.cost
	for _, t := range s.tasks {
		if t.state == stateRunning {
			tokens += max(t.ctl.grantTokens, t.ctl.usage.Total())
			usd += max(t.ctl.grantUSD, s.in.Budget.Price.Cost(t.ctl.usage))
		}
	}
	return tokens, usd
}

// spent is what finished and running calls have used.
func (s *swarm) spent() (int64, float64) {
	tokens, usd := s.usage.Total(), s.ctl.cost
	for _, t := range s.tasks {
		if t.state == stateRunning {
			tokens += t.ctl.usage.Total()
			usd += s.in.Budget.Price.Cost(t.ctl.usage)
		}
	}
	return tokens, usd
}

// tryGrant raises t's allowance to cover its next call, and up to
// grantCalls-1 more of the same size out of its fair share of what is left
// (so the first sub-agent to ask does not take it all); it returns why it
// cannot.
func (s *swarm) tryGrant(ctx workflow.Context, t *task) string {
	ask := t.ctl.ask
	if ask.NeedSteps > 0 {
		return s.tryGrantSteps(ctx, t)
	}
	usedT, usedUSD := t.ctl.usage.Total(), s.in.Budget.Price.Cost(t.ctl.usage)
	comT, comUSD := s.committed()
	share := int64(max(1, s.countRunning()))
	grantT, grantUSD := t.ctl.grantTokens, t.ctl.grantUSD
	if s.ctl.maxTokens > 0 {
		room := s.ctl.maxTokens - (comT - max(grantT, usedT))
		if room < usedT+ask.NeedTokens {
			spentT, _ := s.spent()
			return fmt.Sprintf("token cap %s reached (%s used, %s held by running sub-agents; %s's next call may need %s)",
				thousands(s.ctl.maxTokens), thousands(spentT), thousands(comT-spentT), t.sub.ID, thousands(ask.NeedTokens))
		}
		extra := min((grantCalls-1)*ask.NeedTokens, (room-usedT-ask.NeedTokens)/share)
		grantT = max(grantT, usedT+ask.NeedTokens+extra)
	}
	if s.ctl.maxUSD > 0 {
		room := s.ctl.maxUSD - (comUSD - max(grantUSD, usedUSD))
		if room < usedUSD+ask.NeedUSD {
			_, spentUSD := s.spent()
			return fmt.Sprintf("cost cap $%.2f reached ($%.4f spent, $%.4f held by running sub-agents; %s's next call may cost $%.4f)",
				s.ctl.maxUSD, spentUSD, comUSD-spentUSD, t.sub.ID, ask.NeedUSD)
		}
		extra := min((grantCalls-1)*ask.NeedUSD, (room-usedUSD-ask.NeedUSD)/float64(share))
		grantUSD = max(grantUSD, usedUSD+ask.NeedUSD+extra)
	}
	t.ctl.grantTokens, t.ctl.grantUSD, t.ctl.ask = grantT, grantUSD, nil
	s.signalChild(ctx, t, ControlSignal{Kind: signalGrant, GrantTokens: grantT, GrantUSD: grantUSD})
	return ""
}

// tryGrantSteps gives t another chunk of steps out of what the run's step
// budget has left, up to max_steps_per_subagent; it returns why it cannot.
func (s *swarm) tryGrantSteps(ctx workflow.Context, t *task) string {
	room := s.in.Limits.MaxTotalSteps - s.used - s.reserved
	upTo := s.in.Limits.MaxStepsPerSubagent - t.reserved
	if room <= 0 || upTo <= 0 {
		return fmt.Sprintf("step budget spent (max_total_steps=%d: %d used, %d held by running sub-agents)", s.in.Limits.MaxTotalSteps, s.used, s.reserved)
	}
	g := min(s.stepChunk(), room, upTo)
	t.reserved += g
	s.reserved += g
	t.ctl.ask = nil
	s.signalChild(ctx, t, ControlSignal{Kind: signalGrant, GrantSteps: t.reserved})
	return ""
}

// denySteps answers every sub-agent waiting for steps that none are left:
// when every running sub-agent waits, none will hand steps back.
func (s *swarm) denySteps(ctx workflow.Context) bool {
	denied := false
	for _, t := range s.tasks {
		if t.state == stateRunning && t.ctl.ask != nil && t.ctl.ask.NeedSteps > 0 {
			t.ctl.ask = nil
			s.signalChild(ctx, t, ControlSignal{Kind: signalGrant, StepsDenied: true})
			denied = true
		}
	}
	return denied
}

// afterChild books an ended sub-agent: its cost joins the run's, its
// allowance goes back, and requests it was holding up may be served.
func (s *swarm) afterChild(ctx workflow.Context, t *task, r SubAgentResult) {
	price := s.in.Budget.Price
	s.ctl.cost += price.Cost(r.Usage)
	t.res.CostUSD = price.Cost(activities.Usage{PromptTokens: t.res.PromptTokens, CompletionTokens: t.res.CompletionTokens})
	notes := t.ctl.notes
	t.ctl = taskCtl{notes: notes}
	s.serve(ctx)
}

// budgetView is the run's spend against its caps, for the progress query.
func (s *swarm) budgetView() activities.BudgetView {
	tokens, usd := s.spent()
	steps := s.used
	for _, t := range s.tasks {
		if t.state == stateRunning {
			steps += t.ctl.step
		}
	}
	return activities.BudgetView{MaxTokens: s.ctl.maxTokens, MaxCostUSD: s.ctl.maxUSD, Tokens: tokens, CostUSD: usd,
		MaxSteps: s.in.Limits.MaxTotalSteps, Steps: steps}
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
