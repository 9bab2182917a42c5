package workflows

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
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
// goes on where it was, skipping prepare, plan and approval. It holds no
// transcript and no secret.
type Carry struct {
	// Runs is how many runs of this workflow came before the new one.
	Runs        int                         `json:"runs"`
	Prep        activities.PrepareRunResult `json:"prep"`
	Head        string                      `json:"head"`
	Started     time.Time                   `json:"started"`
	Tasks       []CarriedTask               `json:"tasks"`
	Share       []CarriedShare              `json:"share,omitempty"`
	Events      []activities.Event          `json:"events,omitempty"`
	Seq         int                         `json:"seq"`
	Usage       activities.Usage            `json:"usage"`
	LLMCalls    int                         `json:"llm_calls"`
	Used        int                         `json:"used"`
	Reserved    int                         `json:"reserved"`
	Running     int                         `json:"running"`
	Spawned     int                         `json:"spawned"`
	Verify      *activities.VerifyReport    `json:"verify,omitempty"`
	PlanNote    string                      `json:"plan_note,omitempty"`
	State       string                      `json:"state"`
	StateReason string                      `json:"state_reason,omitempty"`
	Host        CarriedHost                 `json:"host"`
	Ctl         CarriedCtl                  `json:"ctl"`
	FastModel   bool                        `json:"fast_model,omitempty"`
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
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(plain); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return json.Marshal(b.Bytes())
}

