package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"codeswarm/activities"
	"codeswarm/control"
)

// richSwarm is a run mid-way: done, running, re-run and pending subtasks,
// shared values (one its own result, one a sub-agent's), steering and host
// state.
func richSwarm() *swarm {
	now := time.Date(2026, 11, 29, 5, 0, 0, 0, time.UTC)
	s := &swarm{in: SwarmInput{}, runID: "r", phase: PhaseRunning}
	s.runRecord = runRecord{
		Runs:     3,
		Started:  now,
		PlanNote: "plan repaired",
		Prep:     activities.PrepareRunResult{RepoRoot: "/repo", BaseCommit: "b", BaseBranch: "main", WorkspaceQueue: "q-ws-h2", Sandbox: "on"},
	}
	s.merges = mergeQueue{Head: "h2", Verify: &activities.VerifyReport{Command: "make", Commit: "h1", OK: true}}
	s.view.viewState = viewState{Seq: 450, State: control.RunStateBudgetPaused, StateReason: "token cap"}
	s.budget.ledgerState = ledgerState{
		Usage:    activities.Usage{PromptTokens: 1000, CompletionTokens: 99},
		LLMCalls: 40,
		Used:     90,
		Reserved: 40,
	}
	s.budget.budgetCaps = budgetCaps{MaxTokens: 5000, MaxUSD: 2, Cost: 0.5}
	s.steer.steerState = steerState{PauseSeq: 2, Approval: "approved"}
	s.watch.hostRecord = hostRecord{Lost: true, Since: now, Moves: 1, From: "q-ws-h1"}
	done := &Task{
		Sub:          activities.Subtask{ID: "a", Name: "A", Instruction: "do a", Dependencies: []string{}, Stage: 0},
		State:        stateDone,
		Attempt:      1,
		Res:          activities.SubtaskResult{ID: "a", Success: true, Status: "completed", Result: "did a", Merge: activities.MergeMerged, Steps: 3},
		last:         SubAgentResult{Result: "did a", AgentProgress: AgentProgress{Worktree: "/wt/a"}},
		LastWorktree: "/wt/a",
		Started:      now,
		Ended:        now.Add(time.Minute),
		LastEvent:    "merged",
		ChildID:      "r.a",
		Branch:       "cs/r/a",
	}
	rerun := &Task{
		Sub:        activities.Subtask{ID: "b", Name: "B", Dependencies: []string{"a"}, Stage: 1},
		State:      stateRunning,
		Attempt:    2,
		Reserved:   20,
		Conflict:   &activities.ConflictInfo{Paths: []string{"x.go"}, FirstBase: "b", FirstCommit: "c1"},
		First:      &SubAgentResult{Status: "completed", AgentProgress: AgentProgress{Worktree: "/wt/b", Branch: "cs/r/b", Steps: 4}, Commit: "c1"},
		ChildID:    "r.b.r2.m1",
		Branch:     "cs/r/b-r2-m1",
		ResumeFrom: "cs/r/b-r2",
		Started:    now,
		Control: TaskControl{
			GrantTokens: 800,
			GrantUSD:    0.1,
			Usage:       activities.Usage{PromptTokens: 300},
			Step:        6,
			Ask:         &BudgetReport{Subtask: "b", Attempt: 2, Step: 6, Ask: true, NeedTokens: 900},
		},
	}
	running := &Task{Sub: activities.Subtask{ID: "c", Name: "C"}, State: stateRunning, Attempt: 1, Reserved: 20, ChildID: "r.c", Branch: "cs/r/c"}
	pending := &Task{Sub: activities.Subtask{ID: "d", Name: "D", Dependencies: []string{"b"}, Stage: 2}, Control: TaskControl{Notes: []string{"use x"}}}
	s.plan.tableState = tableState{Tasks: []*Task{done, rerun, running, pending}, Running: 2, Spawned: 5}
	s.share.publishResult(done)
	s.share.publish(control.SharedResult{Key: "finding", Value: `{"v":1}`, Tags: []string{"t"}, Publisher: "c"})
	for i := range 300 {
		s.view.Events = append(s.view.Events, control.Event{Seq: 151 + i, Time: now, Kind: "k"})
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
	s2 := &swarm{}
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
	if !reflect.DeepEqual(s2.share.entries, s.share.entries) {
		t.Errorf("shared values %+v, want %+v", s2.share.entries, s.share.entries)
	}
	if len(c.Events) != carriedEvents || c.Events[0].Seq != 451-carriedEvents || s2.view.Seq != 450 {
		t.Errorf("carried %d events from seq %d, seq %d; want the last %d and seq 450", len(c.Events), c.Events[0].Seq, s2.view.Seq, carriedEvents)
	}
	b := s2.plan.byID("b")
	if b.future != nil || b.State != stateRunning || b.ChildID != "r.b.r2.m1" || b.Control.Ask == nil || b.Control.Ask.NeedTokens != 900 || b.First.Steps != 4 {
		t.Errorf("restored b = %+v", b)
	}
	if a := s2.plan.byID("a"); len(a.removableWorktrees()) != 1 || a.removableWorktrees()[0] != "/wt/a" {
		t.Errorf("restored a removes %v, want its merged worktree /wt/a", a.removableWorktrees())
	}
	if s2.budget.MaxTokens != 5000 || s2.watch.From != "q-ws-h1" || !s2.watch.Lost || s2.view.State != control.RunStateBudgetPaused || s2.Runs != 4 {
		t.Errorf("restored caps %+v host %+v state %s runs %d", s2.budget.budgetCaps, s2.watch.hostRecord, s2.view.State, s2.Runs)
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
	s.plan.Tasks, s.share.entries = nil, nil
	now := time.Date(2026, 11, 29, 5, 0, 0, 0, time.UTC)
	for i := range 1000 {
		id := fmt.Sprintf("%04d-subtask", i)
		var result strings.Builder
		for j := 0; result.Len() < 2000; j++ {
			sum := sha256.Sum256([]byte(fmt.Sprintf("%d/%d", i, j)))
			result.WriteString(hex.EncodeToString(sum[:]) + " ")
		}
		tk := &Task{Sub: activities.Subtask{ID: id, Name: "subtask " + id, Instruction: "do " + id + " carefully", Dependencies: []string{}, NeedsWorktree: true},
			State: stateDone, Attempt: 1, Started: now, Ended: now, ChildID: "run." + id, Branch: "codeswarm/run/" + id,
			Res: activities.SubtaskResult{ID: id, Name: "subtask " + id, Dependencies: []string{}, Success: true, Status: "completed", Result: result.String(),
				Steps: 15, Branch: "codeswarm/run/" + id, Commit: strings.Repeat("c", 40), FilesChanged: []string{id + ".go"}, Merge: "merged",
				Conflicts: []string{}, Worktree: "/ws/run/" + id, PromptTokens: 12000, MergeCommit: strings.Repeat("m", 40)}}
		s.plan.Tasks = append(s.plan.Tasks, tk)
		s.share.publishResult(tk)
	}
	c := s.carry()
	plain, packed := carrySizes(t, c)
	t.Logf("carry of 1,000 subtasks: %d bytes plain, %d packed", len(plain), len(packed))
	if len(plain) <= 3<<19 || len(packed) >= 1<<20 {
		t.Errorf("carry %d bytes plain, %d packed; want over 1.5 MB plain and under 1 MB packed", len(plain), len(packed))
	}
	var back Carry
	if err := json.Unmarshal(packed, &back); err != nil || len(back.Tasks) != 1000 || back.Tasks[999].Res.Result != c.Tasks[999].Res.Result {
		t.Errorf("unpacked %d tasks, err %v", len(back.Tasks), err)
	}
}

// TestCarryReadsV010: the state a v0.1.0 worker handed over (its plain
// JSON, recorded from that release's richSwarm) is read whole by this
// build: carried on again, it says the same, field for field.
func TestCarryReadsV010(t *testing.T) {
	golden, err := os.ReadFile("testdata/carry_v0.1.0.json")
	if err != nil {
		t.Fatal(err)
	}
	var old Carry
	if err := json.Unmarshal(golden, (*carryJSON)(&old)); err != nil {
		t.Fatal(err)
	}
	s := &swarm{}
	s.restore(&old)
	again, err := json.Marshal((*carryJSON)(s.carry()))
	if err != nil {
		t.Fatal(err)
	}
	var want, got map[string]any
	if err := json.Unmarshal(golden, &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(again, &got); err != nil {
		t.Fatal(err)
	}
	want["runs"] = want["runs"].(float64) + 1 // one more run of the chain
	sameFields(t, "carried on again", got, want)
	// And richSwarm, built on this build's types, still writes v0.1.0's state.
	now, err := json.Marshal((*carryJSON)(richSwarm().carry()))
	if err != nil {
		t.Fatal(err)
	}
	var fresh map[string]any
	if err := json.Unmarshal(now, &fresh); err != nil {
		t.Fatal(err)
	}
	want["runs"] = want["runs"].(float64) - 1
	sameFields(t, "richSwarm's carry", fresh, want)
}

// sameFields reports every top-level field where got and want differ.
func sameFields(t *testing.T, what string, got, want map[string]any) {
	t.Helper()
	for k := range want {
		if !reflect.DeepEqual(got[k], want[k]) {
			t.Errorf("%s: field %q differs from v0.1.0's:\n got %.600v\nwant %.600v", what, k, got[k], want[k])
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: field %q is not in v0.1.0's: %.600v", what, k, got[k])
		}
	}
}

// TestCarryOfTenThousandRealisticSubtasks: the carry of a run of 10,000
// finished subtasks with the content a real run has, after the result
// table's own caps (fillResult): a planner's instruction each (the whole
// plan is one model answer, so ~150 bytes), a final answer of 2 kB each
// (cut to the table's share), four changed files, and one in ten failed
// with a 4 kB error of its own. The texts are random hex, which packs to
// half its size at best. Without fitResults the carry packed to 5.25 MB
// and the result to 5.22 MB, over Temporal's 2 MB payload limit; both must
// stay under 1.5 MB.
func TestCarryOfTenThousandRealisticSubtasks(t *testing.T) {
	s := richSwarm()
	s.plan.Tasks, s.share.entries = nil, nil
	now := time.Date(2026, 11, 29, 5, 0, 0, 0, time.UTC)
	const n = 10000
	rng := rand.New(rand.NewPCG(1, 2))
	noise := func(size int) string { // hex: it packs to half its size at best
		raw := make([]byte, size/2)
		for i := range raw {
			raw[i] = byte(rng.Uint32())
		}
		return hex.EncodeToString(raw)
	}
	for i := range n {
		id := fmt.Sprintf("%05d-rename-handler", i)
		dir := fmt.Sprintf("internal/svc%04d", i)
		tk := &Task{Sub: activities.Subtask{ID: id, Name: "rename handler " + id,
			Instruction:  fmt.Sprintf("In %s/handler.go rename HandleRequest to ServeRequest and update every caller in %s; keep behaviour and tests green.", dir, dir),
			Dependencies: []string{}, NeedsWorktree: true},
			Attempt: 1, Started: now, Ended: now.Add(time.Minute), ChildID: "run." + id, Branch: "codeswarm/run/" + id}
		s.plan.Tasks = append(s.plan.Tasks, tk)
	}
	for i, tk := range s.plan.Tasks {
		dir := fmt.Sprintf("internal/svc%04d", i)
		r := SubAgentResult{SubtaskID: tk.Sub.ID, Attempt: 1, Success: true, Status: "completed", ExitReason: "final_answer",
			Result: "Renamed HandleRequest to ServeRequest. " + noise(2000),
			Commit: fmt.Sprintf("%040x", i), Changed: true,
			FilesChanged: []string{dir + "/handler.go", dir + "/handler_test.go", dir + "/routes.go", dir + "/doc.go"},
			AgentProgress: AgentProgress{Worktree: "/ws/run/" + tk.Sub.ID, Branch: tk.Branch, BaseCommit: strings.Repeat("b", 40),
				Steps: 15, ToolCalls: 15, LLMCalls: 15, Usage: activities.Usage{PromptTokens: 12000, CompletionTokens: 900}}}
		tk.State = stateDone
		if i%10 == 0 {
			r.Success, r.Status, r.ExitReason = false, "failed", "error"
			r.Error = "model call failed: " + noise(4000)
		}
		s.plan.fillResult(tk, r)
		if r.Success {
			tk.Res.Merge, tk.Res.MergeCommit = activities.MergeMerged, fmt.Sprintf("%040x", n+i)
		}
		s.share.publishResult(tk)
	}
	plain, packed := carrySizes(t, s.carry())
	t.Logf("carry of %d subtasks: %d bytes plain, %d packed", n, len(plain), len(packed))
	if len(packed) >= 3<<19 {
		t.Errorf("carry of %d subtasks packs to %d bytes, want under 1.5 MB", n, len(packed))
	}
	// The run's result holds the same subtask results, packed (Pack), with
	// the aggregate text and the failed subtasks' worktrees beside them.
	res := activities.SwarmResult{RunID: "r"}
	res.SubtaskResults, res.KeptWorktrees = s.subtaskResults()
	res.Result = aggregate(res.SubtaskResults)
	res, err := res.Pack()
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("result of %d subtasks: %d bytes", n, len(out))
	if len(out) >= 3<<19 {
		t.Errorf("result of %d subtasks is %d bytes, want under 1.5 MB", n, len(out))
	}
}

// carrySizes encodes c as plain JSON and as the packed payload it travels as.
func carrySizes(t *testing.T, c *Carry) (plain, packed []byte) {
	t.Helper()
	plain, err := json.Marshal((*carryJSON)(c))
	if err != nil {
		t.Fatal(err)
	}
	if packed, err = json.Marshal(c); err != nil {
		t.Fatal(err)
	}
	return plain, packed
}
