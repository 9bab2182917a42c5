package workflows

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/workflow"

	"codeswarm/activities"
)

// DefaultParentContinueAsNewAfter is the history length (events) at which
// the parent continues as new: below the server's 10,240-event warning.
const DefaultParentContinueAsNewAfter = 8000

// carriedEvents is how many of its latest events a continued run keeps for
// the progress query (watch reads them with since=seq; the seq carries on).
const carriedEvents = 200

// Carry is the parent's state handed to the run it continues as: the run
// goes on where it was, skipping prepare, plan and approval. Each owner of
// the run's state carries its own part as it is; the JSON names are those
// of v0.1.0 (testdata/carry_v0.1.0.json), so a run handed over by a v0.1.0
// worker goes on under this one. It holds no transcript and no secret.
type Carry struct {
	runRecord
	mergeQueue
	tableState
	// Share is the swarm_share store (shareStore.carried).
	Share []CarriedShare `json:"share,omitempty"`
	viewState
	ledgerState
	Host hostRecord `json:"host"`
	// Ctl is the budget's caps and the steering.
	Ctl controlRecord `json:"ctl"`
}

// controlRecord is the carried part of the run's caps and its steering,
// which v0.1.0 kept in one JSON object.
type controlRecord struct {
	budgetCaps
	steerState
}

// carryJSON is Carry without its JSON methods: the plain encoding.
type carryJSON Carry

// MarshalJSON packs the carry as gzip-compressed JSON (a base64 string in
// the payload): the state of 1,000 subtasks is megabytes of repetitive
// JSON, and Temporal refuses a payload over 2 MB. The gzip header has no
// name or time, so the same state always packs the same.
func (c Carry) MarshalJSON() ([]byte, error) {
	plain, err := json.Marshal(carryJSON(c))
	if err != nil {
		return nil, err
	}
	packed, err := activities.Gzip(plain)
	if err != nil {
		return nil, err
	}
	return json.Marshal(packed)
}

// UnmarshalJSON unpacks what MarshalJSON packed.
func (c *Carry) UnmarshalJSON(data []byte) error {
	var packed []byte
	if err := json.Unmarshal(data, &packed); err != nil {
		return fmt.Errorf("carry: not a packed carry: %w", err)
	}
	plain, err := activities.Gunzip(packed)
	if err != nil {
		return fmt.Errorf("carry: %w", err)
	}
	return json.Unmarshal(plain, (*carryJSON)(c))
}

// carry snapshots the run for the next one.
func (s *swarm) carry() *Carry {
	c := &Carry{
		runRecord:   s.runRecord,
		mergeQueue:  s.merges,
		tableState:  s.plan.tableState,
		Share:       s.share.carried(s.plan.byID),
		viewState:   s.view.viewState,
		ledgerState: s.budget.ledgerState,
		Host:        s.watch.hostRecord,
		Ctl:         controlRecord{budgetCaps: s.budget.budgetCaps, steerState: s.steer.steerState},
	}
	c.Runs++
	c.Prep.RepoListing = "" // only the planner reads it
	c.Tasks = fitTasks(c.Tasks)
	c.Events = c.Events[max(0, len(c.Events)-carriedEvents):]
	return c
}

// fitTasks returns tasks whose results fit payloadTextBudget together
// (fitResults): tasks itself when they do, else copies of them with their
// results cut, the run's own tasks untouched.
func fitTasks(tasks []*Task) []*Task {
	res := make([]activities.SubtaskResult, len(tasks))
	for i, t := range tasks {
		res[i] = t.Res
	}
	if fitResults(res, payloadTextBudget) == 0 {
		return tasks
	}
	out := make([]*Task, len(tasks))
	for i, t := range tasks {
		cp := *t
		cp.Res = res[i]
		out[i] = &cp
	}
	return out
}

// restore puts a carried state back; running subtasks become inherited.
func (s *swarm) restore(c *Carry) {
	s.runRecord = c.runRecord
	s.merges = c.mergeQueue
	s.plan.tableState = c.tableState
	s.view.viewState = c.viewState
	s.view.Events = slices.Clone(c.Events)
	s.budget.ledgerState = c.ledgerState
	s.budget.budgetCaps = c.Ctl.budgetCaps
	s.steer.steerState = c.Ctl.steerState
	s.watch.hostRecord = c.Host
	s.share.restore(c.Share, s.plan.byID)
	s.phase = PhaseRunning
}

