package workflows_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"codeswarm/activities"
	"codeswarm/workflows"
)

func TestSwarmMergeConflict(t *testing.T) {
	tests := []struct {
		name         string
		resolve      bool
		rerunAlsoBad bool
		rerunFails   bool
		wantSuccess  bool
		wantMerge    string
		wantAttempts int
	}{
		{name: "resolved by a re-run", resolve: true, wantSuccess: true, wantMerge: activities.MergeMerged, wantAttempts: 2},
		{name: "not resolved", resolve: false, wantSuccess: false, wantMerge: activities.MergeConflict, wantAttempts: 1},
		{name: "re-run conflicts again", resolve: true, rerunAlsoBad: true, wantSuccess: false, wantMerge: activities.MergeConflict, wantAttempts: 2},
		{name: "re-run fails", resolve: true, rerunFails: true, wantSuccess: false, wantMerge: activities.MergeSkipped, wantAttempts: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// B's first commit conflicts with the integration head, whatever merged first.
			w := newWorld(subtask("01-a", 0), subtask("02-b", 0), subtask("03-c", 1, "02-b"))
			w.scripts["02-b"] = func(in activities.AgentStepInput) activities.AgentStepResult {
				if tt.rerunFails && in.Ref.Attempt == 2 {
					return finalTurn("cannot redo it\nSTATUS: blocked")
				}
				return toolsThenDone(2)(in)
			}
			firstB := commitOf("/wt/02-b-a1")
			w.mergeFn = func(in activities.MergeSubtaskInput) (activities.MergeSubtaskResult, bool) {
				if in.SubtaskID == "02-b" && (in.Commit == firstB || tt.rerunAlsoBad) {
					return activities.MergeSubtaskResult{Status: activities.MergeConflict, Conflicts: []string{"shared.go"}}, true
				}
				return activities.MergeSubtaskResult{}, false
			}
			in := swarmInput()
			in.ResolveConflicts = tt.resolve
			res := runSwarm(t, newEnv(t, w), in)

			b := subtaskResult(t, res, "02-b")
			if res.Success != tt.wantSuccess || b.Success != tt.wantSuccess || b.Merge != tt.wantMerge || b.Attempts != tt.wantAttempts {
				t.Fatalf("run success=%v; 02-b success=%v merge=%q attempts=%d; want %v %q %d (error %q)",
					res.Success, b.Success, b.Merge, b.Attempts, tt.wantSuccess, tt.wantMerge, tt.wantAttempts, res.Error)
			}
			if !slices.Equal(b.Conflicts, []string{"shared.go"}) {
				t.Errorf("conflicts = %v, want [shared.go]", b.Conflicts)
			}
			if got := w.count("start:02-b"); got != tt.wantAttempts {
				t.Errorf("02-b started %d times, want %d", got, tt.wantAttempts)
			}
			if tt.wantAttempts == 2 {
				var rerun activities.StartSubtaskInput
				for _, s := range w.starts {
					if s.Subtask.ID == "02-b" && s.Ref.Attempt == 2 {
						rerun = s
					}
				}
				if rerun.Conflict == nil || !slices.Equal(rerun.Conflict.Paths, []string{"shared.go"}) || rerun.Conflict.FirstCommit != firstB || rerun.Conflict.FirstBase != baseCommit {
					t.Errorf("re-run conflict info = %+v, want paths [shared.go], first commit %s", rerun.Conflict, firstB)
				}
				if want := workflows.SubtaskBranch("codeswarm", testRunID, "02-b", 2); rerun.Branch != want {
					t.Errorf("re-run branch = %q, want %q", rerun.Branch, want)
				}
				if tt.rerunFails {
					// The re-run's work and the first attempt's are both kept and named.
					if !slices.Contains(res.KeptWorktrees, "/wt/02-b-a1") || !slices.Contains(res.KeptWorktrees, "/wt/02-b-a2") {
						t.Errorf("kept worktrees = %v, want both attempts'", res.KeptWorktrees)
					}
				} else if b.Steps != 3+3 || b.ToolCalls != 4 {
					t.Errorf("steps=%d tool calls=%d, want both attempts counted (6, 4)", b.Steps, b.ToolCalls)
				}
				if !slices.Contains(w.childIDs, workflows.ChildWorkflowID(testRunID, "02-b", 2)) {
					t.Errorf("child IDs %v lack the re-run's", w.childIDs)
				}
			}
			c := subtaskResult(t, res, "03-c")
			if tt.wantSuccess {
				// The dependent waits for the re-run's merge.
				if i, j := w.indexOf("start:03-c"), w.indexOf("merge:02-b"); i < 0 || j < 0 || i < j {
					t.Errorf("03-c started at %d, 02-b merged at %d; log %v", i, j, w.log)
				}
			} else if c.Status != activities.StatusBlocked || w.indexOf("start:03-c") >= 0 {
				t.Errorf("03-c = %+v, want blocked by the unmerged 02-b", c)
			}
			if !tt.wantSuccess {
				if b.Branch == "" || b.Commit == "" || (!tt.rerunFails && !strings.Contains(b.Error, b.Branch)) {
					t.Errorf("conflicted work not kept: branch=%q commit=%q error=%q", b.Branch, b.Commit, b.Error)
				}
				if tt.wantAttempts == 2 && !strings.Contains(b.Error, "first attempt kept on branch "+workflows.SubtaskBranch("codeswarm", testRunID, "02-b", 1)) {
					t.Errorf("error %q does not name the first attempt's branch", b.Error)
				}
				if !strings.Contains(res.Error, "02-b (") {
					t.Errorf("run error %q does not name 02-b", res.Error)
				}
				if !strings.HasSuffix(res.HeadCommit, "-01-a") {
					t.Errorf("head = %q, want only A's merge", res.HeadCommit)
				}
			} else if res.HeadCommit != "merge-4-03-c" {
				t.Errorf("head = %q, want the re-run's merge", res.HeadCommit)
			}
		})
	}
}

