package workflows

import (
	"fmt"
	"strings"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"codeswarm/activities"
)

// Visibility says which search attributes a run keeps up to date.
type Visibility struct {
	// SearchAttributes: the namespace has the Codeswarm* attributes. A run
	// that upserted one the namespace lacks would fail its workflow task.
	SearchAttributes bool `json:"search_attributes,omitempty"`
	// Private leaves the repository and the task text out: payloads are
	// encrypted (codec.key) and search attributes never are.
	Private bool `json:"private,omitempty"`
}

// summaryCap bounds an activity's one-line summary in the Web UI.
const summaryCap = 100

// summarized gives the next activity a one-line summary for the Web UI.
func summarized(ctx workflow.Context, summary string) workflow.Context {
	o := workflow.GetActivityOptions(ctx)
	o.Summary = activities.FirstLine(summary, summaryCap)
	return workflow.WithActivityOptions(ctx, o)
}

// saSnapshot is what the run's search attributes last said; an upsert is a
// command in history, so one is issued only when it changes.
type saSnapshot struct {
	status      string
	tokens      int64
	cost        float64
	done, total int
}

// rows is the run's live table: one row per planned subtask, with what a
// finished sub-agent's result says of its status.
func (s *swarm) rows() []activities.SubtaskView {
	rows := s.liveRows()
	for i, t := range s.tasks {
		if t.state == stateDone {
			rows[i].LastStatus = activities.ParseStatus(t.res.Result)
		}
	}
	return rows
}

// liveRows are the rows without LastStatus, which parses each finished
// sub-agent's result: the current details and the search attributes,
// refreshed on every wake, do not show it.
func (s *swarm) liveRows() []activities.SubtaskView {
	rows := make([]activities.SubtaskView, 0, len(s.tasks))
	for _, t := range s.tasks {
		v := t.view()
		switch t.state {
		case stateRunning:
			// What the sub-agent last reported (every few steps, and with
			// every allowance it asks for).
			v.Step, v.Tokens, v.CostUSD = t.ctl.step, t.ctl.usage.Total(), s.in.Budget.Price.Cost(t.ctl.usage)
			if s.state == activities.RunStatePaused {
				v.Status = "paused"
			}
		case stateDone:
			v.CostUSD = t.res.CostUSD
		}
		rows = append(rows, v)
	}
	return rows
}

func (t *task) view() activities.SubtaskView {
	v := activities.SubtaskView{
		ID: t.sub.ID, Name: t.sub.Name, Stage: t.sub.Stage, Status: "pending", Attempt: t.attempt,
		MaxSteps: t.reserved, StartedAt: t.started, EndedAt: t.ended, LastEvent: t.lastEvent,
	}
	switch t.state {
	case stateRunning:
		v.Status = "running"
	case stateDone:
		v.Status, v.Merge, v.Step = t.res.Status, t.res.Merge, t.res.Steps
		v.Tokens = int64(t.res.PromptTokens + t.res.CompletionTokens)
	}
	return v
}

// refresh publishes the run's live view: its current details in the Web UI
// (state line and the subtask table) and its search attributes. The rows
// are built once for both.
func (s *swarm) refresh(ctx workflow.Context) {
	rows := s.liveRows()
	snap := s.snapshot(rows)
	// The run's cost counts the planner (and every finished sub-agent's
	// both attempts) as the result's stats do.
	snap.cost = s.liveCost(rows)
	if d := s.details(rows, snap); d != s.shown {
		workflow.SetCurrentDetails(ctx, d)
		s.shown = d
	}
	s.upsertSearchAttributes(ctx, snap)
}

// details is the current details' markdown for rows and their sums.
func (s *swarm) details(rows []activities.SubtaskView, snap saSnapshot) string {
	var b strings.Builder
	fmt.Fprintf(&b, "**%s** (%s)", s.state, s.phase)
	if s.stateReason != "" {
		b.WriteString(": " + s.stateReason)
	}
	fmt.Fprintf(&b, "\n\n%d/%d subtasks done · %d tokens · $%.4f\n", snap.done, snap.total, snap.tokens, snap.cost)
	if len(rows) == 0 {
		return b.String()
	}
	b.WriteString("\n" + mdRow("subtask", "status", "step", "tokens", "cost", "merge") + "|---|---|---|---|---|---|\n")
	if len(s.lines) != len(rows) {
		s.lines = make([]tableLine, len(rows)) // the plan is new, or restored
	}
	for i, r := range rows {
		b.WriteString(s.lines[i].render(r))
	}
	return b.String()
}

// tableCells are what the details table shows of a row.
type tableCells struct {
	id, status, merge string
	step, maxSteps    int
	tokens            int64
	cost              float64
}

// tableLine is a row's rendered line and the cells it was rendered from:
// a wake re-renders only the rows that changed (formatting every row of a
// 400-subtask plan on every wake was most of the parent's CPU in the
// testsuite).
type tableLine struct {
	cells tableCells
	md    string
}

