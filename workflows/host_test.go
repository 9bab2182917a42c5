package workflows_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"

	"codeswarm/activities"
	"codeswarm/control"
	"codeswarm/workflows"
)

// progressAt queries the run's progress when the workflow clock reaches at.
func progressAt(t *testing.T, env *testsuite.TestWorkflowEnvironment, at time.Duration) *control.Progress {
	t.Helper()
	p := &control.Progress{}
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(control.ProgressQueryName, 0)
		if err != nil {
			t.Errorf("progress at %s: %v", at, err)
			return
		}
		if err := v.Get(p); err != nil {
			t.Errorf("decode progress at %s: %v", at, err)
		}
	}, at)
	return p
}

func move(env *testsuite.TestWorkflowEnvironment, id, host string) *publishOutcome {
	out := &publishOutcome{}
	env.UpdateWorkflow(control.MoveUpdateName, id, &testsuite.TestUpdateCallback{
		OnAccept:   func() { out.accepted = true },
		OnReject:   func(err error) { out.rejected = err },
		OnComplete: func(v any, err error) { out.count, out.err, out.done = v, err, true },
	}, control.MoveRequest{Host: host})
	return out
}

// watchesStarted lists the inputs of every WatchHost the run starts (the
// mock records a call only when it returns).
func watchesStarted(t *testing.T, env *testsuite.TestWorkflowEnvironment) *[]activities.WatchHostInput {
	var started []activities.WatchHostInput
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, args converter.EncodedValues) {
		if info.ActivityType.Name != "WatchHost" {
			return
		}
		var in activities.WatchHostInput
		if err := args.Get(&in); err != nil {
			t.Errorf("decode WatchHost input: %v", err)
		}
		started = append(started, in)
	})
	return &started
}

// A run whose host stops polling says so (state, reason, events) as soon as
// the watch reports it, and is running again, without loss, when the host
// is back.
func TestSwarmWaitsForLostHost(t *testing.T) {
	w := newWorld(subtask("01-a", 0), subtask("02-b", 0))
	w.fallback = toolsThenDone(5)
	w.stepDelay = time.Minute
	lastPoll := time.Date(2026, 11, 29, 3, 12, 5, 0, time.UTC)
	w.hostEvents = []hostEvent{{after: 2 * time.Minute, alive: false, seen: lastPoll}, {after: 3 * time.Minute, alive: true}}
	env := newEnv(t, w)
	watches := watchesStarted(t, env)
	before := progressAt(t, env, 90*time.Second)
	lost := progressAt(t, env, 3*time.Minute)
	var details string // the Web UI's current details
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow("__temporal_workflow_metadata")
		if err != nil {
			t.Errorf("metadata query: %v", err)
			return
		}
		var md sdkpb.WorkflowMetadata
		if err := v.Get(&md); err != nil {
			t.Errorf("decode metadata: %v", err)
		}
		details = md.GetCurrentDetails()
	}, 3*time.Minute)
	back := progressAt(t, env, 6*time.Minute)

	res := runSwarm(t, env, swarmInput())
	if !res.Success {
		t.Fatalf("run failed: %s", res.Error)
	}
	if before.State != control.RunStateRunning || before.Host != "host1" {
		t.Errorf("before the loss: state %q host %q, want running on host1", before.State, before.Host)
	}
	if lost.State != control.RunStateWaitingHost || lost.StateReason != "waiting for host host1 since 03:12:05 UTC" {
		t.Errorf("host lost: state %q reason %q", lost.State, lost.StateReason)
	}
	if !strings.Contains(details, "waiting_for_host") || !strings.Contains(details, "waiting for host host1 since 03:12:05 UTC") {
		t.Errorf("current details while lost = %q", details)
	}
	if back.State != control.RunStateRunning || back.StateReason != "" {
		t.Errorf("host back: state %q reason %q, want running", back.State, back.StateReason)
	}
	for _, want := range []string{"host_lost", "host_back"} {
		if !hasEvent(back.Events, want) {
			t.Errorf("no %s event in %+v", want, back.Events)
		}
	}
	// The watch was asked for a change each time: lost after alive, then back.
	if ws := *watches; len(ws) != 3 || !ws[0].Alive || ws[1].Alive || !ws[2].Alive {
		t.Errorf("watch calls = %+v, want alive, lost, alive", ws)
	}
	for _, in := range *watches {
		if in.Queue != wsQueue {
			t.Errorf("watched %s, want %s", in.Queue, wsQueue)
		}
	}
	if n := w.count("merge:"); n != 2 {
		t.Errorf("%d merges, want 2", n)
	}
}

