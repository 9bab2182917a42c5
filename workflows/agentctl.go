package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"codeswarm/activities"
)

// ExitBudget: the sub-agent stopped before a call that could pass its own
// token or cost cap (swarm.max_*_per_subagent).
const ExitBudget = "budget"

// AgentCtlState is a sub-agent's steering state, carried over a
// continue-as-new: its allowance from the run, whether it is paused, notes
// not yet shown to the model, and what the next call's estimate needs.
type AgentCtlState struct {
	GrantTokens    int64    `json:"grant_tokens,omitempty"`
	GrantUSD       float64  `json:"grant_usd,omitempty"`
	Paused         bool     `json:"paused,omitempty"`
	PauseSeq       int      `json:"pause_seq,omitempty"`
	Notes          []string `json:"notes,omitempty"`
	LastPrompt     int      `json:"last_prompt,omitempty"`
	LastCompletion int      `json:"last_completion,omitempty"`
	PendingChars   int      `json:"pending_chars,omitempty"`
	Reported       int      `json:"reported,omitempty"` // Steps at the last report
	// ReportedAt is when the last report went (zero: none yet; the
	// sub-agent's start counts), from stepCostVersion.
	ReportedAt time.Time `json:"reported_at,omitzero"`
	// GrantSteps is the step allowance the run granted past StepGrant;
	// StepsDenied says the run's step budget has none left for it.
	GrantSteps  int  `json:"grant_steps,omitempty"`
	StepsDenied bool `json:"steps_denied,omitempty"`
}

// reportInterval paces the periodic usage report: every reportEvery steps
// but no more often than this. Each report costs a workflow task in the
// sub-agent (its signal's completion) and one in the run, plus a
// search-attribute upsert, and fills the run's Web UI timeline (one signal
// each); watch and status ask running sub-agents themselves, so the run's
// own figures may lag this much. Requests for allowance and the report of
// a pause are not paced.
const reportInterval = 30 * time.Second

func (ag *agent) ctl() *AgentCtlState {
	if ag.st.Ctl == nil {
		ag.st.Ctl = &AgentCtlState{}
		if c := ag.in.Control; c != nil {
			ag.st.Ctl.Notes = append([]string(nil), c.Notes...)
			ag.st.Ctl.Paused, ag.st.Ctl.PauseSeq = c.Paused, c.PauseSeq
		}
	}
	return ag.st.Ctl
}

// apply takes one signal from the run.
func (ag *agent) apply(sig ControlSignal) {
	c := ag.ctl()
	switch sig.Kind {
	case signalPause:
		if sig.Seq > c.PauseSeq {
			c.PauseSeq, c.Paused = sig.Seq, sig.Paused
		}
	case signalGrant:
		c.GrantTokens, c.GrantUSD = max(c.GrantTokens, sig.GrantTokens), max(c.GrantUSD, sig.GrantUSD)
		c.GrantSteps = max(c.GrantSteps, sig.GrantSteps)
		c.StepsDenied = c.StepsDenied || sig.StepsDenied
	case signalTell:
		c.Notes = append(c.Notes, sig.Notes...)
	}
}

// drain takes every signal that has arrived, without waiting.
func (ag *agent) drain(ctx workflow.Context) {
	ch := workflow.GetSignalChannel(ctx, agentControlSignal)
	for {
		var sig ControlSignal
		if !ch.ReceiveAsync(&sig) {
			return
		}
		ag.apply(sig)
	}
}

// waitFor takes signals until ok holds or the sub-agent is cancelled.
func (ag *agent) waitFor(ctx workflow.Context, ok func() bool) error {
	ch := workflow.GetSignalChannel(ctx, agentControlSignal)
	for !ok() {
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(ch, func(c workflow.ReceiveChannel, _ bool) {
			var sig ControlSignal
			c.Receive(ctx, &sig)
			ag.apply(sig)
		})
		sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) {})
		if ag.orphanNotice != nil {
			sel.AddReceive(ag.orphanNotice, func(c workflow.ReceiveChannel, _ bool) { c.ReceiveAsync(nil) })
		}
		sel.Select(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if ag.orphaned {
			return errOrphaned
		}
	}
	return nil
}

