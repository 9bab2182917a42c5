package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"codeswarm/activities"
	"codeswarm/config"
	"codeswarm/control"
)

var t0 = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

// sampleView is a run with one sub-agent done, one running (with what its
// own query says) and one waiting.
func sampleView() liveView {
	return liveView{
		prog: control.Progress{Phase: "running", State: control.RunStateBudgetPaused, StateReason: "token cap reached", Rows: []control.SubtaskView{
			{ID: "01-a", Status: activities.StatusCompleted, Attempt: 1, Step: 4, MaxSteps: 20, Tokens: 400, StartedAt: t0, EndedAt: t0.Add(90 * time.Second), LastEvent: "merged: into integration", Merge: "merged"},
			{ID: "02-b", Status: "running", Attempt: 1, MaxSteps: 20, StartedAt: t0.Add(time.Minute), LastEvent: "started: from abc"},
			{ID: "03-c", Status: "pending"},
		}},
		agents: map[string]control.AgentView{"02-b": {Subtask: "02-b", Step: 7, MaxSteps: 20, Tokens: 900, CostUSD: 0.25, CurrentTool: "bash: go test ./...",
			CurrentKind: "tool", CurrentSince: t0.Add(2*time.Minute + 15*time.Second)}},
		slowAfter: 30 * time.Second,
	}
}

func TestLiveTable(t *testing.T) {
	v := sampleView()
	var b bytes.Buffer
	v.printTable(&b, t0.Add(3*time.Minute))
	out := b.String()
	for _, want := range []string{
		"state paused_budget: token cap reached (phase running); 1/3 subtasks done; 1300 tokens, $0.2500",
		"SUBTASK  STATUS", "01-a     completed  4/20  -", "400     1m30s    merged: into integration",
		"02-b     running    7/20  bash: go test ./...  tool 45s SLOW  900     2m0s", "03-c     pending    -",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

// TestCallAgeFlag: a current call younger than watch.slow_call_after shows
// its age without the flag.
func TestCallAgeFlag(t *testing.T) {
	v := sampleView()
	v.slowAfter = time.Minute
	rows := v.tableRows(t0.Add(3 * time.Minute))
	if got := rows[1][4]; got != "tool 45s" {
		t.Errorf("CALL = %q, want %q", got, "tool 45s")
	}
	if got := rows[0][4]; got != "-" {
		t.Errorf("CALL of an ended sub-agent = %q, want -", got)
	}
}

func TestWatchScreen(t *testing.T) {
	m := &watchModel{id: "run-1"}
	if !strings.Contains(ansi.Strip(m.View().Content), "waiting for the run's first progress") {
		t.Errorf("first screen: %q", m.View().Content)
	}
	m.Update(liveMsg{view: sampleView(), lines: []string{"10:00:00 started 01-a: go"}})
	screen := ansi.Strip(m.View().Content)
	for _, want := range []string{"codeswarm watch run-1", "token cap reached", "1/3 subtasks", "bash: go test ./...", "10:00:00 started 01-a: go", "q to stop watching"} {
		if !strings.Contains(screen, want) {
			t.Errorf("screen lacks %q:\n%s", want, screen)
		}
	}
	if _, cmd := m.Update(tea.KeyPressMsg{Code: 'q', Text: "q"}); cmd == nil || !m.interrupted || !m.quit {
		t.Error("q does not stop watching, or not as a quit (exit 0)")
	}
	m.interrupted, m.quit = false, false
	if _, cmd := m.Update(tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl}); cmd == nil || !m.interrupted || m.quit {
		t.Error("Ctrl-C does not stop watching, or counts as q (exit 130 expected)")
	}
	if got := ansi.Strip(progressBar(1, 4, 8)); got != "██░░░░░░ 1/4 subtasks" {
		t.Errorf("progress bar = %q", got)
	}
}

func TestListQuery(t *testing.T) {
	repo := t.TempDir()
	e := &env{cfg: &config.Config{}}
	cases := []struct {
		o    listOpts
		want string
		bad  bool
	}{
		{listOpts{}, "WorkflowType = 'SwarmWorkflow' AND ExecutionStatus != 'ContinuedAsNew'", false},
		{listOpts{status: "failed", repo: repo, query: "CodeswarmCostUSD > 1"},
			"WorkflowType = 'SwarmWorkflow' AND ExecutionStatus != 'ContinuedAsNew' AND CodeswarmStatus = 'failed' AND ExecutionStatus IN ('Completed', 'Failed') AND CodeswarmRepo = '" + repo + "' AND (CodeswarmCostUSD > 1)", false},
		// A terminated run's attribute still says running: it is not listed
		// as running, and is listed as terminated.
		{listOpts{status: "running"}, "WorkflowType = 'SwarmWorkflow' AND ExecutionStatus != 'ContinuedAsNew' AND CodeswarmStatus = 'running' AND ExecutionStatus = 'Running'", false},
		{listOpts{status: "terminated"}, "WorkflowType = 'SwarmWorkflow' AND ExecutionStatus != 'ContinuedAsNew' AND ExecutionStatus = 'Terminated'", false},
		{listOpts{status: "asleep"}, "", true},
		{listOpts{repo: "/tmp/it's"}, "", true},
	}
	for _, c := range cases {
		got, err := c.o.build(context.Background(), e)
		if c.bad != (err != nil) || got != c.want {
			t.Errorf("build(%+v) = %q, %v; want %q (error %v)", c.o, got, err, c.want, c.bad)
		}
	}
	e.cfg.Codec.Key = "k"
	if _, err := (&listOpts{repo: repo}).build(context.Background(), e); err == nil || !strings.Contains(err.Error(), "encrypted") {
		t.Errorf("--repo with encrypted payloads: %v, want an error saying why", err)
	}
}
