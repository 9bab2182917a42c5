package workflows

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"codeswarm/activities"
)

// watchLifetime bounds one WatchHost attempt. When it ends the server retries
// it without a history event, so a healthy run's watch writes nothing.
const watchLifetime = 24 * time.Hour

// hostState is what the parent knows of its workspace host.
type hostState struct {
	main     string // the run's main task queue
	watching bool   // the watch runs (from startHostWatch, once the host is known)
	lost     bool
	since    time.Time
	moves    int
	// stopWatch ends the current WatchHost, so the watch restarts on the
	// host a move chose; stopCall ends the parent's workspace activity
	// waiting on the old host, which onHost then re-issues.
	stopWatch workflow.CancelFunc
	stopCall  workflow.CancelFunc
	from      string              // the workspace queue of the host the last move left
	stopAuto  workflow.CancelFunc // the automatic move's wait (workspace.auto_move_after)
	// wake ends the scheduler's wait after a move replaced the futures it
	// waits on.
	wake workflow.Channel
	// calls counts the run's WatchHost calls, which name their activity
	// IDs; ended: EndHostWatch completed the current call (the run ends its
	// watch before it ends or hands over, and waits until the call's end is
	// in its history); loopDone: the watch loop has returned.
	ended, loopDone bool
	calls           int
	callID          string
}

// host is the name of the run's workspace host ("" before prepare).
func (s *swarm) host() string {
	if s.prep.WorkspaceQueue == "" {
		return ""
	}
	return activities.HostOfQueue(s.hs.main, s.prep.WorkspaceQueue)
}

// startHostWatch publishes the run's host and watches it until the returned
// function is called.
func (s *swarm) startHostWatch(ctx workflow.Context) (stop func(), err error) {
	if err := s.publishHost(ctx); err != nil {
		return nil, err
	}
	s.hs.watching = true
	wctx, cancel := workflow.WithCancel(ctx)
	workflow.Go(wctx, s.watchLoop)
	return func() {
		if s.hs.ended {
			_ = workflow.Await(ctx, func() bool { return s.hs.loopDone })
		}
		cancel()
	}, nil
}

// endHostWatch completes the run's WatchHost call, so that its history does
// not end with the call pending (see activities.EndHostWatch). A failure
// leaves the call to the cancel that follows.
func (s *swarm) endHostWatch(ctx workflow.Context) {
	if !s.hs.watching || s.hs.ended || s.hs.callID == "" {
		return
	}
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
		Summary:             "end host watch",
	})
	if err := workflow.ExecuteLocalActivity(lctx, a.EndHostWatch, activities.EndHostWatchInput{ActivityID: s.hs.callID}).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Warn("host watch not ended; it is cancelled instead", "error", err)
		return
	}
	s.hs.ended = true
}

// publishHost records the run's host in its memo and, where the namespace
// has it, the CodeswarmHost search attribute (list shows either).
func (s *swarm) publishHost(ctx workflow.Context) error {
	host := s.host()
	if err := workflow.UpsertMemo(ctx, map[string]interface{}{"host": host}); err != nil {
		return fmt.Errorf("record the run's host in its memo: %w", err)
	}
	if !s.prep.HostAttribute {
		return nil
	}
	key := temporal.NewSearchAttributeKeyKeyword(activities.SAHost)
	if err := workflow.UpsertTypedSearchAttributes(ctx, key.ValueSet(host)); err != nil {
		return fmt.Errorf("set %s: %w", activities.SAHost, err)
	}
	return nil
}

// watchLoop runs WatchHost on the main queue, one call per change of the
// host's liveness (or per move), and reports each change.
func (s *swarm) watchLoop(ctx workflow.Context) {
	defer func() { s.hs.loopDone = true }()
	alive := !s.hs.lost // lost only in a run continued while its host was
	for ctx.Err() == nil && !s.hs.ended {
		queue := s.prep.WorkspaceQueue
		actx, cancel := workflow.WithCancel(ctx)
		s.hs.stopWatch = cancel
		var st activities.HostStatus
		wctx := summarized(watchOptions(actx, s.hs.main), "watch host "+activities.HostOfQueue(s.hs.main, queue))
		s.hs.calls++
		s.hs.callID = fmt.Sprintf("watch-host-%d", s.hs.calls)
		wctx = workflow.WithActivityOptions(wctx, withActivityID(workflow.GetActivityOptions(wctx), s.hs.callID))
		err := workflow.ExecuteActivity(wctx, a.WatchHost, activities.WatchHostInput{Queue: queue, Alive: alive}).Get(ctx, &st)
		cancel()
		switch {
		case ctx.Err() != nil || st.Ended || s.hs.ended:
			return
		case queue != s.prep.WorkspaceQueue:
			alive = true // moved: watch the new host, which was polling
		case err != nil:
			workflow.GetLogger(ctx).Warn("host watch failed; retrying in a minute", "error", err)
			_ = workflow.Sleep(ctx, time.Minute)
		case st.Alive != alive:
			alive = st.Alive
			s.onHostStatus(ctx, st)
		}
	}
}

