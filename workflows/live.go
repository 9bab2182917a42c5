package workflows

import (
	"fmt"
	"strings"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"codeswarm/activities"
	"codeswarm/control"
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

// viewState is the run's state and its events, which a continued run
// carries on (the latest carriedEvents of them).
type viewState struct {
	Events []control.Event `json:"events,omitempty"`
	// Seq numbers the events; it carries on across continue-as-new.
	Seq int `json:"seq"`
	// State is a RunState* and StateReason says why; setState changes
	// them and refreshes what the Web UI and the CLI show.
	State       string `json:"state"`
	StateReason string `json:"state_reason,omitempty"`
}

// runView owns what people see of the run: its events and state, and
// what was last published of them (the current details in the Web UI and
// the search attributes), so an unchanged view is not set again.
type runView struct {
	viewState
	// lastSA is what the search attributes were last set to (nil: never).
	lastSA *saSnapshot
	// shown is the current details last published; lines are its table's
	// rendered rows.
	shown string
	lines []tableLine
	// stale: the view changed and is published before the schedule next
	// waits (see touch).
	stale bool
	// What the view shows, owned by the run (bound by newSwarm): its
	// subtasks, its spend, its input and its phase.
	tasks *taskTable
	spend *ledger
	in    *SwarmInput
	phase *string
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
func (v *runView) rows() []control.SubtaskView {
	rows := v.liveRows()
	for i, t := range v.tasks.Tasks {
		if t.State == stateDone {
			rows[i].LastStatus = activities.ParseStatus(t.Res.Result)
		}
	}
	return rows
}

// liveRows are the rows without LastStatus, which parses each finished
// sub-agent's result: the current details and the search attributes,
// refreshed on every pass of the schedule, do not show it.
func (v *runView) liveRows() []control.SubtaskView {
	rows := make([]control.SubtaskView, 0, len(v.tasks.Tasks))
	for _, t := range v.tasks.Tasks {
		row := t.view()
		switch t.State {
		case stateRunning:
			// What the sub-agent last reported (every few steps, and with
			// every allowance it asks for).
			row.Step, row.Tokens, row.CostUSD = t.Control.Step, t.Control.Usage.Total(), v.in.Budget.Price.Cost(t.Control.Usage)
			if v.State == control.RunStatePaused {
				row.Status = "paused"
			}
		case stateDone:
			row.CostUSD = t.Res.CostUSD
		}
		rows = append(rows, row)
	}
	return rows
}

func (t *Task) view() control.SubtaskView {
	v := control.SubtaskView{
		ID:        t.Sub.ID,
		Name:      t.Sub.Name,
		Stage:     t.Sub.Stage,
		Status:    "pending",
		Attempt:   t.Attempt,
		MaxSteps:  t.Reserved,
		StartedAt: t.Started,
		EndedAt:   t.Ended,
		LastEvent: t.LastEvent,
	}
	switch t.State {
	case stateRunning:
		v.Status = "running"
	case stateDone:
		v.Status, v.Merge, v.Step, v.Cached = t.Res.Status, t.Res.Merge, t.Res.Steps, t.Res.Cached
		v.Tokens = int64(t.Res.PromptTokens + t.Res.CompletionTokens)
	}
	return v
}

// refresh publishes the run's live view: its current details in the Web UI
// (state line and the subtask table) and its search attributes. The rows
// are built once for both.
func (v *runView) refresh(ctx workflow.Context) {
	rows := v.liveRows()
	snap := v.snapshot(rows)
	// The run's cost counts the planner (and every finished sub-agent's
	// both attempts) as the result's stats do.
	snap.cost = v.liveCost(rows)
	if d := v.details(rows, snap); d != v.shown {
		workflow.SetCurrentDetails(ctx, d)
		v.shown = d
	}
	v.upsertSearchAttributes(ctx, snap)
}

// details is the current details' markdown for rows and their sums.
func (v *runView) details(rows []control.SubtaskView, snap saSnapshot) string {
	var b strings.Builder
	fmt.Fprintf(&b, "**%s** (%s)", v.State, *v.phase)
	if v.StateReason != "" {
		b.WriteString(": " + v.StateReason)
	}
	fmt.Fprintf(&b, "\n\n%d/%d subtasks done · %d tokens · $%.4f\n", snap.done, snap.total, snap.tokens, snap.cost)
	if len(rows) == 0 {
		return b.String()
	}
	b.WriteString("\n" + mdRow("subtask", "status", "step", "tokens", "cost", "merge") + "|---|---|---|---|---|---|\n")
	if len(v.lines) != len(rows) {
		v.lines = make([]tableLine, len(rows)) // the plan is new, or restored
	}
	for i, r := range rows {
		b.WriteString(v.lines[i].render(r))
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
// a pass re-renders only the rows that changed (formatting every row of a
// 400-subtask plan on every pass was most of the parent's CPU in the
// testsuite).
type tableLine struct {
	cells tableCells
	md    string
}

// render is r's line, rendered again only when its cells changed.
func (l *tableLine) render(r control.SubtaskView) string {
	c := tableCells{
		id:       r.ID,
		status:   statusCell(r),
		merge:    r.Merge,
		step:     r.Step,
		maxSteps: r.MaxSteps,
		tokens:   r.Tokens,
		cost:     r.CostUSD,
	}
	if l.md == "" || l.cells != c {
		l.cells = c
		l.md = mdRow(mdCell(c.id), c.status, fmt.Sprintf("%d/%d", c.step, c.maxSteps), fmt.Sprint(c.tokens), fmt.Sprintf("$%.4f", c.cost), c.merge)
	}
	return l.md
}

// statusCell is a row's status as the tables show it: "completed
// (cached)" for work the result cache held.
func statusCell(r control.SubtaskView) string {
	if r.Cached {
		return r.Status + " (cached)"
	}
	return r.Status
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
func (v *runView) snapshot(rows []control.SubtaskView) saSnapshot {
	snap := saSnapshot{
		status: v.State,
		total:  len(rows),
		tokens: int64(v.spend.Usage.PromptTokens + v.spend.Usage.CompletionTokens),
	}
	for i, r := range rows {
		snap.cost += r.CostUSD
		if v.tasks.Tasks[i].State == stateDone {
			snap.done++
		} else {
			snap.tokens += r.Tokens // finished ones are in v.spend.Usage already
		}
	}
	return snap
}

// liveCost is the run's cost so far: what is recorded (the planner, every
// ended sub-agent) plus the running sub-agents' rows.
func (v *runView) liveCost(rows []control.SubtaskView) float64 {
	cost := v.spend.Cost
	for i, r := range rows {
		if v.tasks.Tasks[i].State != stateDone {
			cost += r.CostUSD
		}
	}
	return cost
}

// upsertSearchAttributes brings the run's search attributes up to snap; the
// first call also sets the repository and the task unless they are private.
func (v *runView) upsertSearchAttributes(ctx workflow.Context, snap saSnapshot) {
	if !v.in.Visibility.SearchAttributes {
		return
	}
	if v.lastSA != nil && *v.lastSA == snap {
		return
	}
	updates := []temporal.SearchAttributeUpdate{
		control.SAStatusKey.ValueSet(snap.status),
		control.SATokensKey.ValueSet(snap.tokens),
		control.SACostUSDKey.ValueSet(snap.cost),
		control.SASubtasksDoneKey.ValueSet(int64(snap.done)),
		control.SASubtasksTotalKey.ValueSet(int64(snap.total)),
	}
	if v.lastSA == nil && !v.in.Visibility.Private {
		updates = append(updates, control.SARepoKey.ValueSet(v.in.RepoPath),
			control.SATaskKey.ValueSet(activities.FirstLine(v.in.Task, control.TaskExcerptLen)))
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, updates...); err != nil {
		workflow.GetLogger(ctx).Warn("upsert search attributes", "error", err)
		return
	}
	v.lastSA = &snap
}

// end records the run's final state where people look.
func (v *runView) end(ctx workflow.Context, success bool) {
	switch {
	case success:
		v.State = control.RunStateSucceeded
	case ctx.Err() != nil:
		v.State = control.RunStateCancelled
	default:
		v.State = control.RunStateFailed
	}
	v.refresh(ctx)
}

// childMetadata is what the Web UI shows for a sub-agent before it runs:
// which subtask it is and what it was asked.
func childMetadata(t *Task) (summary, details string) {
	summary = t.Sub.Name + ": " + activities.FirstLine(t.Sub.Instruction, 120)
	if t.Attempt > 1 {
		summary = fmt.Sprintf("%s (attempt %d: resolve a merge conflict)", summary, t.Attempt)
	}
	deps := "none"
	if len(t.Sub.Dependencies) > 0 {
		deps = strings.Join(t.Sub.Dependencies, ", ")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "**Subtask** %s — %s\n\n**Stage** %d · **attempt** %d · **depends on** %s", t.Sub.ID, t.Sub.Name, t.Sub.Stage, t.Attempt, deps)
	if t.Sub.Specialty != "" {
		fmt.Fprintf(&b, " · **specialty** %s", t.Sub.Specialty)
	}
	fmt.Fprintf(&b, "\n\n**Instruction**\n\n%s\n", t.Sub.Instruction)
	return activities.FirstLine(summary, 200), b.String()
}

// touch marks the live view changed: it is published once, before the
// schedule next waits (flush), not after every start and end.
func (v *runView) touch() {
	v.stale = true
}

// flush publishes a live view touch left stale, before the schedule waits
// for the next event.
func (v *runView) flush(ctx workflow.Context) {
	if v.stale {
		v.stale = false
		v.refresh(ctx)
	}
}

// showBeforeWait publishes the live view before a merge or verify the run
// waits on, so the view does not lag behind the ends it has recorded for as
// long as the activity runs.
func (v *runView) showBeforeWait(ctx workflow.Context) {
	v.stale = false
	v.refresh(ctx)
}

// setState moves the run to a RunState* and says why, in the events and in
// the run's current details.
func (v *runView) setState(ctx workflow.Context, state, reason string) {
	if v.State == state && v.StateReason == reason {
		return
	}
	v.State, v.StateReason = state, reason
	v.event(ctx, "state", "", strings.TrimSpace(state+" "+reason))
	v.refresh(ctx)
}

func (v *runView) event(ctx workflow.Context, kind, subtask, msg string) {
	v.Seq++
	v.Events = append(v.Events, control.Event{
		Seq:     v.Seq,
		Time:    workflow.Now(ctx),
		Kind:    kind,
		Subtask: subtask,
		Message: msg,
	})
	if t := v.tasks.byID(subtask); t != nil {
		t.LastEvent = activities.FirstLine(kind+": "+msg, 120)
	}
}
