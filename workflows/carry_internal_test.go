package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"codeswarm/activities"
)

// richSwarm is a run mid-way: done, running, re-run and pending subtasks,
// shared values (one its own result, one a sub-agent's), steering and host
// state.
func richSwarm() *swarm {
	now := time.Date(2026, 11, 29, 5, 0, 0, 0, time.UTC)
	s := &swarm{in: SwarmInput{}, runID: "r", started: now, head: "h2", runs: 3, seq: 450, llmCalls: 40, used: 90, reserved: 40,
		running: 2, spawned: 5, planNote: "plan repaired", state: activities.RunStateBudgetPaused, stateReason: "token cap",
		usage: activities.Usage{PromptTokens: 1000, CompletionTokens: 99}, phase: PhaseRunning,
		verify: &activities.VerifyReport{Command: "make", Commit: "h1", OK: true},
		prep:   activities.PrepareRunResult{RepoRoot: "/repo", BaseCommit: "b", BaseBranch: "main", WorkspaceQueue: "q-ws-h2", Sandbox: "on"},
		hs:     hostState{lost: true, since: now, moves: 1, from: "q-ws-h1"},
		ctl:    &runCtl{maxTokens: 5000, maxUSD: 2, cost: 0.5, pauseSeq: 2, approval: "approved"}}
	done := &task{sub: activities.Subtask{ID: "a", Name: "A", Instruction: "do a", Dependencies: []string{}, Stage: 0}, state: stateDone, attempt: 1,
		res:  activities.SubtaskResult{ID: "a", Success: true, Status: "completed", Result: "did a", Merge: activities.MergeMerged, Steps: 3},
		last: SubAgentResult{Result: "did a", AgentTally: AgentTally{Worktree: "/wt/a"}}, started: now, ended: now.Add(time.Minute), lastEvent: "merged", childID: "r.a", branch: "cs/r/a"}
	rerun := &task{sub: activities.Subtask{ID: "b", Name: "B", Dependencies: []string{"a"}, Stage: 1}, state: stateRunning, attempt: 2, reserved: 20,
		conflict: &activities.ConflictInfo{Paths: []string{"x.go"}, FirstBase: "b", FirstCommit: "c1"},
		first:    &SubAgentResult{Status: "completed", AgentTally: AgentTally{Worktree: "/wt/b", Branch: "cs/r/b", Steps: 4}, Commit: "c1"},
		childID:  "r.b.r2.m1", branch: "cs/r/b-r2-m1", resumeFrom: "cs/r/b-r2", started: now,
		ctl: taskCtl{grantTokens: 800, grantUSD: 0.1, usage: activities.Usage{PromptTokens: 300}, step: 6,
			ask: &BudgetReport{Subtask: "b", Attempt: 2, Step: 6, Ask: true, NeedTokens: 900}}}
	running := &task{sub: activities.Subtask{ID: "c", Name: "C"}, state: stateRunning, attempt: 1, reserved: 20, childID: "r.c", branch: "cs/r/c"}
	pending := &task{sub: activities.Subtask{ID: "d", Name: "D", Dependencies: []string{"b"}, Stage: 2}, ctl: taskCtl{notes: []string{"use x"}}}
	s.tasks = []*task{done, rerun, running, pending}
	s.publishResult(done)
	s.publish(activities.SharedResult{Key: "finding", Value: `{"v":1}`, Tags: []string{"t"}, Publisher: "c"})
	for i := range 300 {
		s.events = append(s.events, activities.Event{Seq: 151 + i, Time: now, Kind: "k"})
	}
	return s
}