// UnmarshalJSON unpacks what MarshalJSON packed.
func (c *Carry) UnmarshalJSON(data []byte) error {
	var packed []byte
	if err := json.Unmarshal(data, &packed); err != nil {
		return fmt.Errorf("carry: not a packed carry: %w", err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(packed))
	if err != nil {
		return fmt.Errorf("carry: %w", err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		return fmt.Errorf("carry: %w", err)
	}
	return json.Unmarshal(plain, (*carryJSON)(c))
}

// CarriedTask is one subtask's state. A running one's sub-agent goes on
// running: the new run learns of its end from AwaitChildren.
type CarriedTask struct {
	Sub          activities.Subtask       `json:"sub"`
	State        int                      `json:"state"`
	Attempt      int                      `json:"attempt,omitempty"`
	Reserved     int                      `json:"reserved,omitempty"`
	Conflict     *activities.ConflictInfo `json:"conflict,omitempty"`
	First        *SubAgentResult          `json:"first,omitempty"` // without its result text
	LastWorktree string                   `json:"last_worktree,omitempty"`
	Res          activities.SubtaskResult `json:"res"`
	Started      time.Time                `json:"started"`
	Ended        time.Time                `json:"ended"`
	LastEvent    string                   `json:"last_event,omitempty"`
	ChildID      string                   `json:"child_id,omitempty"`
	Branch       string                   `json:"branch,omitempty"`
	ResumeFrom   string                   `json:"resume_from,omitempty"`
	Ctl          CarriedTaskCtl           `json:"ctl"`
}

// CarriedTaskCtl is a subtask's budget ledger and its waiting notes.
type CarriedTaskCtl struct {
	GrantTokens int64            `json:"grant_tokens,omitempty"`
	GrantUSD    float64          `json:"grant_usd,omitempty"`
	Usage       activities.Usage `json:"usage"`
	Step        int              `json:"step,omitempty"`
	Ask         *BudgetReport    `json:"ask,omitempty"`
	Notes       []string         `json:"notes,omitempty"`
}

// CarriedShare is one swarm_share entry. A subtask's own published result
// is not copied: FromTask rebuilds it from the subtask's result.
type CarriedShare struct {
	activities.SharedResult
	FromTask bool `json:"from_task,omitempty"`
}

// CarriedHost is what the run knows of its workspace host.
type CarriedHost struct {
	Lost  bool      `json:"lost,omitempty"`
	Since time.Time `json:"since"`
	Moves int       `json:"moves,omitempty"`
	From  string    `json:"from,omitempty"`
}

// CarriedCtl is the run's steering state.
type CarriedCtl struct {
	MaxTokens    int64   `json:"max_tokens,omitempty"`
	MaxUSD       float64 `json:"max_usd,omitempty"`
	Cost         float64 `json:"cost,omitempty"`
	PauseSeq     int     `json:"pause_seq,omitempty"`
	Approval     string  `json:"approval,omitempty"`
	RejectReason string  `json:"reject_reason,omitempty"`
}

// carry snapshots the run for the next one.
func (s *swarm) carry() *Carry {
	c := &Carry{
		Runs: s.runs + 1, Prep: s.prep, Head: s.head, Started: s.started, Seq: s.seq,
		Usage: s.usage, LLMCalls: s.llmCalls, Used: s.used, Reserved: s.reserved, Running: s.running, Spawned: s.spawned,
		Verify: s.verify, PlanNote: s.planNote, State: s.state, StateReason: s.stateReason, FastModel: s.fastModel,
		Host: CarriedHost{Lost: s.hs.lost, Since: s.hs.since, Moves: s.hs.moves, From: s.hs.from},
		Ctl: CarriedCtl{MaxTokens: s.ctl.maxTokens, MaxUSD: s.ctl.maxUSD, Cost: s.ctl.cost, PauseSeq: s.ctl.pauseSeq,
			Approval: s.ctl.approval, RejectReason: s.ctl.rejectReason},
	}
	c.Prep.RepoListing = "" // only the planner reads it
	for _, t := range s.tasks {
		c.Tasks = append(c.Tasks, t.carried())
	}
	for _, r := range s.share {
		own, ok := s.ownResult(r.Key)
		if ok && sameShare(own, r) {
			c.Share = append(c.Share, CarriedShare{SharedResult: activities.SharedResult{Key: r.Key}, FromTask: true})
			continue
		}
		c.Share = append(c.Share, CarriedShare{SharedResult: r})
	}
	c.Events = s.events[max(0, len(s.events)-carriedEvents):]
	return c
}

func (t *task) carried() CarriedTask {
	ct := CarriedTask{
		Sub: t.sub, State: int(t.state), Attempt: t.attempt, Reserved: t.reserved, Conflict: t.conflict,
		LastWorktree: t.last.Worktree, Res: t.res, Started: t.started, Ended: t.ended, LastEvent: t.lastEvent,
		ChildID: t.childID, Branch: t.branch, ResumeFrom: t.resumeFrom,
		Ctl: CarriedTaskCtl{GrantTokens: t.ctl.grantTokens, GrantUSD: t.ctl.grantUSD, Usage: t.ctl.usage, Step: t.ctl.step,
			Ask: t.ctl.ask, Notes: t.ctl.notes},
	}
	if t.first != nil {
		first := *t.first
		first.Result, first.FilesChanged = "", nil // the result counts only its figures and branch
		ct.First = &first
	}
	return ct
}

// restore puts a carried state back; running subtasks become inherited.
func (s *swarm) restore(c *Carry) {
	s.runs, s.prep, s.head, s.started, s.seq = c.Runs, c.Prep, c.Head, c.Started, c.Seq
	s.usage, s.llmCalls, s.used, s.reserved, s.running, s.spawned = c.Usage, c.LLMCalls, c.Used, c.Reserved, c.Running, c.Spawned
	s.verify, s.planNote, s.state, s.stateReason = c.Verify, c.PlanNote, c.State, c.StateReason
	s.fastModel = c.FastModel
	s.hs.lost, s.hs.since, s.hs.moves, s.hs.from = c.Host.Lost, c.Host.Since, c.Host.Moves, c.Host.From
	s.ctl.maxTokens, s.ctl.maxUSD, s.ctl.cost, s.ctl.pauseSeq = c.Ctl.MaxTokens, c.Ctl.MaxUSD, c.Ctl.Cost, c.Ctl.PauseSeq
	s.ctl.approval, s.ctl.rejectReason = c.Ctl.Approval, c.Ctl.RejectReason
	s.events = append([]activities.Event(nil), c.Events...)
	s.phase = PhaseRunning
	for _, ct := range c.Tasks {
		s.tasks = append(s.tasks, restoredTask(ct))
	}
	for _, r := range c.Share {
		if r.FromTask {
			if own, ok := s.ownResult(r.Key); ok {
				s.share = append(s.share, own)
			}
			continue
		}
		s.share = append(s.share, r.SharedResult)
	}
}

func restoredTask(ct CarriedTask) *task {
	t := &task{
		sub: ct.Sub, state: taskState(ct.State), attempt: ct.Attempt, reserved: ct.Reserved, conflict: ct.Conflict,
		first: ct.First, res: ct.Res, started: ct.Started, ended: ct.Ended, lastEvent: ct.LastEvent,
		childID: ct.ChildID, branch: ct.Branch, resumeFrom: ct.ResumeFrom,
		ctl: taskCtl{grantTokens: ct.Ctl.GrantTokens, grantUSD: ct.Ctl.GrantUSD, usage: ct.Ctl.Usage, step: ct.Ctl.Step,
			ask: ct.Ctl.Ask, notes: ct.Ctl.Notes},
	}
	t.last.Worktree = ct.LastWorktree
	return t
}

// ownResult is the share entry a finished subtask published as its result.
func (s *swarm) ownResult(key string) (activities.SharedResult, bool) {
	t := s.byID(key)
	if t == nil || t.state != stateDone {
		return activities.SharedResult{}, false
	}
	return resultShare(t)
}

func sameShare(a, b activities.SharedResult) bool {
	return a.Key == b.Key && a.Value == b.Value && a.Publisher == b.Publisher && slices.Equal(a.Tags, b.Tags)
}

// canDue: this run should hand over to a new one. It must have moved the
// run on (started or booked a sub-agent), so a low threshold cannot chain
// runs that do nothing.
func (s *swarm) canDue(ctx workflow.Context) bool {
	if ctx.Err() != nil || s.progressed == 0 || s.phase != PhaseRunning {
		return false
	}
	info := workflow.GetInfo(ctx)
	return info.GetContinueAsNewSuggested() || info.GetCurrentHistoryLength() >= cmp.Or(s.in.ParentContinueAsNewAfter, DefaultParentContinueAsNewAfter)
}

// settle lets everything in flight finish before the run continues as new:
// update handlers (swarm_share, steering, move), signals to sub-agents, and
// every signal received (usage reports, inherited children's ends), so none
// is lost. It reports false when the run was cancelled meanwhile.
func (s *swarm) settle(ctx workflow.Context) bool {
	for {
		if workflow.Await(ctx, func() bool { return s.inflight == 0 && workflow.AllHandlersFinished(ctx) }) != nil {
			return false
		}
		if !s.drain(ctx) {
			return ctx.Err() == nil
		}
	}
}

// drain books every signal waiting in the run's channels; it reports
// whether there was one.
func (s *swarm) drain(ctx workflow.Context) bool {
	got := false
	for {
		var r BudgetReport
		if !s.reports.ReceiveAsync(&r) {
			break
		}
		got = true
		s.onReport(ctx, r)
	}
	for {
		var d activities.ChildDone
		if !s.childDone.ReceiveAsync(&d) {
			break
		}
		got = true
		s.onChildDone(ctx, d)
	}
	return got
}

// continueAsNew hands the run over to a new run of the same workflow.
func (s *swarm) continueAsNew(ctx workflow.Context) error {
	s.event(ctx, "continued", "", fmt.Sprintf("history at %d events: continued as new (run %d of the chain) with %d running subtasks",
		workflow.GetInfo(ctx).GetCurrentHistoryLength(), s.runs+2, s.running))
	next := s.in
	next.Carry = s.carry()
	if s.stopAwait != nil {
		s.stopAwait()
	}
	return workflow.NewContinueAsNewError(ctx, SwarmWorkflowName, next)
}

// awaitInherited has AwaitChildren report the end of every sub-agent an
// earlier run started. It runs detached from the run's cancellation, so a
// cancelled run still learns that its inherited sub-agents ended.
func (s *swarm) awaitInherited(ctx workflow.Context) {
	var ids []string
	for _, t := range s.tasks {
		if t.state == stateRunning {
			ids = append(ids, t.childID)
		}
	}
	if len(ids) == 0 {
		return
	}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	actx, cancel := workflow.WithCancel(dctx)
	s.stopAwait = cancel
	actx = workflow.WithActivityOptions(actx, workflow.ActivityOptions{
		TaskQueue:           s.hs.main,
		StartToCloseTimeout: watchLifetime,
		HeartbeatTimeout:    heartbeatTimeout,
		Summary:             activities.FirstLine(fmt.Sprintf("await %d inherited sub-agents", len(ids)), summaryCap),
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second},
	})
	workflow.ExecuteActivity(actx, a.AwaitChildren, activities.AwaitChildrenInput{ParentID: s.runID, Children: ids})
}

// inherited finds the running subtask whose sub-agent an earlier run
// started (it has no future in this run).
func (s *swarm) inherited(childID string) *task {
	for _, t := range s.tasks {
		if t.state == stateRunning && t.future == nil && t.childID == childID {
			return t
		}
	}
	return nil
}

// onChildDone books an inherited sub-agent's end. A repeat (AwaitChildren
// retried) or the end of a sub-agent a move replaced is ignored.
func (s *swarm) onChildDone(ctx workflow.Context, d activities.ChildDone) {
	if e, ok := s.inheritedEnd(d); ok {
		s.finishChild(ctx, e.t, e.r, e.err)
	}
}

// inheritedEnd decodes an inherited sub-agent's end; false for a repeat or
// a sub-agent a move replaced.
func (s *swarm) inheritedEnd(d activities.ChildDone) (childEnd, bool) {
	t := s.inherited(d.ChildWorkflowID)
	if t == nil {
		return childEnd{}, false
	}
	var r SubAgentResult
	var err error
	switch {
	case d.Cancelled:
		err = temporal.NewCanceledError(d.Error)
	case d.Error != "":
		err = errors.New(d.Error)
	default:
		if jerr := json.Unmarshal(d.Result, &r); jerr != nil {
			err = fmt.Errorf("decode the result of %s: %w", d.ChildWorkflowID, jerr)
		}
	}
	return childEnd{t: t, r: r, err: err}, true
}

// cancelInherited passes the run's cancellation on to the sub-agents an
// earlier run started (those started by this run get it from their
// context), once; their ends come back through AwaitChildren.
func (s *swarm) cancelInherited(ctx workflow.Context) {
	if ctx.Err() == nil || s.cancelSent {
		return
	}
	s.cancelSent = true
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	for _, t := range s.tasks {
		if t.state == stateRunning && t.future == nil {
			id := t.childID
			f := workflow.RequestCancelExternalWorkflow(dctx, id, "")
			workflow.Go(dctx, func(gctx workflow.Context) {
				if err := f.Get(gctx, nil); err != nil {
					workflow.GetLogger(gctx).Warn("cancel an inherited sub-agent", "child", id, "error", err)
				}
			})
		}
	}
}

// hasInherited: a sub-agent an earlier run started is running.
func (s *swarm) hasInherited() bool {
	for _, t := range s.tasks {
		if t.state == stateRunning && t.future == nil {
			return true
		}
	}
	return false
}