// A move re-homes the run: the running sub-agent ends on the old host and
// restarts on the new one from its branch; merged work is not redone, and
// what the parent does on the host (merge, finish) goes to the new queue.
func TestSwarmMoveRestartsOnNewHost(t *testing.T) {
	w := newWorld(subtask("01-a", 0), subtask("02-b", 0))
	w.scripts["01-a"] = toolsThenDone(1) // merged at 2 min
	w.fallback = toolsThenDone(6)        // 02-b runs for 7 min
	w.stepDelay = time.Minute
	w.hostEvents = []hostEvent{{after: 3 * time.Minute, alive: false}}
	const newQueue = "codeswarm-ws-host2"
	w.liveHosts = map[string]bool{newQueue: true}
	env := newEnv(t, w)
	watches := watchesStarted(t, env)

	var bad, dead, same, ok, again *publishOutcome
	env.RegisterDelayedCallback(func() {
		bad = move(env, "m0", "no such host!")
		dead = move(env, "m1", "host9")
		same = move(env, "m2", "host1")
	}, 4*time.Minute)
	env.RegisterDelayedCallback(func() { ok = move(env, "m3", "host2") }, 5*time.Minute)
	env.RegisterDelayedCallback(func() { again = move(env, "m4", "host2") }, 6*time.Minute)
	after := progressAt(t, env, 6*time.Minute)

	res := runSwarm(t, env, swarmInput())
	if !res.Success {
		t.Fatalf("run failed: %s", res.Error)
	}
	if bad.rejected == nil || !strings.Contains(bad.rejected.Error(), "not a workspace host name") {
		t.Errorf("bad host name: rejected %v", bad.rejected)
	}
	if dead.err == nil || !strings.Contains(dead.err.Error(), "host host9 is not polling") {
		t.Errorf("host not polling: accepted %v, err %v", dead.accepted, dead.err)
	}
	if same.rejected == nil || !strings.Contains(same.rejected.Error(), "already on host host1") {
		t.Errorf("same host: rejected %v", same.rejected)
	}
	if !ok.done || ok.err != nil || !strings.Contains(ok.count.(control.ControlReply).Message, "restarting there: 02-b") {
		t.Fatalf("move to host2: done %v err %v reply %+v", ok.done, ok.err, ok.count)
	}
	if again.rejected == nil || !strings.Contains(again.rejected.Error(), "already on host host2") {
		t.Errorf("second move to host2: rejected %v", again.rejected)
	}
	if after.State != control.RunStateRunning || after.Host != "host2" {
		t.Errorf("after the move: state %q host %q, want running on host2", after.State, after.Host)
	}

	oldID, newID := testRunID+".02-b", workflows.MovedChildWorkflowID(testRunID, "02-b", 1, 1)
	if len(w.terminated) != 1 || w.terminated[0] != oldID {
		t.Errorf("terminated %v, want [%s]", w.terminated, oldID)
	}
	var restarted *workflows.SubAgentInput
	for i, id := range w.childIDs {
		if id == newID {
			restarted = &w.children[i]
		}
	}
	if restarted == nil {
		t.Fatalf("no child %s among %v", newID, w.childIDs)
	}
	if restarted.WorkspaceQueue != newQueue || restarted.ResumeFrom != workflows.SubtaskBranch("codeswarm", testRunID, "02-b", 1) || restarted.Attempt != 1 {
		t.Errorf("restarted child: queue %s resume_from %q attempt %d", restarted.WorkspaceQueue, restarted.ResumeFrom, restarted.Attempt)
	}
	// 01-a was merged before the move and never started again; 02-b merged once.
	if n := w.count("start:01-a"); n != 1 {
		t.Errorf("01-a started %d times, want 1", n)
	}
	if n, m := w.count("merge:01-a"), w.count("merge:02-b"); n != 1 || m != 1 {
		t.Errorf("merges: 01-a %d, 02-b %d, want 1 each", n, m)
	}
	b := subtaskResult(t, res, "02-b")
	if b.Branch != workflows.MovedSubtaskBranch("codeswarm", testRunID, "02-b", 1, 1) || b.Merge != activities.MergeMerged {
		t.Errorf("02-b: branch %s merge %s", b.Branch, b.Merge)
	}
	// The watch moved to the new host too.
	if ws := *watches; len(ws) != 3 || ws[2].Queue != newQueue || !ws[2].Alive {
		t.Errorf("watches %+v, want the last one on host2, alive", ws)
	}
}

