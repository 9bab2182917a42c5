package cli

import (
	"bytes"
	"strings"
	"testing"

	"codeswarm/activities"
)

// The result's summary (result, run, status of an ended run) and the live
// table (status, watch) mark work the result cache held, and say how much
// of the run it was and how to redo it; a run without any says nothing.
func TestResultCacheShown(t *testing.T) {
	var out bytes.Buffer
	r := activities.SwarmResult{RunID: "r", Success: true,
		SubtaskResults: []activities.SubtaskResult{
			{ID: "01-a", Status: activities.StatusCompleted, Merge: "merged", Cached: true},
			{ID: "02-b", Status: activities.StatusCompleted, Merge: "merged", Steps: 4},
		},
		Stats: activities.Stats{SubagentsCached: 1, PlanCached: true},
	}
	printSummary(IO{Out: &out, Err: &out}, r)
	for _, want := range []string{
		"01-a     0      completed (cached)  merged",
		"02-b     0      completed           merged",
		"result cache: 1 of 2 sub-agents and the plan reused earlier work (run --no-cache to redo them)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	r.SubtaskResults[0].Cached, r.Stats.SubagentsCached, r.Stats.PlanCached = false, 0, false
	printSummary(IO{Out: &out, Err: &out}, r)
	if strings.Contains(out.String(), "cache") {
		t.Errorf("summary of a run without cached work mentions the cache:\n%s", out.String())
	}

	v := sampleView()
	v.prog.Rows[0].Cached = true
	rows := v.tableRows(t0)
	if rows[0][1] != "completed (cached)" || rows[1][1] != "running" {
		t.Errorf("live table statuses %q, %q; want the cached row marked and no other", rows[0][1], rows[1][1])
	}
}
