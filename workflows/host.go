package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"codeswarm/activities"
	"codeswarm/control"
)

// watchLifetime bounds one WatchHost attempt. When it ends the server retries
// it without a history event, so a healthy run's watch writes nothing.
const watchLifetime = 24 * time.Hour

// hostRecord is what the run knows of its workspace host, carried on
// across continue-as-new.
type hostRecord struct {
	Lost  bool      `json:"lost,omitempty"`
	Since time.Time `json:"since"`
	Moves int       `json:"moves,omitempty"`
	From  string    `json:"from,omitempty"` // the workspace queue of the host the last move left
}

// hostWatch owns the run's workspace host: the watch on its liveness, the
// automatic move, and the calls a move cuts short.
type hostWatch struct {
	hostRecord
	watching bool // the watch runs (from startHostWatch, once the host is known)
	// stopWatch ends the current WatchHost, so the watch restarts on the
	// host a move chose; stopCall ends the parent's workspace activity
	// waiting on the old host, which onHost then re-issues.
	stopWatch workflow.CancelFunc
	stopCall  workflow.CancelFunc
	stopAuto  workflow.CancelFunc // the automatic move's wait (workspace.auto_move_after)
	// moved ends the schedule's wait after a move replaced the futures it
	// waits on.
	moved workflow.Channel
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
	if s.Prep.WorkspaceQueue == "" {
		return ""
	}
	return activities.HostOfQueue(s.mainQueue, s.Prep.WorkspaceQueue)
}

// startHostWatch publishes the run's host and watches it until the returned
// function is called.
func (s *swarm) startHostWatch(ctx workflow.Context) (stop func(), err error) {
	if err := s.publishHost(ctx); err != nil {
		return nil, err
	}
	s.watch.watching = true
	wctx, cancel := workflow.WithCancel(ctx)
	workflow.Go(wctx, s.watchLoop)
	return func() {
		if s.watch.ended {
			_ = workflow.Await(ctx, func() bool { return s.watch.loopDone })
		}
		cancel()
	}, nil
}

// stop completes the run's WatchHost call, so that its history does
// not end with the call pending (see activities.EndHostWatch). A failure
// leaves the call to the cancel that follows.
func (w *hostWatch) stop(ctx workflow.Context) {
	if !w.watching || w.ended || w.callID == "" {
		return
	}
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
		Summary:             "end host watch",
	})
	if err := workflow.ExecuteLocalActivity(lctx, a.EndHostWatch, activities.EndHostWatchInput{ActivityID: w.callID}).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Warn("host watch not ended; it is cancelled instead", "error", err)
		return
	}
	w.ended = true
}

// publishHost records the run's host in its memo and, where the namespace
// has it, the CodeswarmHost search attribute (list shows either).
func (s *swarm) publishHost(ctx workflow.Context) error {
	host := s.host()
	if err := workflow.UpsertMemo(ctx, map[string]interface{}{"host": host}); err != nil {
		return fmt.Errorf("record the run's host in its memo: %w", err)
	}
	if !s.Prep.HostAttribute {
		return nil
	}
	key := temporal.NewSearchAttributeKeyKeyword(control.SAHost)
	if err := workflow.UpsertTypedSearchAttributes(ctx, key.ValueSet(host)); err != nil {
		return fmt.Errorf("set %s: %w", control.SAHost, err)
	}
	return nil
}

// watchLoop runs WatchHost on the main queue, one call per change of the
// host's liveness (or per move), and reports each change.
func (s *swarm) watchLoop(ctx workflow.Context) {
	defer func() { s.watch.loopDone = true }()
	alive := !s.watch.Lost // lost only in a run continued while its host was
	for ctx.Err() == nil && !s.watch.ended {
		queue := s.Prep.WorkspaceQueue
		actx, cancel := workflow.WithCancel(ctx)
		s.watch.stopWatch = cancel
		var st activities.HostStatus
		wctx := summarized(watchOptions(actx, s.mainQueue), "watch host "+activities.HostOfQueue(s.mainQueue, queue))
		s.watch.calls++
		s.watch.callID = fmt.Sprintf("watch-host-%d", s.watch.calls)
		wctx = workflow.WithActivityOptions(wctx, withActivityID(workflow.GetActivityOptions(wctx), s.watch.callID))
		err := workflow.ExecuteActivity(wctx, a.WatchHost, activities.WatchHostInput{
			Queue: queue,
			Alive: alive,
		}).Get(ctx, &st)
		cancel()
		switch {
		case ctx.Err() != nil || st.Ended || s.watch.ended:
			return
		case queue != s.Prep.WorkspaceQueue:
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
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    10 * time.Second,
		},
	})
}