// A move away from a live host stops the running sub-agent, commits its
// uncommitted work there (SaveMovedWork on the old host's queue), and only
// then restarts it on the new host, from its branch, which now holds it.
func TestSwarmMoveFromLiveHostSavesWork(t *testing.T) {
	w := newWorld(subtask("01-a", 0))
	w.fallback = toolsThenDone(6)
	w.stepDelay = time.Minute
	const oldQueue, newQueue = "codeswarm-ws-host1", "codeswarm-ws-host2"
	w.liveHosts = map[string]bool{newQueue: true}
	env := newEnv(t, w)
	var ok *publishOutcome
	env.RegisterDelayedCallback(func() { ok = move(env, "m1", "host2") }, 3*time.Minute)
	after := progressAt(t, env, 5*time.Minute)
	res := runSwarm(t, env, swarmInput())
	if !res.Success || ok == nil || !ok.done || ok.err != nil {
		t.Fatalf("run %v (%s), move %+v", res.Success, res.Error, ok)
	}
	oldID := testRunID + ".01-a"
	if len(w.saved) != 1 || w.saved[0].Branch != workflows.SubtaskBranch("codeswarm", testRunID, "01-a", 1) || w.saved[0].ToHost != "host2" {
		t.Fatalf("saves %+v, want one of 01-a's first branch, to host2", w.saved)
	}
	term, save := w.indexOf("terminate:"+oldID), w.indexOf("save:01-a@"+oldQueue)
	restart := -1
	for i, e := range w.log {
		if e == "start:01-a" && i > save {
			restart = i
		}
	}
	if term < 0 || save < term || restart < save {
		t.Errorf("order terminate %d, save on the old host %d, restart %d: want them in that order\n%v", term, save, restart, w.log)
	}
	want := "saved 2 uncommitted files on branch " + workflows.SubtaskBranch("codeswarm", testRunID, "01-a", 1) + " before the restart"
	if !slices.ContainsFunc(after.Events, func(e control.Event) bool { return e.Kind == "move_saved" && e.Message == want }) {
		t.Errorf("no move_saved event %q in %+v", want, after.Events)
	}
}

func hasEvent(events []control.Event, kind string) bool {
	for _, e := range events {
		if e.Kind == kind {
			return true
		}
	}
	return false
}

