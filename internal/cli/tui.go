package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"charm.land/lipgloss/v2/table"
	"go.temporal.io/sdk/client"
	"golang.org/x/term"

	"codeswarm/activities"
)

// isTerminal reports whether w is a terminal, where watch redraws in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// tuiEvents is how many recent events the live screen keeps.
const tuiEvents = 6

// watchModel is the live screen of `watch` in a terminal.
type watchModel struct {
	id          string
	view        liveView
	fetched     bool
	events      []string
	ended       bool
	interrupted bool
	quit        bool // left with q (not Ctrl-C)
	// slowAfter is watch.slow_call_after (the CALL column's flag).
	slowAfter time.Duration
}

// liveMsg is a new reading of the run; endMsg says the run closed.
type (
	liveMsg struct {
		view  liveView
		lines []string
	}
	endMsg struct{}
)

func (m *watchModel) Init() tea.Cmd { return nil }

func (m *watchModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case liveMsg:
		m.view, m.fetched = msg.view, true
		m.view.slowAfter = m.slowAfter
		m.events = append(m.events, msg.lines...)
		if n := len(m.events); n > tuiEvents {
			m.events = m.events[n-tuiEvents:]
		}
	case endMsg:
		m.ended = true
		return m, tea.Quit
	case tea.KeyPressMsg:
		if s := msg.String(); s == "q" || s == "ctrl+c" {
			m.interrupted, m.quit = true, s == "q"
			return m, tea.Quit
		}
	}
	return m, nil
}

var (
	titleStyle  = lipgloss.NewStyle().Bold(true)
	dimStyle    = lipgloss.NewStyle().Faint(true)
	barDone     = lipgloss.NewStyle().Foreground(lipgloss.Color("42"))
	barLeft     = lipgloss.NewStyle().Foreground(lipgloss.Color("240"))
	headerStyle = lipgloss.NewStyle().Bold(true).Padding(0, 1)
	cellStyle   = lipgloss.NewStyle().Padding(0, 1)
)

func (m *watchModel) View() tea.View {
	var b strings.Builder
	b.WriteString(titleStyle.Render("codeswarm watch "+m.id) + "\n")
	if !m.fetched {
		b.WriteString(dimStyle.Render("waiting for the run's first progress…") + "\n")
		return tea.NewView(b.String())
	}
	b.WriteString(m.view.stateLine() + "\n")
	b.WriteString(progressBar(m.view.done(), len(m.view.prog.Rows), 40) + "\n")
	t := table.New().Border(lipgloss.NormalBorder()).Headers(tableHeader...).Rows(m.view.tableRows(time.Now())...).
		StyleFunc(func(row, _ int) lipgloss.Style {
			if row == table.HeaderRow {
				return headerStyle
			}
			return cellStyle
		})
	b.WriteString(t.Render() + "\n")
	for _, e := range m.events {
		b.WriteString(dimStyle.Render(activities.FirstLine(e, 160)) + "\n")
	}
	if !m.ended {
		b.WriteString(dimStyle.Render("q to stop watching (the run goes on)") + "\n")
	}
	return tea.NewView(b.String())
}

// progressBar draws done of total as a bar of width cells.
func progressBar(done, total, width int) string {
	filled := 0
	if total > 0 {
		filled = done * width / total
	}
	return barDone.Render(strings.Repeat("█", filled)) + barLeft.Render(strings.Repeat("░", width-filled)) +
		fmt.Sprintf(" %d/%d subtasks", done, total)
}

// watchLive follows a run on the live screen until it closes, then returns
// its result; leaving early (q) is an error that says the run goes on.
// Verbose adds the sub-agents' tool calls to the screen's recent lines.
func watchLive(ctx context.Context, c client.Client, id string, out io.Writer, verbose bool, slowAfter time.Duration) (activities.SwarmResult, error) {
	m := &watchModel{id: id, slowAfter: slowAfter}
	prog := tea.NewProgram(m, tea.WithOutput(out), tea.WithContext(ctx))
	done := awaitResult(ctx, c, id)
	results := make(chan outcome, 1)
	go func() {
		var tools *toolTracker
		if verbose {
			tools = newToolTracker()
		}
		results <- pollLive(ctx, c, id, done, tools, prog.Send)
		prog.Send(endMsg{})
	}()
	if _, err := prog.Run(); err != nil || m.interrupted || !m.ended {
		return activities.SwarmResult{}, interrupted(id, m.quit)
	}
	res := <-results
	if res.err != nil {
		return activities.SwarmResult{}, noResult(id, res.err)
	}
	return res.res, nil
}

// pollLive sends a reading every half second until the run's result
// arrives, then a last one.
func pollLive(ctx context.Context, c client.Client, id string, done <-chan outcome, tools *toolTracker, send func(tea.Msg)) outcome {
	since := 0
	read := func() {
		v, err := fetchLive(ctx, c, id, since)
		if err != nil {
			return
		}
		var ls []line
		if tools != nil {
			ls = tools.collect(ctx, c, id, v)
		}
		for _, e := range v.prog.Events {
			ls = append(ls, line{e.Time, eventLine(e)})
			since = e.Seq
		}
		sortLines(ls)
		lines := make([]string, len(ls))
		for i, l := range ls {
			lines[i] = l.text
		}
		send(liveMsg{view: v, lines: lines})
	}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	read()
	for {
		select {
		case o := <-done:
			read()
			return o
		case <-tick.C:
			read()
		case <-ctx.Done():
			return outcome{err: ctx.Err()}
		}
	}
}