func withActivityID(o workflow.ActivityOptions, id string) workflow.ActivityOptions {
	o.ActivityID = id
	return o
}

func watchOptions(ctx workflow.Context, main string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           main,
		StartToCloseTimeout: watchLifetime,
		HeartbeatTimeout:    heartbeatTimeout,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second},
	})
}

// onHostStatus says in the run's state that it waits for its host, or that
// the host is back. Another state (a pause) is left as it is.
func (s *swarm) onHostStatus(ctx workflow.Context, st activities.HostStatus) {
	if st.Alive {
		s.hs.lost = false
		s.disarmAutoMove()
		s.event(ctx, "host_back", "", "host "+s.host()+" is polling again")
		if s.state == activities.RunStateWaitingHost {
			s.setState(ctx, activities.RunStateRunning, "")
		}
		return
	}
	s.hs.lost = true
	s.hs.since = st.LastSeen
	if s.hs.since.IsZero() {
		s.hs.since = workflow.Now(ctx)
	}
	reason := fmt.Sprintf("waiting for host %s since %s", s.host(), s.hs.since.UTC().Format("15:04:05 UTC"))
	s.event(ctx, "host_lost", "", reason)
	if s.state == activities.RunStateRunning {
		s.setState(ctx, activities.RunStateWaitingHost, reason)
	}
	s.armAutoMove(ctx)
}

// armAutoMove moves the run by itself once its host has been lost for
// auto_move_after, if exactly one other host is alive then; it tries again
// every auto_move_after while the host stays lost. It costs history only
// while the host is lost.
func (s *swarm) armAutoMove(ctx workflow.Context) {
	after := s.prep.AutoMoveAfter
	if after <= 0 {
		return
	}
	tctx, cancel := workflow.WithCancel(ctx)
	s.hs.stopAuto = cancel
	queue := s.prep.WorkspaceQueue
	workflow.Go(tctx, func(ctx workflow.Context) {
		for workflow.Sleep(ctx, after) == nil && s.hs.lost && queue == s.prep.WorkspaceQueue {
			if s.autoMove(ctx, after) {
				return
			}
		}
	})
}

func (s *swarm) disarmAutoMove() {
	if s.hs.stopAuto != nil {
		s.hs.stopAuto()
		s.hs.stopAuto = nil
	}
}

// autoMove moves the run to the one other live host, and says why not when
// there is none or more than one.
func (s *swarm) autoMove(ctx workflow.Context, after time.Duration) bool {
	var alive activities.AliveHostsResult
	err := workflow.ExecuteActivity(summarized(mainOptions(ctx, s.hs.main), "list live hosts"), a.AliveHosts, activities.AliveHostsInput{Main: s.hs.main}).Get(ctx, &alive)
	var others []string
	for _, h := range alive.Hosts {
		if h != s.host() {
			others = append(others, h)
		}
	}
	switch {
	case ctx.Err() != nil || !s.hs.lost || s.phase == PhaseFinishing || s.phase == PhaseDone:
		return true
	case err != nil:
		s.event(ctx, "auto_move", "", "not moved: live hosts unknown: "+err.Error())
		return false
	case len(others) != 1:
		s.event(ctx, "auto_move", "", fmt.Sprintf("not moved: %d other live hosts (%s), it needs exactly one", len(others), orNone(others)))
		return false
	}
	s.hs.stopAuto = nil // a host coming back must not cut the move short
	ids := s.moveTo(ctx, others[0])
	s.event(ctx, "auto_move", "", fmt.Sprintf("host %s lost for %s: moved to %s, restarting %s", activities.HostOfQueue(s.hs.main, s.hs.from), after, others[0], orNone(ids)))
	return true
}

func mainOptions(ctx workflow.Context, main string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue: main, StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 3},
	})
}

