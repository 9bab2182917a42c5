package workflows

import (
	"fmt"

	"codeswarm/activities"
	"codeswarm/control"
)

// ledgerState is what the run has used: the planner's and every ended
// sub-agent's calls and tokens, and the steps of its step budget.
type ledgerState struct {
	Usage    activities.Usage `json:"usage"`
	LLMCalls int              `json:"llm_calls"`
	Used     int              `json:"used"`     // steps used by ended sub-agents
	Reserved int              `json:"reserved"` // steps held by running sub-agents
}

// budgetCaps are the run's token and cost caps (resume raises them) and
// the cost of what ended (the planner and ended sub-agents).
type budgetCaps struct {
	MaxTokens int64   `json:"max_tokens,omitempty"`
	MaxUSD    float64 `json:"max_usd,omitempty"`
	Cost      float64 `json:"cost,omitempty"`
}

// ledger owns the run's budgets: the step budget (max_total_steps, handed
// out in chunks), the token and cost caps, and what has been spent.
type ledger struct {
	ledgerState
	budgetCaps
	limits activities.Limits
	rules  RunBudget
}

func newLedger(in SwarmInput) ledger {
	return ledger{
		budgetCaps: budgetCaps{MaxTokens: in.Budget.MaxTokens, MaxUSD: in.Budget.MaxCostUSD},
		limits:     in.Limits,
		rules:      in.Budget,
	}
}

// minStepChunk is the smallest chunk of steps a sub-agent reserves at once.
const minStepChunk = 10

// stepsLeft is what the step budget has neither used nor handed out.
func (l *ledger) stepsLeft() int { return l.limits.MaxTotalSteps - l.Used - l.Reserved }

// stepAllowance is what a sub-agent may reserve now from the swarm-wide
// budget, so running sub-agents together can never exceed max_total_steps.
func (l *ledger) stepAllowance() int { return min(l.stepChunk(), l.stepsLeft()) }

// stepChunk is how many steps a sub-agent reserves at a time: a whole
// max_steps_per_subagent while the budget holds that for twice the
// concurrency, else a share of it (at least minStepChunk). Sub-agents ask
// for more as they go (SubAgentInput.StepGrant), so the step budget does
// not cap concurrency at max_total_steps / max_steps_per_subagent.
func (l *ledger) stepChunk() int {
	perSub := l.limits.MaxStepsPerSubagent
	return min(perSub, max(minStepChunk, l.limits.MaxTotalSteps/(2*max(1, l.limits.MaxConcurrent))))
}

// grant reserves a sub-agent's steps. A full share is granted at once; a
// partial one only when nothing runs, because a running sub-agent hands its
// unused reservation back when it finishes: until then the subtask waits
// rather than starting short or failing while steps are still unspent.
func (l *ledger) grant(running int) (int, bool) {
	steps := l.stepAllowance()
	if steps >= l.stepChunk() {
		return steps, true
	}
	if steps > 0 && running == 0 {
		return steps, true
	}
	return 0, false
}

// moreSteps is the next chunk of steps for t, out of what the step budget
// has left and up to max_steps_per_subagent, or why there is none.
func (l *ledger) moreSteps(t *Task) (int, string) {
	room := l.stepsLeft()
	upTo := l.limits.MaxStepsPerSubagent - t.Reserved
	if room <= 0 || upTo <= 0 {
		return 0, fmt.Sprintf("step budget spent (max_total_steps=%d: %d used, %d held by running sub-agents)", l.limits.MaxTotalSteps, l.Used, l.Reserved)
	}
	return min(l.stepChunk(), room, upTo), ""
}

// record adds an ended sub-agent's steps, calls and tokens.
func (l *ledger) record(r SubAgentResult) {
	l.Used += r.Steps
	l.LLMCalls += r.LLMCalls
	l.Usage = l.Usage.Add(r.Usage)
}

// charge adds what a stopped sub-agent last reported: a sub-agent a move
// ended returns no result that would count it.
func (l *ledger) charge(c TaskControl) {
	l.Usage = l.Usage.Add(c.Usage)
	l.Cost += l.rules.Price.Cost(c.Usage)
	l.Used += c.Step
}

// committed is what the run has spent or handed out: finished calls plus
// every running sub-agent's allowance (or its use, when larger).
func (l *ledger) committed(running []*Task) (int64, float64) {
	tokens, usd := l.Usage.Total(), l.Cost
	for _, t := range running {
		tokens += max(t.Control.GrantTokens, t.Control.Usage.Total())
		usd += max(t.Control.GrantUSD, l.rules.Price.Cost(t.Control.Usage))
	}
	return tokens, usd
}

// spent is what finished and running calls have used.
func (l *ledger) spent(running []*Task) (int64, float64) {
	tokens, usd := l.Usage.Total(), l.Cost
	for _, t := range running {
		tokens += t.Control.Usage.Total()
		usd += l.rules.Price.Cost(t.Control.Usage)
	}
	return tokens, usd
}

// allowance is t's allowance raised to cover its next call, and up to
// grantCalls-1 more of the same size out of its fair share of what is left
// (so the first sub-agent to ask does not take it all); or why it cannot be.
func (l *ledger) allowance(t *Task, running []*Task) (int64, float64, string) {
	ask := t.Control.Ask
	usedT, usedUSD := t.Control.Usage.Total(), l.rules.Price.Cost(t.Control.Usage)
	comT, comUSD := l.committed(running)
	share := int64(max(1, len(running)))
	grantT, grantUSD := t.Control.GrantTokens, t.Control.GrantUSD
	if l.MaxTokens > 0 {
		room := l.MaxTokens - (comT - max(grantT, usedT))
		if room < usedT+ask.NeedTokens {
			spentT, _ := l.spent(running)
			return 0, 0, fmt.Sprintf("token cap %s reached (%s used, %s held by running sub-agents; %s's next call may need %s)",
				thousands(l.MaxTokens), thousands(spentT), thousands(comT-spentT), t.Sub.ID, thousands(ask.NeedTokens))
		}
		extra := min((grantCalls-1)*ask.NeedTokens, (room-usedT-ask.NeedTokens)/share)
		grantT = max(grantT, usedT+ask.NeedTokens+extra)
	}
	if l.MaxUSD > 0 {
		room := l.MaxUSD - (comUSD - max(grantUSD, usedUSD))
		if room < usedUSD+ask.NeedUSD {
			_, spentUSD := l.spent(running)
			return 0, 0, fmt.Sprintf("cost cap $%.2f reached ($%.4f spent, $%.4f held by running sub-agents; %s's next call may cost $%.4f)",
				l.MaxUSD, spentUSD, comUSD-spentUSD, t.Sub.ID, ask.NeedUSD)
		}
		extra := min((grantCalls-1)*ask.NeedUSD, (room-usedUSD-ask.NeedUSD)/float64(share))
		grantUSD = max(grantUSD, usedUSD+ask.NeedUSD+extra)
	}
	return grantT, grantUSD, ""
}

// view is the run's spend against its caps, for the progress query.
func (l *ledger) view(running []*Task) control.BudgetView {
	tokens, usd := l.spent(running)
	steps := l.Used
	for _, t := range running {
		steps += t.Control.Step
	}
	return control.BudgetView{
		MaxTokens:  l.MaxTokens,
		MaxCostUSD: l.MaxUSD,
		Tokens:     tokens,
		CostUSD:    usd,
		MaxSteps:   l.limits.MaxTotalSteps,
		Steps:      steps,
	}
}
