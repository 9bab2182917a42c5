package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"go.temporal.io/sdk/client"

	"codeswarm/activities"
	"codeswarm/control"
	"codeswarm/workflows"
)

// agentQueries bounds the agent queries one refresh sends at once.
const agentQueries = 4

// liveView is a run's live table: the parent's rows, each running one
// completed by its sub-agent's own view (current tool, step, tokens).
type liveView struct {
	prog   control.Progress
	agents map[string]control.AgentView // by subtask ID, running sub-agents only
	// slowAfter is watch.slow_call_after: a current call older is flagged.
	slowAfter time.Duration
}

// fetchLive reads the run's progress (events after since) and asks every
// running sub-agent what it does, a few at a time.
func fetchLive(ctx context.Context, c client.Client, id string, since int) (liveView, error) {
	prog, err := queryProgress(ctx, c, id, since)
	if err != nil {
		return liveView{}, err
	}
	v := liveView{prog: prog, agents: map[string]control.AgentView{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	slots := make(chan struct{}, agentQueries)
	for _, r := range prog.Rows {
		if r.Status != "running" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			if a, err := queryAgent(ctx, c, workflows.ChildWorkflowID(id, r.ID, r.Attempt)); err == nil {
				mu.Lock()
				v.agents[r.ID] = a
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return v, nil
}

// agentQueryTimeout bounds one sub-agent's query. A sub-agent whose model
// call runs as a local activity answers at its workflow task's next
// heartbeat after the query arrives (every 1.6 s), so up to ~3.2 s.
const agentQueryTimeout = 5 * time.Second

func queryAgent(ctx context.Context, c client.Client, childID string) (control.AgentView, error) {
	qctx, cancel := context.WithTimeout(ctx, agentQueryTimeout)
	defer cancel()
	val, err := c.QueryWorkflow(qctx, childID, "", control.AgentQueryName)
	if err != nil {
		return control.AgentView{}, err
	}
	var a control.AgentView
	return a, val.Get(&a)
}

// rows are the parent's rows with what running sub-agents report.
func (v liveView) rows() []control.SubtaskView {
	out := make([]control.SubtaskView, len(v.prog.Rows))
	for i, r := range v.prog.Rows {
		if a, ok := v.agents[r.ID]; ok {
			r.Step, r.MaxSteps, r.CurrentTool = a.Step, a.MaxSteps, a.CurrentTool
			r.CurrentKind, r.CurrentSince = a.CurrentKind, a.CurrentSince
			r.Tokens, r.CostUSD = max(r.Tokens, a.Tokens), max(r.CostUSD, a.CostUSD)
			r.LastStatus = cmp.Or(a.LastStatus, r.LastStatus)
		}
		out[i] = r
	}
	return out
}

// done counts the subtasks that ended.
func (v liveView) done() int {
	n := 0
	for _, r := range v.prog.Rows {
		if r.Status != "pending" && r.Status != "running" && r.Status != "paused" {
			n++
		}
	}
	return n
}

// stateLine says what the run does and why, e.g. "paused: token cap reached".
func (v liveView) stateLine() string {
	s := fmt.Sprintf("state %s, phase %s", cmp.Or(v.prog.State, control.RunStateRunning), v.prog.Phase)
	if v.prog.StateReason != "" {
		s = fmt.Sprintf("state %s: %s (phase %s)", v.prog.State, v.prog.StateReason, v.prog.Phase)
	}
	tokens, cost := int64(0), 0.0
	for _, r := range v.rows() {
		tokens, cost = tokens+r.Tokens, cost+r.CostUSD
	}
	if v.prog.Host != "" {
		s += "; host " + v.prog.Host
	}
	return fmt.Sprintf("%s; %d/%d subtasks done; %d tokens, $%.4f", s, v.done(), len(v.prog.Rows), tokens, cost)
}

var tableHeader = []string{"SUBTASK", "STATUS", "STEP", "TOOL", "CALL", "TOKENS", "ELAPSED", "LAST EVENT"}

// tableRows are the live table's cells, now being the time elapsed is
// measured to for running sub-agents.
func (v liveView) tableRows(now time.Time) [][]string {
	var out [][]string
	for _, r := range v.rows() {
		step := "-"
		if r.MaxSteps > 0 || r.Step > 0 {
			step = fmt.Sprintf("%d/%d", r.Step, r.MaxSteps)
		}
		status := r.Status
		if r.Cached {
			status += " (cached)"
		}
		out = append(out, []string{r.ID, status, step, cmp.Or(activities.FirstLine(r.CurrentTool, 40), "-"), v.callAge(r, now),
			fmt.Sprint(r.Tokens), elapsed(r, now), cmp.Or(activities.FirstLine(r.LastEvent, 60), "-")})
	}
	return out
}

// callAge is how long a running sub-agent's current call has run, e.g.
// "model 12s", flagged "SLOW" past watch.slow_call_after.
func (v liveView) callAge(r control.SubtaskView, now time.Time) string {
	if r.Status != "running" || r.CurrentSince.IsZero() || r.CurrentKind == "" {
		return "-"
	}
	age := max(0, now.Sub(r.CurrentSince)).Round(time.Second)
	cell := fmt.Sprintf("%s %s", r.CurrentKind, age)
	if v.slowAfter > 0 && age > v.slowAfter {
		cell += " SLOW"
	}
	return cell
}

func elapsed(r control.SubtaskView, now time.Time) string {
	if r.StartedAt.IsZero() {
		return "-"
	}
	end := r.EndedAt
	if end.IsZero() || end.Before(r.StartedAt) {
		end = now
	}
	return end.Sub(r.StartedAt).Round(time.Second).String()
}

// printTable writes the state line and the table as plain text.
func (v liveView) printTable(w io.Writer, now time.Time) {
	fmt.Fprintln(w, v.stateLine())
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(tableHeader, "\t"))
	for _, row := range v.tableRows(now) {
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	_ = tw.Flush()
}

// toolTracker remembers which tool calls of each sub-agent were printed.
type toolTracker struct {
	seen    map[string]int  // child workflow ID → last Seq printed
	drained map[string]bool // ended sub-agents whose last calls were read
}

func newToolTracker() *toolTracker {
	return &toolTracker{seen: map[string]int{}, drained: map[string]bool{}}
}

// line is one printed line of watch: an event or a tool call.
type line struct {
	at   time.Time
	text string
}

// collect returns the tool calls not printed yet: those of running
// sub-agents from their views, and, once, those of sub-agents that ended
// since (asked one last time, so a fast sub-agent's calls are not lost).
func (t *toolTracker) collect(ctx context.Context, c client.Client, runID string, v liveView) []line {
	var out []line
	for _, r := range v.prog.Rows {
		if r.Attempt == 0 {
			continue
		}
		childID := workflows.ChildWorkflowID(runID, r.ID, r.Attempt)
		a, ok := v.agents[r.ID]
		if !ok {
			if r.Status == "running" || r.Status == "pending" || t.drained[childID] {
				continue
			}
			var err error
			if a, err = queryAgent(ctx, c, childID); err != nil {
				continue
			}
			t.drained[childID] = true
		}
		for _, ev := range a.Recent {
			if ev.Seq > t.seen[childID] {
				out = append(out, line{ev.Time, fmt.Sprintf("%s tool %s #%d (step %d): %s", ev.Time.Local().Format("15:04:05"), r.ID, ev.Seq, ev.Step, ev.Brief)})
				t.seen[childID] = ev.Seq
			}
		}
	}
	return out
}

// sortLines orders lines by time, keeping the order of equal times.
func sortLines(ls []line) {
	sort.SliceStable(ls, func(i, j int) bool { return ls[i].at.Before(ls[j].at) })
}