// With workspace.auto_move_after set, a run whose host stays lost moves by
// itself when exactly one other host is alive, and only then.
func TestSwarmAutoMove(t *testing.T) {
	for _, tc := range []struct {
		name  string
		alive []string
		moved bool
	}{
		{"one other host", []string{"host1", "host2"}, true},
		{"two other hosts", []string{"host2", "host3"}, false},
		{"no other host", []string{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(subtask("01-a", 0))
			w.fallback = toolsThenDone(9) // runs for 10 min
			w.stepDelay = time.Minute
			w.autoMove = 2 * time.Minute
			w.aliveHosts = tc.alive
			// Lost at 3 min; back at 8 min unless the run moved before.
			w.hostEvents = []hostEvent{{after: 3 * time.Minute, alive: false}, {after: 5 * time.Minute, alive: true}}
			env := newEnv(t, w)
			at7 := progressAt(t, env, 7*time.Minute)
			res := runSwarm(t, env, swarmInput())
			if !res.Success {
				t.Fatalf("run failed: %s", res.Error)
			}
			movedID := workflows.MovedChildWorkflowID(testRunID, "01-a", 1, 1)
			restarted := slices.Contains(w.childIDs, movedID)
			if restarted != tc.moved || (at7.Host == "host2") != tc.moved {
				t.Fatalf("moved: child %s started %v, host at 7 min %q; want moved %v", movedID, restarted, at7.Host, tc.moved)
			}
			if tc.moved {
				if w.aliveCalls != 1 || at7.State != control.RunStateRunning {
					t.Errorf("AliveHosts calls %d, state at 7 min %q", w.aliveCalls, at7.State)
				}
				return
			}
			// Asked at 5 and 7 min while lost, each time said why not.
			if w.aliveCalls != 2 || at7.State != control.RunStateWaitingHost {
				t.Errorf("AliveHosts calls %d, state at 7 min %q; want 2 and waiting", w.aliveCalls, at7.State)
			}
			if !hasEventText(at7.Events, "auto_move", "not moved: ") {
				t.Errorf("no auto_move event saying why: %+v", at7.Events)
			}
		})
	}
}

func hasEventText(events []control.Event, kind, text string) bool {
	for _, e := range events {
		if e.Kind == kind && strings.Contains(e.Message, text) {
			return true
		}
	}
	return false
}

// TestMoveKeepsTheStepBudget: a sub-agent restarted by a move draws a new
// reservation once the old one is booked as used (it may have taken steps
// since its last report), and the run never takes more than max_total_steps.
func TestMoveKeepsTheStepBudget(t *testing.T) {
	w := newWorld(subtask("01-a", 0))
	w.fallback = toolsThenDone(40) // 41 steps: more than the budget leaves after the move
	w.stepDelay = 5 * time.Second
	w.hostEvents = []hostEvent{{after: time.Minute, alive: false}}
	w.liveHosts = map[string]bool{"codeswarm-ws-host2": true}
	env := newEnv(t, w)
	var moved *publishOutcome
	env.RegisterDelayedCallback(func() { moved = move(env, "m1", "host2") }, 2*time.Minute)
	in := swarmInput()
	in.Limits.MaxConcurrent, in.Limits.MaxStepsPerSubagent, in.Limits.MaxTotalSteps = 1, 50, 60
	res := runSwarm(t, env, in)
	if moved == nil || !moved.done || moved.err != nil {
		t.Fatalf("move: %+v", moved)
	}
	if len(w.children) != 2 {
		t.Fatalf("%d sub-agents started, want the first and its restart", len(w.children))
	}
	t.Logf("%d model turns in all; restart granted %d of max %d steps", len(w.steps), w.children[1].StepGrant, w.children[1].MaxSteps)
	if len(w.steps) > in.Limits.MaxTotalSteps {
		t.Errorf("%d model turns ran, over max_total_steps %d: the restart got a fresh reservation", len(w.steps), in.Limits.MaxTotalSteps)
	}
	if a := subtaskResult(t, res, "01-a"); a.Success || !strings.Contains(a.Error, "step budget") {
		t.Errorf("01-a: success %v, error %q; want it stopped by the step budget", a.Success, a.Error)
	}
}