// TestCarryRoundTrip: a run restored from its carry (through JSON, as the
// next run's input) carries exactly the same state on.
func TestCarryRoundTrip(t *testing.T) {
	s := richSwarm()
	c := s.carry()
	raw, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var decoded Carry
	if err := json.Unmarshal(raw, &decoded); err != nil {
		t.Fatal(err)
	}
	s2 := &swarm{ctl: &runCtl{}}
	s2.restore(&decoded)
	out := s2.carry()
	if out.Runs != c.Runs+1 {
		t.Errorf("the next carry counts %d runs, want %d", out.Runs, c.Runs+1)
	}
	out.Runs = c.Runs
	again, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	if i := firstDiff(string(raw), string(again)); i >= 0 {
		t.Errorf("state out differs from state in at byte %d:\n in ...%s\nout ...%s", i, excerpt(string(raw), i), excerpt(string(again), i))
	}
	if !reflect.DeepEqual(s2.share, s.share) {
		t.Errorf("shared values %+v, want %+v", s2.share, s.share)
	}
	if len(c.Events) != carriedEvents || c.Events[0].Seq != 451-carriedEvents || s2.seq != 450 {
		t.Errorf("carried %d events from seq %d, seq %d; want the last %d and seq 450", len(c.Events), c.Events[0].Seq, s2.seq, carriedEvents)
	}
	b := s2.byID("b")
	if b.future != nil || b.state != stateRunning || b.childID != "r.b.r2.m1" || b.ctl.ask == nil || b.ctl.ask.NeedTokens != 900 || b.first.Steps != 4 {
		t.Errorf("restored b = %+v", b)
	}
	if a := s2.byID("a"); len(a.removableWorktrees()) != 1 || a.removableWorktrees()[0] != "/wt/a" {
		t.Errorf("restored a removes %v, want its merged worktree /wt/a", a.removableWorktrees())
	}
	if s2.ctl.maxTokens != 5000 || s2.hs.from != "q-ws-h1" || !s2.hs.lost || s2.state != activities.RunStateBudgetPaused || s2.runs != 4 {
		t.Errorf("restored ctl %+v host %+v state %s runs %d", s2.ctl, s2.hs, s2.state, s2.runs)
	}
}

func firstDiff(a, b string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

func excerpt(s string, i int) string {
	return s[max(0, i-80):min(len(s), i+80)]
}

// TestCarryOfThousandSubtasksFits: the carry of 1,000 finished subtasks with
// 2 kB results each (hex text, which compresses about 2:1) is over
// Temporal's 2 MB payload limit as plain JSON; packed, it fits.
func TestCarryOfThousandSubtasksFits(t *testing.T) {
	s := richSwarm()
	s.tasks, s.share = nil, nil
	now := time.Date(2026, 11, 29, 5, 0, 0, 0, time.UTC)
	for i := range 1000 {
		id := fmt.Sprintf("%04d-subtask", i)
		var result strings.Builder
		for j := 0; result.Len() < 2000; j++ {
			sum := sha256.Sum256([]byte(fmt.Sprintf("%d/%d", i, j)))
			result.WriteString(hex.EncodeToString(sum[:]) + " ")
		}
		tk := &task{sub: activities.Subtask{ID: id, Name: "subtask " + id, Instruction: "do " + id + " carefully", Dependencies: []string{}, NeedsWorktree: true},
			state: stateDone, attempt: 1, started: now, ended: now, childID: "run." + id, branch: "codeswarm/run/" + id,
			res: activities.SubtaskResult{ID: id, Name: "subtask " + id, Dependencies: []string{}, Success: true, Status: "completed", Result: result.String(),
				Steps: 15, Branch: "codeswarm/run/" + id, Commit: strings.Repeat("c", 40), FilesChanged: []string{id + ".go"}, Merge: "merged",
				Conflicts: []string{}, Worktree: "/ws/run/" + id, PromptTokens: 12000, MergeCommit: strings.Repeat("m", 40)}}
		s.tasks = append(s.tasks, tk)
		s.publishResult(tk)
	}
	c := s.carry()
	plain, err := json.Marshal((*carryJSON)(c))
	if err != nil {
		t.Fatal(err)
	}
	packed, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("carry of 1,000 subtasks: %d bytes plain, %d packed", len(plain), len(packed))
	if len(plain) <= 2<<20 || len(packed) >= 3<<19 {
		t.Errorf("carry %d bytes plain, %d packed; want over 2 MB plain and under 1.5 MB packed", len(plain), len(packed))
	}
	var back Carry
	if err := json.Unmarshal(packed, &back); err != nil || len(back.Tasks) != 1000 || back.Tasks[999].Res.Result != c.Tasks[999].Res.Result {
		t.Errorf("unpacked %d tasks, err %v", len(back.Tasks), err)
	}
}