// TestSwarmConflictRerunCountsAgainstMaxSubagents: a conflict re-run is a
// sub-agent too; when max_subagents is used up, the conflict is reported
// and the work stays on its branch instead.
func TestSwarmConflictRerunCountsAgainstMaxSubagents(t *testing.T) {
	for _, tt := range []struct {
		maxSubagents, wantAttempts int
		wantMerge                  string
	}{
		{maxSubagents: 2, wantAttempts: 1, wantMerge: activities.MergeConflict},
		{maxSubagents: 3, wantAttempts: 2, wantMerge: activities.MergeMerged},
	} {
		w := newWorld(subtask("01-a", 0), subtask("02-b", 0))
		firstB := commitOf("/wt/02-b-a1")
		w.mergeFn = func(in activities.MergeSubtaskInput) (activities.MergeSubtaskResult, bool) {
			if in.Commit == firstB {
				return activities.MergeSubtaskResult{Status: activities.MergeConflict, Conflicts: []string{"shared.go"}}, true
			}
			return activities.MergeSubtaskResult{}, false
		}
		in := swarmInput()
		in.Limits.MaxSubagents = tt.maxSubagents
		res := runSwarm(t, newEnv(t, w), in)
		b := subtaskResult(t, res, "02-b")
		if b.Attempts != tt.wantAttempts || b.Merge != tt.wantMerge || res.Stats.SubagentsSpawned > tt.maxSubagents {
			t.Errorf("max_subagents %d: 02-b attempts=%d merge=%q, spawned %d; want %d %q", tt.maxSubagents,
				b.Attempts, b.Merge, res.Stats.SubagentsSpawned, tt.wantAttempts, tt.wantMerge)
		}
		if tt.wantMerge == activities.MergeConflict &&
			(!strings.Contains(b.Error, "max_subagents (2) reached") || !strings.Contains(b.Error, "kept on branch")) {
			t.Errorf("02-b error = %q, want the cap and the kept branch named", b.Error)
		}
	}
}