// handOverDue: this run should hand over to a new one. It must have moved the
// run on (started or recorded a sub-agent), so a low threshold cannot chain
// runs that do nothing.
func (s *swarm) handOverDue(ctx workflow.Context) bool {
	if ctx.Err() != nil || s.plan.progressed == 0 || s.phase != PhaseRunning {
		return false
	}
	info := workflow.GetInfo(ctx)
	return info.GetContinueAsNewSuggested() || info.GetCurrentHistoryLength() >= cmp.Or(s.in.ParentContinueAsNewAfter, DefaultParentContinueAsNewAfter)
}

// handoverDrainMax bounds the drain before a continue-as-new: new
// sub-agents wait at most this long (workflow time) for the run's own to
// end.
const handoverDrainMax = 30 * time.Second

// handoverDrainVersion marks histories whose parent drains its own
// sub-agents before it continues as new; older histories hand over at once.
const handoverDrainVersion = "handover-drain"

// handoverDrain is the state of the drain before a continue-as-new.
type handoverDrain struct {
	started    bool
	drainDone  bool            // the drain is over (or this history predates it)
	drainTimer workflow.Future // fires at the drain's deadline
}

// drained reports whether the run may hand over now. The server refuses a
// continue-as-new while events came in during its workflow task
// (UnhandledCommand), and the retry replays the whole history first, which
// takes seconds on a busy machine. Signals are refused while the close is
// retried, but the ends of the sub-agents this run started are not: in a
// wide run of quick sub-agents some end during every retry, and the
// hand-over stalled for 35–90 s while the last of them drained (B8). So once
// the hand-over is due the run starts no new sub-agent, keeps merging, and
// hands over when none of its own runs, or after handoverDrainMax with
// those still running (they go on under the next run, as before). A run of
// a real model's minutes-long sub-agents pauses its starts for at most
// that long.
func (s *swarm) drained(ctx workflow.Context) bool {
	d := &s.handover
	if !d.started {
		d.started = true
		if workflow.GetVersion(ctx, handoverDrainVersion, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
			d.drainDone = true
			return true
		}
		limit := cmp.Or(s.in.ParentHandoverDrain, handoverDrainMax)
		if n := s.plan.ownRunning(); n > 0 && limit > 0 {
			d.drainTimer = workflow.NewTimer(ctx, limit)
			s.view.event(ctx, "draining", "", fmt.Sprintf("continue-as-new due: no new sub-agent starts until the %d running ones end (at most %s)",
				n, limit))
		}
	}
	if d.drainDone {
		return true
	}
	if s.plan.ownRunning() == 0 || d.drainTimer == nil || d.drainTimer.IsReady() {
		d.drainDone = true
	}
	return d.drainDone
}

// settle lets everything in flight finish before the run continues as new:
// update handlers (swarm_share, steering, move), signals to sub-agents, and
// every signal received (usage reports, inherited children's ends), so none
// is lost. It reports false when the run was cancelled meanwhile.
func (s *swarm) settle(ctx workflow.Context) bool {
	for {
		if workflow.Await(ctx, func() bool { return s.children.inflight == 0 && workflow.AllHandlersFinished(ctx) }) != nil {
			return false
		}
		if !s.drain(ctx) {
			return ctx.Err() == nil
		}
	}
}

// drain records every signal waiting in the run's channels; it reports
// whether there was one.
func (s *swarm) drain(ctx workflow.Context) bool {
	got := false
	for {
		var r BudgetReport
		if !s.children.reports.ReceiveAsync(&r) {
			break
		}
		got = true
		s.onReport(ctx, r)
	}
	for {
		var d activities.ChildDone
		if !s.children.ends.ReceiveAsync(&d) {
			break
		}
		got = true
		s.onChildDone(ctx, d)
	}
	return got
}

// continueAsNew hands the run over to a new run of the same workflow.
func (s *swarm) continueAsNew(ctx workflow.Context) error {
	s.view.event(ctx, "continued", "", fmt.Sprintf("history at %d events: continued as new (run %d of the chain) with %d running subtasks",
		workflow.GetInfo(ctx).GetCurrentHistoryLength(), s.Runs+2, s.plan.Running))
	next := s.in
	next.Carry = s.carry()
	if s.children.stopAwait != nil {
		s.children.stopAwait()
	}
	return workflow.NewContinueAsNewError(ctx, SwarmWorkflowName, next)
}
