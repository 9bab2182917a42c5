package workflows

import "go.temporal.io/sdk/workflow"

// parentLeanChange versions a cheaper parent. A run started from
// parentLeanVersion records this one version marker where it recorded one
// per change before (each marker also upserts TemporalChangeVersion, a
// visibility write): the marker implies every parent change in
// leanImplied. It also skips the planner's LLMPermit when PrepareRun found
// no LLM rate limit in force (as a sub-agent's first turn does after
// StartSubtask), and publishes the live view once per wake of the
// schedule instead of after every start and end. Runs recorded before it
// ask each change on its own and replay unchanged.
const (
	parentLeanChange  = "parent-lean"
	parentLeanVersion = 1
)

// leanImplied are the parent's changes, at the version each had when
// parentLeanChange was made, that a lean run takes as given. A change that
// gets a newer version must be asked on its own again (or get a new lean
// version): atLeast only answers for the versions listed here.
var leanImplied = map[string]workflow.Version{
	parentCANChange:   1,
	workOnHostChange:  workOnHostVersion,
	hostWatchChange:   1,
	controlChange:     1,
	budgetWaitsChange: 1,
	mergeBatchChange:  1,
}

// atLeast reports whether the run has change at version v or later: a lean
// run has every change in leanImplied without asking; any other run asks
// GetVersion (a marker in a new history).
func (s *swarm) atLeast(ctx workflow.Context, change string, v workflow.Version) bool {
	if implied, ok := leanImplied[change]; s.lean && ok && implied >= v {
		return true
	}
	return workflow.GetVersion(ctx, change, workflow.DefaultVersion, v) >= v
}

// plannerPermit: the planner's call takes an LLM permit first. A lean run
// skips the first call's permit when PrepareRun's worker had no rate limit
// in force; a repair, like a call answered 429, takes one.
func (s *swarm) plannerPermit(attempt int) bool {
	return !(s.lean && attempt == 0 && s.prep.Unpaced)
}

// touch marks the live view changed. A lean run publishes it once, before
// the schedule next waits (flush); others publish it at once, as they did.
func (s *swarm) touch(ctx workflow.Context) {
	if s.lean {
		s.stale = true
		return
	}
	s.refresh(ctx)
}

// flush publishes a live view touch left stale, before the schedule waits
// for the next event.
func (s *swarm) flush(ctx workflow.Context) {
	if s.stale {
		s.stale = false
		s.refresh(ctx)
	}
}

// showBeforeWait publishes a lean run's live view before a merge or verify
// the run waits on, so the view does not lag behind the ends it has booked
// for as long as the activity runs. Others publish after it, as they did.
func (s *swarm) showBeforeWait(ctx workflow.Context) {
	if s.lean {
		s.stale = false
		s.refresh(ctx)
	}
}