// TestSwarmStatsCountEveryAttempt: a subtask re-run after a conflict
// reports the steps, tool calls, time and tokens of both attempts, and the
// run's sequential estimate is the sum of what the subtasks report.
func TestSwarmStatsCountEveryAttempt(t *testing.T) {
	w := newWorld(subtask("01-a", 0), subtask("02-b", 0))
	w.stepDelay = time.Minute
	firstB := commitOf("/wt/02-b-a1")
	w.mergeFn = func(in activities.MergeSubtaskInput) (activities.MergeSubtaskResult, bool) {
		if in.Commit == firstB {
			return activities.MergeSubtaskResult{Status: activities.MergeConflict, Conflicts: []string{"shared.go"}}, true
		}
		return activities.MergeSubtaskResult{}, false
	}
	res := runSwarm(t, newEnv(t, w), swarmInput())
	a, b := subtaskResult(t, res, "01-a"), subtaskResult(t, res, "02-b")
	if b.Attempts != 2 || b.Steps != 2*a.Steps || b.ToolCalls != 2*a.ToolCalls {
		t.Fatalf("02-b attempts=%d steps=%d tool calls=%d; 01-a steps=%d tool calls=%d", b.Attempts, b.Steps, b.ToolCalls, a.Steps, a.ToolCalls)
	}
	// Both run the same script at one minute a step: two attempts take twice as long.
	if a.ExecutionTimeMs < 2*60_000 || b.ExecutionTimeMs != 2*a.ExecutionTimeMs {
		t.Errorf("execution time: 01-a %d ms, 02-b %d ms; want 02-b to count both attempts", a.ExecutionTimeMs, b.ExecutionTimeMs)
	}
	if b.PromptTokens != 2*a.PromptTokens || b.LLMCalls != 2*a.LLMCalls {
		t.Errorf("02-b tokens %d, llm calls %d; 01-a %d, %d; want both attempts", b.PromptTokens, b.LLMCalls, a.PromptTokens, a.LLMCalls)
	}
	st := res.Stats
	if st.SequentialTimeEstimateMs != a.ExecutionTimeMs+b.ExecutionTimeMs || st.TotalToolCalls != a.ToolCalls+b.ToolCalls {
		t.Errorf("stats sequential %d ms, tool calls %d; want the subtasks' sums %d, %d",
			st.SequentialTimeEstimateMs, st.TotalToolCalls, a.ExecutionTimeMs+b.ExecutionTimeMs, a.ToolCalls+b.ToolCalls)
	}
	if g := st.Stages[0]; g.TotalSteps != a.Steps+b.Steps || g.MaxSteps != b.Steps || g.ExecutionTimeMs != b.ExecutionTimeMs {
		t.Errorf("stage 0 stats = %+v", g)
	}
	if st.CriticalPathLength != b.Steps {
		t.Errorf("critical path = %d, want 02-b's %d steps", st.CriticalPathLength, b.Steps)
	}
}

func TestSwarmMergeActivityFails(t *testing.T) {
	w := newWorld(subtask("01-a", 0), subtask("02-b", 1, "01-a"))
	w.mergeErr = temporal.NewNonRetryableApplicationError("integration branch moved", "Git", nil)
	env := newEnv(t, w)
	res := runSwarm(t, env, swarmInput())
	r := subtaskResult(t, res, "01-a")
	if r.Success || r.Merge != activities.MergeSkipped || !strings.Contains(r.Error, "merge failed") || r.Commit == "" {
		t.Errorf("01-a = %+v, want a failed merge with its commit kept", r)
	}
	if b := subtaskResult(t, res, "02-b"); b.Status != activities.StatusBlocked {
		t.Errorf("02-b status = %q, want blocked", b.Status)
	}
	if res.Success || res.HeadCommit != baseCommit {
		t.Errorf("success=%v head=%q", res.Success, res.HeadCommit)
	}
}

