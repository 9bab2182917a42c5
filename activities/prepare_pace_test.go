package activities

import "testing"

// TestPrepareRunSaysWhetherThePlannerNeedsAPermit: PrepareRun reports
// NoRateLimit only when its worker's pace says no rate limit is in force, as
// StartSubtask does for a sub-agent's first turn; with no pace at all the
// planner takes a permit.
func TestPrepareRunSaysWhetherThePlannerNeedsAPermit(t *testing.T) {
	for _, c := range []struct {
		pace        LLMPace
		noRateLimit bool
	}{{nil, false}, {&fakePace{}, true}, {&fakePace{limited: true}, false}} {
		f := newGitFixture(t)
		f.a.Pace = c.pace
		if prep := f.prepare(t); prep.NoRateLimit != c.noRateLimit {
			t.Errorf("pace %+v: NoRateLimit %v, want %v", c.pace, prep.NoRateLimit, c.noRateLimit)
		}
	}
}