// render is r's line, rendered again only when its cells changed.
func (l *tableLine) render(r activities.SubtaskView) string {
	c := tableCells{id: r.ID, status: r.Status, merge: r.Merge, step: r.Step, maxSteps: r.MaxSteps, tokens: r.Tokens, cost: r.CostUSD}
	if l.md == "" || l.cells != c {
		l.cells = c
		l.md = mdRow(mdCell(c.id), c.status, fmt.Sprintf("%d/%d", c.step, c.maxSteps), fmt.Sprint(c.tokens), fmt.Sprintf("$%.4f", c.cost), c.merge)
	}
	return l.md
}

// mdRow is one table row. The Web UI draws tables without cell padding, so
// no-break spaces keep neighbouring numbers apart.
func mdRow(cells ...string) string {
	var b strings.Builder
	for _, c := range cells {
		b.WriteString("| \u00a0" + c + "\u00a0 ")
	}
	return b.String() + "|\n"
}

// mdCell keeps a value inside its markdown table cell.
func mdCell(s string) string {
	return strings.ReplaceAll(activities.FirstLine(s, 80), "|", `\|`)
}

// snapshot sums the rows: tokens count the planner and every finished or
// running sub-agent.
func (s *swarm) snapshot(rows []activities.SubtaskView) saSnapshot {
	snap := saSnapshot{status: s.state, total: len(rows), tokens: int64(s.usage.PromptTokens + s.usage.CompletionTokens)}
	for i, r := range rows {
		snap.cost += r.CostUSD
		if s.tasks[i].state == stateDone {
			snap.done++
		} else {
			snap.tokens += r.Tokens // finished ones are in s.usage already
		}
	}
	return snap
}

// liveCost is the run's cost so far: what is booked (the planner, every
// ended sub-agent) plus the running sub-agents' rows.
func (s *swarm) liveCost(rows []activities.SubtaskView) float64 {
	cost := s.ctl.cost
	for i, r := range rows {
		if s.tasks[i].state != stateDone {
			cost += r.CostUSD
		}
	}
	return cost
}

// upsertSearchAttributes brings the run's search attributes up to snap; the
// first call also sets the repository and the task unless they are private.
func (s *swarm) upsertSearchAttributes(ctx workflow.Context, snap saSnapshot) {
	if !s.in.Visibility.SearchAttributes {
		return
	}
	if s.lastSA != nil && *s.lastSA == snap {
		return
	}
	updates := []temporal.SearchAttributeUpdate{
		activities.SAStatusKey.ValueSet(snap.status),
		activities.SATokensKey.ValueSet(snap.tokens),
		activities.SACostUSDKey.ValueSet(snap.cost),
		activities.SASubtasksDoneKey.ValueSet(int64(snap.done)),
		activities.SASubtasksTotalKey.ValueSet(int64(snap.total)),
	}
	if s.lastSA == nil && !s.in.Visibility.Private {
		updates = append(updates, activities.SARepoKey.ValueSet(s.in.RepoPath),
			activities.SATaskKey.ValueSet(activities.FirstLine(s.in.Task, activities.TaskExcerptLen)))
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, updates...); err != nil {
		workflow.GetLogger(ctx).Warn("upsert search attributes", "error", err)
		return
	}
	s.lastSA = &snap
}

// end records the run's final state where people look.
func (s *swarm) end(ctx workflow.Context, success bool) {
	switch {
	case success:
		s.state = activities.RunStateSucceeded
	case ctx.Err() != nil:
		s.state = activities.RunStateCancelled
	default:
		s.state = activities.RunStateFailed
	}
	s.refresh(ctx)
}

// childMetadata is what the Web UI shows for a sub-agent before it runs:
// which subtask it is and what it was asked.
func childMetadata(t *task) (summary, details string) {
	summary = t.sub.Name + ": " + activities.FirstLine(t.sub.Instruction, 120)
	if t.attempt > 1 {
		summary = fmt.Sprintf("%s (attempt %d: resolve a merge conflict)", summary, t.attempt)
	}
	deps := "none"
	if len(t.sub.Dependencies) > 0 {
		deps = strings.Join(t.sub.Dependencies, ", ")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "**Subtask** %s — %s\n\n**Stage** %d · **attempt** %d · **depends on** %s", t.sub.ID, t.sub.Name, t.sub.Stage, t.attempt, deps)
	if t.sub.Specialty != "" {
		fmt.Fprintf(&b, " · **specialty** %s", t.sub.Specialty)
	}
	fmt.Fprintf(&b, "\n\n**Instruction**\n\n%s\n", t.sub.Instruction)
	return activities.FirstLine(summary, 200), b.String()
}

// touch marks the live view changed: it is published once, before the
// schedule next waits (flush), not after every start and end.
func (s *swarm) touch() {
	s.stale = true
}

// flush publishes a live view touch left stale, before the schedule waits
// for the next event.
func (s *swarm) flush(ctx workflow.Context) {
	if s.stale {
		s.stale = false
		s.refresh(ctx)
	}
}

// showBeforeWait publishes the live view before a merge or verify the run
// waits on, so the view does not lag behind the ends it has booked for as
// long as the activity runs.
func (s *swarm) showBeforeWait(ctx workflow.Context) {
	s.stale = false
	s.refresh(ctx)
}