// onHostStatus says in the run's state that it waits for its host, or that
// the host is back. Another state (a pause) is left as it is.
func (s *swarm) onHostStatus(ctx workflow.Context, st activities.HostStatus) {
	if st.Alive {
		s.watch.Lost = false
		s.watch.disarmAutoMove()
		s.view.event(ctx, "host_back", "", "host "+s.host()+" is polling again")
		if s.view.State == control.RunStateWaitingHost {
			s.view.setState(ctx, control.RunStateRunning, "")
		}
		return
	}
	s.watch.Lost = true
	s.watch.Since = st.LastSeen
	if s.watch.Since.IsZero() {
		s.watch.Since = workflow.Now(ctx)
	}
	reason := fmt.Sprintf("waiting for host %s since %s", s.host(), s.watch.Since.UTC().Format("15:04:05 UTC"))
	s.view.event(ctx, "host_lost", "", reason)
	if s.view.State == control.RunStateRunning {
		s.view.setState(ctx, control.RunStateWaitingHost, reason)
	}
	s.armAutoMove(ctx)
}

// armAutoMove moves the run by itself once its host has been lost for
// auto_move_after, if exactly one other host is alive then; it tries again
// every auto_move_after while the host stays lost. It costs history only
// while the host is lost.
func (s *swarm) armAutoMove(ctx workflow.Context) {
	after := s.Prep.AutoMoveAfter
	if after <= 0 {
		return
	}
	tctx, cancel := workflow.WithCancel(ctx)
	s.watch.stopAuto = cancel
	queue := s.Prep.WorkspaceQueue
	workflow.Go(tctx, func(ctx workflow.Context) {
		for workflow.Sleep(ctx, after) == nil && s.watch.Lost && queue == s.Prep.WorkspaceQueue {
			if s.autoMove(ctx, after) {
				return
			}
		}
	})
}

func (w *hostWatch) disarmAutoMove() {
	if w.stopAuto != nil {
		w.stopAuto()
		w.stopAuto = nil
	}
}

// autoMove moves the run to the one other live host, and says why not when
// there is none or more than one.
func (s *swarm) autoMove(ctx workflow.Context, after time.Duration) bool {
	var alive activities.AliveHostsResult
	err := workflow.ExecuteActivity(summarized(mainOptions(ctx, s.mainQueue), "list live hosts"), a.AliveHosts, activities.AliveHostsInput{Main: s.mainQueue}).Get(ctx, &alive)
	var others []string
	for _, h := range alive.Hosts {
		if h != s.host() {
			others = append(others, h)
		}
	}
	switch {
	case ctx.Err() != nil || !s.watch.Lost || s.phase == PhaseFinishing || s.phase == PhaseDone:
		return true
	case err != nil:
		s.view.event(ctx, "auto_move", "", "not moved: live hosts unknown: "+err.Error())
		return false
	case len(others) != 1:
		s.view.event(ctx, "auto_move", "", fmt.Sprintf("not moved: %d other live hosts (%s), it needs exactly one", len(others), orNone(others)))
		return false
	}
	s.watch.stopAuto = nil // a host coming back must not cut the move short
	ids := s.moveTo(ctx, others[0])
	s.view.event(ctx, "auto_move", "", fmt.Sprintf("host %s lost for %s: moved to %s, restarting %s", activities.HostOfQueue(s.mainQueue, s.watch.From), after, others[0], orNone(ids)))
	return true
}

func mainOptions(ctx workflow.Context, main string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           main,
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
	})
}

// onHost runs one of the parent's own workspace activities (merge, verify,
// finish) on the run's host. If the run moves while it waits, the call on
// the old host is cancelled and issued again on the new one.
func (s *swarm) onHost(ctx workflow.Context, timeout time.Duration, summary string, activity, in, out any) error {
	for {
		queue := s.Prep.WorkspaceQueue
		actx, cancel := workflow.WithCancel(ctx)
		s.watch.stopCall = cancel
		err := workflow.ExecuteActivity(summarized(workspaceOptions(actx, queue, timeout, s.in.Limits.MaxRetries), summary), activity, in).Get(ctx, out)
		cancel()
		s.watch.stopCall = nil
		if err == nil || queue == s.Prep.WorkspaceQueue || ctx.Err() != nil {
			return err
		}
	}
}