func TestSwarmVerify(t *testing.T) {
	failFrom := func(n int) func(in activities.VerifyInput, k int) activities.VerifyReport {
		return func(in activities.VerifyInput, k int) activities.VerifyReport {
			if n > 0 && k >= n {
				return activities.VerifyReport{Command: in.Command, Commit: in.Commit, ExitCode: 2, Output: "FAIL"}
			}
			return activities.VerifyReport{Command: in.Command, Commit: in.Commit, OK: true}
		}
	}
	tests := []struct {
		name         string
		mode         string
		failFrom     int // first failing verify call, 0: never
		wantVerifies int
		wantSuccess  bool
		wantBrokenBy string
	}{
		{name: "end passes", mode: "end", wantVerifies: 1, wantSuccess: true},
		{name: "end fails", mode: "", failFrom: 1, wantVerifies: 1},
		{name: "each passes", mode: "each", wantVerifies: 3, wantSuccess: true},
		{name: "each names the first breaker", mode: "each", failFrom: 2, wantVerifies: 3, wantBrokenBy: "02-b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(subtask("01-a", 0), subtask("02-b", 1, "01-a"), subtask("03-c", 2, "02-b"))
			w.verifyFn = failFrom(tt.failFrom)
			in := swarmInput()
			in.VerifyCommand, in.VerifyMode = "go test ./...", tt.mode
			res := runSwarm(t, newEnv(t, w), in)

			if len(w.verifies) != tt.wantVerifies {
				t.Fatalf("Verify called %d times, want %d; log %v", len(w.verifies), tt.wantVerifies, w.log)
			}
			for i, v := range w.verifies {
				if v.Command != in.VerifyCommand || v.RepoPath != repoRoot {
					t.Errorf("verify %d input = %+v", i, v)
				}
			}
			if tt.mode == "each" {
				for _, id := range []string{"01-a", "02-b", "03-c"} {
					m := w.indexOf("merge:" + id)
					if m < 0 || m+1 >= len(w.log) || !strings.HasPrefix(w.log[m+1], "verify:merge-") {
						t.Errorf("no verify right after merging %s; log %v", id, w.log)
					}
				}
			} else if last := w.log[len(w.log)-2]; last != "verify:"+res.HeadCommit {
				t.Errorf("end verify ran as %q, want once on the final head %s before finish; log %v", last, res.HeadCommit, w.log)
			}
			if res.Success != tt.wantSuccess {
				t.Fatalf("success = %v, want %v (error %q)", res.Success, tt.wantSuccess, res.Error)
			}
			if res.Verify == nil || res.Verify.OK != tt.wantSuccess || res.Verify.BrokenBy != tt.wantBrokenBy {
				t.Errorf("verify report = %+v, want ok=%v broken_by=%q", res.Verify, tt.wantSuccess, tt.wantBrokenBy)
			}
			if !tt.wantSuccess && !strings.Contains(res.Error, `"go test ./..."`) {
				t.Errorf("error %q does not name the command", res.Error)
			}
			if tt.wantBrokenBy != "" {
				if !strings.Contains(res.Error, "after merging "+tt.wantBrokenBy) || !subtaskResult(t, res, tt.wantBrokenBy).VerifyFailed {
					t.Errorf("error %q / verify_failed does not blame %s", res.Error, tt.wantBrokenBy)
				}
				if subtaskResult(t, res, "03-c").VerifyFailed {
					t.Error("03-c blamed although 02-b broke the build first")
				}
			}
		})
	}
}

func TestSwarmVerifySkippedWithoutMerges(t *testing.T) {
	w := newWorld(subtask("01-a", 0))
	w.scripts["01-a"] = sequence(finalTurn("STATUS: pending"))
	in := swarmInput()
	in.VerifyCommand = "make test"
	res := runSwarm(t, newEnv(t, w), in)
	if len(w.verifies) != 0 || res.Verify != nil {
		t.Errorf("verify ran %d times with nothing merged", len(w.verifies))
	}
}

func TestSwarmApplyOnlyOnSuccess(t *testing.T) {
	tests := []struct {
		name      string
		apply     bool
		fail      bool
		wantApply bool
	}{
		{name: "success with apply", apply: true, wantApply: true},
		{name: "failure with apply", apply: true, fail: true},
		{name: "success without apply"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(subtask("01-a", 0), subtask("02-b", 0))
			if tt.fail {
				w.scripts["02-b"] = sequence(finalTurn("no status line"))
			}
			in := swarmInput()
			in.Apply = tt.apply
			res := runSwarm(t, newEnv(t, w), in)
			if len(w.finishes) != 1 {
				t.Fatalf("FinishRun called %d times", len(w.finishes))
			}
			fin := w.finishes[0]
			if fin.Apply != tt.wantApply || res.Applied != tt.wantApply {
				t.Errorf("FinishRun apply=%v result applied=%v, want %v", fin.Apply, res.Applied, tt.wantApply)
			}
			if fin.BaseBranch != "main" || fin.BaseCommit != baseCommit || fin.IntegrationHead != res.HeadCommit || fin.RepoPath != repoRoot {
				t.Errorf("finish input = %+v", fin)
			}
			if tt.fail {
				if !strings.Contains(res.ApplyError, "not applied") {
					t.Errorf("apply_error = %q", res.ApplyError)
				}
				// The failed subtask's worktree is kept, the merged one removed.
				if !slices.Equal(finishRemoves(fin), []string{"/wt/01-a-a1"}) || !slices.Contains(res.KeptWorktrees, "/wt/02-b-a1") {
					t.Errorf("removed %v, kept %v", finishRemoves(fin), res.KeptWorktrees)
				}
			}
		})
	}
}