// onHost runs one of the parent's own workspace activities (merge, verify,
// finish) on the run's host. If the run moves while it waits, the call on
// the old host is cancelled and issued again on the new one.
func (s *swarm) onHost(ctx workflow.Context, timeout time.Duration, summary string, activity, in, out any) error {
	for {
		queue := s.prep.WorkspaceQueue
		actx, cancel := workflow.WithCancel(ctx)
		s.hs.stopCall = cancel
		err := workflow.ExecuteActivity(summarized(workspaceOptions(actx, queue, timeout, s.in.Limits.MaxRetries), summary), activity, in).Get(ctx, out)
		cancel()
		s.hs.stopCall = nil
		if err == nil || queue == s.prep.WorkspaceQueue || ctx.Err() != nil {
			return err
		}
	}
}

var hostName = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

func (s *swarm) registerHostHandlers(ctx workflow.Context) error {
	return workflow.SetUpdateHandlerWithOptions(ctx, activities.MoveUpdateName, s.move,
		workflow.UpdateHandlerOptions{Validator: s.validateMove})
}

// validateMove refuses, before anything is recorded, a move the run cannot
// make.
func (s *swarm) validateMove(req activities.MoveRequest) error {
	host := strings.TrimSpace(req.Host)
	switch {
	case host == "":
		return errors.New("move: name the host to move to (--to HOST)")
	case !hostName.MatchString(host):
		return fmt.Errorf("move: %q is not a workspace host name (letters, digits, '.', '_' and '-')", host)
	case s.phase == PhaseFinishing || s.phase == PhaseDone:
		return fmt.Errorf("move: run %s has finished (phase %s); there is nothing to move", s.runID, s.phase)
	case !s.hs.watching:
		return fmt.Errorf("move: run %s has no workspace host yet (phase %s); try again once it is running", s.runID, s.phase)
	case host == s.host():
		return fmt.Errorf("move: run %s is already on host %s", s.runID, host)
	}
	return nil
}

// move re-homes the run on req.Host once that host is seen polling: its
// workspace queue changes, running sub-agents are ended and restarted there
// from their last commit, merged work stays on the integration branch.
func (s *swarm) move(ctx workflow.Context, req activities.MoveRequest) (activities.ControlReply, error) {
	host := strings.TrimSpace(req.Host)
	queue := activities.HostQueue(s.hs.main, host)
	var st activities.HostStatus
	if err := workflow.ExecuteActivity(summarized(mainOptions(ctx, s.hs.main), "check host "+host), a.CheckHost, activities.HostStatusInput{Queue: queue}).Get(ctx, &st); err != nil {
		return activities.ControlReply{}, fmt.Errorf("move: check host %s: %w", host, err)
	}
	if !st.Alive {
		return activities.ControlReply{}, fmt.Errorf("move: host %s is not polling its queue %s (%s); start its worker (workspace.host: %s) first", host, queue, seenText(st), host)
	}
	if err := s.validateMove(req); err != nil { // the run went on while we checked
		return activities.ControlReply{}, err
	}
	from := s.host()
	restarted := s.moveTo(ctx, host)
	return activities.ControlReply{State: s.state, Message: fmt.Sprintf("run %s moved from host %s to %s; restarting there: %s",
		s.runID, from, host, orNone(restarted))}, nil
}

// moveTo makes host the run's workspace host and restarts there what ran on
// the old one; it returns the restarted subtasks.
func (s *swarm) moveTo(ctx workflow.Context, host string) []string {
	s.hs.from = s.prep.WorkspaceQueue
	from := s.host()
	s.prep.WorkspaceQueue = activities.HostQueue(s.hs.main, host)
	s.hs.moves++
	oldAlive := !s.hs.lost
	s.hs.lost = false
	s.disarmAutoMove()
	if err := s.publishHost(ctx); err != nil {
		workflow.GetLogger(ctx).Warn("record the run's new host", "error", err)
	}
	restarted := s.rehome(ctx, from, oldAlive)
	s.event(ctx, "moved", "", fmt.Sprintf("moved from host %s to %s; %d running subtasks restart there", from, host, len(restarted)))
	if s.state == activities.RunStateWaitingHost {
		s.setState(ctx, activities.RunStateRunning, "")
	}
	return restarted
}

