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
	"codeswarm/control"
)

var hostName = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

func (s *swarm) registerHostHandlers(ctx workflow.Context) error {
	return workflow.SetUpdateHandlerWithOptions(ctx, control.MoveUpdateName, s.move,
		workflow.UpdateHandlerOptions{Validator: s.validateMove})
}

// validateMove refuses, before anything is recorded, a move the run cannot
// make.
func (s *swarm) validateMove(req control.MoveRequest) error {
	host := strings.TrimSpace(req.Host)
	switch {
	case host == "":
		return errors.New("move: name the host to move to (--to HOST)")
	case !hostName.MatchString(host):
		return fmt.Errorf("move: %q is not a workspace host name (letters, digits, '.', '_' and '-')", host)
	case s.phase == PhaseFinishing || s.phase == PhaseDone:
		return fmt.Errorf("move: run %s has finished (phase %s); there is nothing to move", s.runID, s.phase)
	case !s.watch.watching:
		return fmt.Errorf("move: run %s has no workspace host yet (phase %s); try again once it is running", s.runID, s.phase)
	case host == s.host():
		return fmt.Errorf("move: run %s is already on host %s", s.runID, host)
	}
	return nil
}

// move re-homes the run on req.Host once that host is seen polling: its
// workspace queue changes, running sub-agents are ended and restarted there
// from their last commit, merged work stays on the integration branch.
func (s *swarm) move(ctx workflow.Context, req control.MoveRequest) (control.ControlReply, error) {
	host := strings.TrimSpace(req.Host)
	queue := activities.HostQueue(s.mainQueue, host)
	var st activities.HostStatus
	if err := workflow.ExecuteActivity(summarized(mainOptions(ctx, s.mainQueue), "check host "+host), a.CheckHost, activities.HostStatusInput{Queue: queue}).Get(ctx, &st); err != nil {
		return control.ControlReply{}, fmt.Errorf("move: check host %s: %w", host, err)
	}
	if !st.Alive {
		return control.ControlReply{}, fmt.Errorf("move: host %s is not polling its queue %s (%s); start its worker (workspace.host: %s) first", host, queue, seenText(st), host)
	}
	if err := s.validateMove(req); err != nil { // the run went on while we checked
		return control.ControlReply{}, err
	}
	from := s.host()
	restarted := s.moveTo(ctx, host)
	return control.ControlReply{
		State: s.view.State,
		Message: fmt.Sprintf("run %s moved from host %s to %s; restarting there: %s",
			s.runID, from, host, orNone(restarted)),
	}, nil
}

// moveTo makes host the run's workspace host and restarts there what ran on
// the old one; it returns the restarted subtasks.
func (s *swarm) moveTo(ctx workflow.Context, host string) []string {
	s.watch.From = s.Prep.WorkspaceQueue
	from := s.host()
	s.Prep.WorkspaceQueue = activities.HostQueue(s.mainQueue, host)
	s.watch.Moves++
	oldAlive := !s.watch.Lost
	s.watch.Lost = false
	s.watch.disarmAutoMove()
	if err := s.publishHost(ctx); err != nil {
		workflow.GetLogger(ctx).Warn("record the run's new host", "error", err)
	}
	restarted := s.rehome(ctx, from, oldAlive)
	s.view.event(ctx, "moved", "", fmt.Sprintf("moved from host %s to %s; %d running subtasks restart there", from, host, len(restarted)))
	if s.view.State == control.RunStateWaitingHost {
		s.view.setState(ctx, control.RunStateRunning, "")
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
	if s.watch.stopWatch != nil {
		s.watch.stopWatch()
	}
	if s.watch.stopCall != nil {
		s.watch.stopCall()
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           s.mainQueue,
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			MaximumInterval: 10 * time.Second,
			MaximumAttempts: 10,
		},
	})
	var ids []string
	var moved []*Task
	var ends []workflow.Future
	for _, t := range s.plan.Tasks {
		if t.State != stateRunning {
			continue
		}
		ids, moved = append(ids, t.Sub.ID), append(moved, t)
		ends = append(ends, workflow.ExecuteActivity(summarized(actx, "stop "+t.Sub.ID+" on the old host"), a.TerminateChild, activities.TerminateChildInput{
			WorkflowID: t.ChildID,
			Reason:     "run moved from host " + from + " to " + s.host(),
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
		s.watch.moved.SendAsync(true)
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
		s.watch.moved.SendAsync(true)
	}
	return ids
}

// saveMovedWork commits, on the host the run leaves (alive), what the
// stopped sub-agents had not committed, each on its branch. A host that
// does not answer in time keeps the work on its disk; the restart then
// resumes from the branch's last commit, as after a lost host.
func (s *swarm) saveMovedWork(ctx workflow.Context, moved []*Task) {
	sctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:              s.watch.From,
		ScheduleToCloseTimeout: 2 * time.Minute,
		StartToCloseTimeout:    time.Minute,
		RetryPolicy:            &temporal.RetryPolicy{MaximumAttempts: 2},
	})
	saves := make([]workflow.Future, len(moved))
	for i, t := range moved {
		saves[i] = workflow.ExecuteActivity(summarized(sctx, "save "+t.Sub.ID+"'s work on the old host"), a.SaveMovedWork, activities.SaveMovedWorkInput{
			RunID:     s.runID,
			RepoPath:  s.in.RepoPath,
			SubtaskID: t.Sub.ID,
			Name:      t.Sub.Name,
			Branch:    t.ResumeFrom,
			ToHost:    s.host(),
		})
	}
	for i, f := range saves {
		var res activities.SaveMovedWorkResult
		switch err := f.Get(ctx, &res); {
		case err != nil:
			s.view.event(ctx, "move_save_failed", moved[i].Sub.ID, "uncommitted work not saved on the old host (it stays in its worktree there): "+errText(err))
		case res.Changed:
			s.view.event(ctx, "move_saved", moved[i].Sub.ID, fmt.Sprintf("saved %d uncommitted files on branch %s before the restart", len(res.FilesChanged)+res.FilesOmitted, moved[i].ResumeFrom))
		}
	}
}

// moveTask makes t name its sub-agent's restart on the run's current host,
// keeping its attempt, from its branch on the old host; startMoved then
// starts it.
func (s *swarm) moveTask(t *Task) {
	// The terminated sub-agent may have taken steps since its last report
	// (which controlFor records): all it held counts as used, and the restart
	// draws a new reservation from what is left, instead of getting the
	// whole reservation again on top of the steps the old one took, so the
	// run never takes more than max_total_steps. With none left, the
	// restart gets no step: it commits the work it resumed and ends.
	s.budget.Used += t.Reserved - min(t.Control.Step, t.Reserved)
	s.budget.Reserved -= t.Reserved
	t.Reserved = max(0, s.budget.stepAllowance())
	s.budget.Reserved += t.Reserved
	t.ResumeFrom = t.Branch
	t.ChildID = MovedChildWorkflowID(s.runID, t.Sub.ID, t.Attempt, s.watch.Moves)
	t.Branch = MovedSubtaskBranch(s.in.BranchPrefix, s.runID, t.Sub.ID, t.Attempt, s.watch.Moves)
	t.future = nil // the old sub-agent's; startMoved sets the restart's
}

func (s *swarm) startMoved(ctx workflow.Context, t *Task) {
	s.startChild(ctx, t)
	s.view.event(ctx, "started", t.Sub.ID, fmt.Sprintf("restarted on host %s from branch %s", s.host(), t.ResumeFrom))
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