// gate runs before every model call: it waits while the run is paused,
// stops the sub-agent before a call that could pass its own cap, and waits
// for the run's allowance to cover the call. Waiting is not lack of
// progress: the no-progress deadline starts again after it.
func (ag *agent) gate(ctx workflow.Context) string {
	if ag.in.Control == nil {
		return ""
	}
	ag.drain(ctx)
	if ag.orphaned {
		return ExitCancelled
	}
	c := ag.ctl()
	waited := c.Paused
	if waited && c.Reported != ag.st.Steps {
		ag.report(ctx, false, 0, 0) // the live table shows where it stopped
	}
	if err := ag.waitFor(ctx, func() bool { return !c.Paused }); err != nil {
		return ExitCancelled
	}
	if exit := ag.stepAllowance(ctx); exit != "" {
		return exit
	}
	needT, needUSD := ag.estimate()
	exit, asked := ag.allowance(ctx, needT, needUSD)
	if exit == "" && (waited || asked) {
		ag.st.Deadline = workflow.Now(ctx).Add(ag.in.Limits.SubagentTimeout)
	}
	return exit
}

// stepLimit is how many steps the sub-agent may take now.
func (ag *agent) stepLimit() int {
	if ag.in.StepGrant == 0 {
		return ag.in.MaxSteps
	}
	return max(ag.in.StepGrant, ag.ctl().GrantSteps)
}

// stepAllowance asks the run for another chunk of steps when the ones
// granted are used (and its own cap is not reached), and waits for it; it
// stops the sub-agent when the run's step budget has none left.
func (ag *agent) stepAllowance(ctx workflow.Context) string {
	if ag.in.StepGrant == 0 || ag.st.Steps < ag.stepLimit() || ag.st.Steps >= ag.in.MaxSteps {
		return ""
	}
	c := ag.ctl()
	ag.reportAsk(ctx, BudgetReport{NeedSteps: 1})
	if err := ag.waitFor(ctx, func() bool { return c.StepsDenied || ag.st.Steps < ag.stepLimit() }); err != nil {
		return ExitCancelled
	}
	if ag.st.Steps >= ag.stepLimit() {
		ag.why = fmt.Sprintf("stopped after %d steps: the run's step budget (swarm.max_total_steps) has none left", ag.st.Steps)
		return ExitMaxSteps
	}
	ag.st.Deadline = workflow.Now(ctx).Add(ag.in.Limits.SubagentTimeout)
	return ""
}

// allowance makes sure a call of the given most cost fits: under the
// sub-agent's own caps (else ExitBudget), and in its allowance from the run,
// which it asks for and waits for when short (asked says so). A pause that
// comes while it waits holds it too.
func (ag *agent) allowance(ctx workflow.Context, needT int64, needUSD float64) (exit string, asked bool) {
	c, b := ag.ctl(), ag.in.Control.Budget
	usedT, usedUSD := ag.st.Usage.Total(), b.Price.Cost(ag.st.Usage)
	if (b.MaxTokensPerSubagent > 0 && usedT+needT > b.MaxTokensPerSubagent) ||
		(b.MaxCostUSDPerSubagent > 0 && usedUSD+needUSD > b.MaxCostUSDPerSubagent) {
		ag.why = fmt.Sprintf("sub-agent stopped before a call that could pass its own cap: %s tokens and $%.4f used, the next call may need %s tokens and $%.4f "+
			"(max_tokens_per_subagent=%d, max_cost_usd_per_subagent=%g)", thousands(usedT), usedUSD, thousands(needT), needUSD, b.MaxTokensPerSubagent, b.MaxCostUSDPerSubagent)
		return ExitBudget, false
	}
	covered := func() bool {
		return (b.MaxTokens == 0 || usedT+needT <= c.GrantTokens) && (b.MaxCostUSD == 0 || usedUSD+needUSD <= c.GrantUSD)
	}
	if covered() {
		return "", false
	}
	ag.report(ctx, true, needT, needUSD)
	if err := ag.waitFor(ctx, func() bool { return !c.Paused && covered() }); err != nil {
		return ExitCancelled, true
	}
	return "", true
}

// errBudgetStop ends the loop with ExitBudget from inside a step.
var errBudgetStop = errors.New("stopped by the sub-agent's own budget")

// summaryAllowance covers the summary call of a tool output of chars
// characters (the request holds at most llm's 200,000 of them).
func (ag *agent) summaryAllowance(ctx workflow.Context, chars int) error {
	if ag.in.Control == nil {
		return nil
	}
	b := ag.in.Control.Budget
	u := activities.Usage{
		PromptTokens:     min(chars, 200_000)/3 + 200,
		CompletionTokens: b.MaxAnswerTokens,
	}
	switch exit, _ := ag.allowance(ctx, u.Total(), b.Price.Cost(u)); exit {
	case ExitBudget:
		return errBudgetStop
	case ExitCancelled:
		return ctx.Err()
	}
	return nil
}