// rehome stops what waits on the old host: the watch, the parent's own
// workspace call and every running sub-agent, which starts again on the new
// host (the old one's result, should it come, is ignored). When the old
// host is alive, each sub-agent is stopped first and its uncommitted work
// committed there on its branch, which the restart resumes from; a lost
// host's sub-agents restart at once from their last commit.
func (s *swarm) rehome(ctx workflow.Context, from string, oldAlive bool) []string {
	if s.hs.stopWatch != nil {
		s.hs.stopWatch()
	}
	if s.hs.stopCall != nil {
		s.hs.stopCall()
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue: s.hs.main, StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{MaximumInterval: 10 * time.Second, MaximumAttempts: 10},
	})
	var ids []string
	var moved []*task
	var ends []workflow.Future
	for _, t := range s.tasks {
		if t.state != stateRunning {
			continue
		}
		ids, moved = append(ids, t.sub.ID), append(moved, t)
		ends = append(ends, workflow.ExecuteActivity(summarized(actx, "stop "+t.sub.ID+" on the old host"), a.TerminateChild, activities.TerminateChildInput{
			WorkflowID: t.childID, Reason: "run moved from host " + from + " to " + s.host(),
		}))
	}
	save := len(moved) > 0 && oldAlive
	for _, t := range moved {
		// From here the old sub-agent's end is ignored: the task names
		// its restart.
		s.moveTask(t)
		if !save {
			s.startMoved(ctx, t)
		}
	}
	if !save {
		s.hs.wake.SendAsync(true)
	}
	for i, f := range ends {
		if err := f.Get(ctx, nil); err != nil {
			workflow.GetLogger(ctx).Warn("terminate a sub-agent on the old host", "subtask", ids[i], "error", err)
		}
	}
	if save {
		s.saveMovedWork(ctx, moved)
		for _, t := range moved {
			s.startMoved(ctx, t)
		}
		s.hs.wake.SendAsync(true)
	}
	return ids
}

// saveMovedWork commits, on the host the run leaves (alive), what the
// stopped sub-agents had not committed, each on its branch. A host that
// does not answer in time keeps the work on its disk; the restart then
// resumes from the branch's last commit, as after a lost host.
func (s *swarm) saveMovedWork(ctx workflow.Context, moved []*task) {
	sctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue: s.hs.from, ScheduleToCloseTimeout: 2 * time.Minute, StartToCloseTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 2},
	})
	saves := make([]workflow.Future, len(moved))
	for i, t := range moved {
		saves[i] = workflow.ExecuteActivity(summarized(sctx, "save "+t.sub.ID+"'s work on the old host"), a.SaveMovedWork, activities.SaveMovedWorkInput{
			RunID: s.runID, RepoPath: s.in.RepoPath, SubtaskID: t.sub.ID, Name: t.sub.Name, Branch: t.resumeFrom, ToHost: s.host(),
		})
	}
	for i, f := range saves {
		var res activities.SaveMovedWorkResult
		switch err := f.Get(ctx, &res); {
		case err != nil:
			s.event(ctx, "move_save_failed", moved[i].sub.ID, "uncommitted work not saved on the old host (it stays in its worktree there): "+errText(err))
		case res.Changed:
			s.event(ctx, "move_saved", moved[i].sub.ID, fmt.Sprintf("saved %d uncommitted files on branch %s before the restart", len(res.FilesChanged), moved[i].resumeFrom))
		}
	}
}

// moveTask makes t name its sub-agent's restart on the run's current host,
// keeping its attempt, from its branch on the old host; startMoved then
// starts it.
func (s *swarm) moveTask(t *task) {
	// The terminated sub-agent may have taken steps since its last report
	// (which controlFor books): all it held counts as used, and the restart
	// draws a new reservation from what is left, instead of getting the
	// whole reservation again on top of the steps the old one took, so the
	// run never takes more than max_total_steps. With none left, the
	// restart gets no step: it commits the work it resumed and ends.
	s.used += t.reserved - min(t.ctl.step, t.reserved)
	s.reserved -= t.reserved
	t.reserved = max(0, s.stepAllowance())
	s.reserved += t.reserved
	t.resumeFrom = t.branch
	t.childID = MovedChildWorkflowID(s.runID, t.sub.ID, t.attempt, s.hs.moves)
	t.branch = MovedSubtaskBranch(s.in.BranchPrefix, s.runID, t.sub.ID, t.attempt, s.hs.moves)
	t.future = nil // the old sub-agent's; startMoved sets the restart's
}

func (s *swarm) startMoved(ctx workflow.Context, t *task) {
	s.startChild(ctx, t)
	s.event(ctx, "started", t.sub.ID, fmt.Sprintf("restarted on host %s from branch %s", s.host(), t.resumeFrom))
}

func seenText(st activities.HostStatus) string {
	if st.LastSeen.IsZero() {
		return "no poll known to the server"
	}
	return "last poll " + st.LastSeen.UTC().Format("15:04:05 UTC")
}

func orNone(ids []string) string {
	if len(ids) == 0 {
		return "no running subtask"
	}
	return strings.Join(ids, ", ")
}