// estimate is the most the next call may cost: the last prompt, the last
// answer and what was added since (tool output, notes; about 3 characters a
// token, on the safe side), plus the longest answer.
func (ag *agent) estimate() (int64, float64) {
	c, b := ag.ctl(), ag.in.Control.Budget
	added := c.PendingChars
	for _, n := range c.Notes {
		added += len(n) + 64
	}
	prompt := c.LastPrompt + c.LastCompletion + added/3
	if c.LastPrompt == 0 {
		prompt = b.FirstPromptTokens + (len(ag.in.Subtask.Instruction)+len(ag.in.DepContext)+added)/3
	}
	u := activities.Usage{PromptTokens: prompt, CompletionTokens: b.MaxAnswerTokens}
	return u.Total(), b.Price.Cost(u)
}

// report sends the run this sub-agent's usage, and with ask a request for
// allowance to cover a call of need.
func (ag *agent) report(ctx workflow.Context, ask bool, needT int64, needUSD float64) {
	ag.reportAsk(ctx, BudgetReport{Ask: ask, NeedTokens: needT, NeedUSD: needUSD})
}

// reportAsk sends the run this sub-agent's usage with the request r holds
// (a step request asks too).
func (ag *agent) reportAsk(ctx workflow.Context, r BudgetReport) {
	ag.ctl().Reported = ag.st.Steps
	ag.ctl().ReportedAt = workflow.Now(ctx)
	r.Subtask, r.Attempt, r.Step, r.Usage = ag.in.Subtask.ID, ag.in.Attempt, ag.st.Steps, ag.st.Usage
	r.Ask = r.Ask || r.NeedSteps > 0
	// Not waited on: the grant comes back as a signal.
	f := workflow.SignalExternalWorkflow(ctx, ag.in.ParentWorkflowID, "", budgetReportSignal, r)
	if ag.orphanNotice != nil {
		workflow.Go(ctx, func(gctx workflow.Context) {
			var gone *temporal.UnknownExternalWorkflowExecutionError
			if errors.As(f.Get(gctx, nil), &gone) {
				ag.orphaned, ag.why = true, "stopped: its run "+ag.in.ParentWorkflowID+" has closed (terminated?), so nobody waits for this sub-agent"
				ag.orphanNotice.SendAsync(true)
			}
		})
	}
}

// errOrphaned ends a wait for the run that has closed.
var errOrphaned = errors.New("the run has closed")

// watchOrphan arms the orphan stop. The run starts its sub-agents with
// ParentClosePolicy ABANDON (so they survive its continue-as-new), so a
// terminated run's sub-agents would otherwise work on. A report to a closed
// run fails; the sub-agent then stops before its next model call, as a
// cancelled one does (its work committed). It is armed for sub-agents with
// steering (only those report to their run).
func (ag *agent) watchOrphan(ctx workflow.Context) {
	if ag.in.Control != nil {
		ag.orphanNotice = workflow.NewBufferedChannel(ctx, 1)
	}
}

// notes are the steering notes the next model call shows.
func (ag *agent) notes() []string {
	if ag.in.Control == nil {
		return nil
	}
	return ag.ctl().Notes
}

// afterStep books a model call: the notes were shown, its size is the base
// of the next estimate, and every reportEvery steps the run hears of it.
func (ag *agent) afterStep(ctx workflow.Context, u activities.Usage) {
	if ag.in.Control == nil {
		return
	}
	c := ag.ctl()
	c.Notes, c.PendingChars = nil, 0
	c.LastPrompt, c.LastCompletion = u.PromptTokens, u.CompletionTokens
	if ag.st.Steps-c.Reported >= reportEvery && ag.reportDue(ctx) {
		ag.report(ctx, false, 0, 0)
	}
}

// reportDue reports whether reportInterval has passed since the last report
// (or the sub-agent's start).
func (ag *agent) reportDue(ctx workflow.Context) bool {
	last := ag.ctl().ReportedAt
	if last.IsZero() {
		last = ag.st.StartedAt
	}
	return workflow.Now(ctx).Sub(last) >= reportInterval
}

// noteOutput adds a tool result's size to the next call's estimate.
func (ag *agent) noteOutput(chars int) {
	if ag.in.Control != nil {
		ag.ctl().PendingChars += chars
	}
}
