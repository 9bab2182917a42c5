package activities

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
)

// tenThousandResults is a 10,000-subtask result shaped like B8's.
func tenThousandResults() SwarmResult {
	res := SwarmResult{RunID: "swarm-x", Success: true, State: "succeeded", Result: "10000 of 10000 subtasks merged"}
	for i := range 10000 {
		id := fmt.Sprintf("%04d-a%04d", i, i)
		res.SubtaskResults = append(res.SubtaskResults, SubtaskResult{
			ID: id, Name: fmt.Sprintf("a%04d", i), Dependencies: []string{}, Success: true, Status: "completed",
			Result: "Done.\nSTATUS: completed", Steps: 15, ToolCalls: 14, ExecutionTimeMs: int64(60000 + i),
			Branch: "codeswarm/swarm-x/" + id, Commit: fmt.Sprintf("%040x", i*7919), FilesChanged: []string{fmt.Sprintf("agents/a%04d.txt", i)},
			Merge: MergeMerged, Conflicts: []string{}, Attempts: 1, PromptTokens: 16000 + i, CompletionTokens: 700, LLMCalls: 15,
			MergeCommit: fmt.Sprintf("%040x", i*104729),
		})
	}
	return res
}

// A run's result with 10,000 subtasks is over Temporal's 2 MB payload
// limit as it is (the workflow task returning it failed with
// PayloadsTooLarge); packed it is far under, and RunResult's and
// ResultOf's Unpack give back exactly the results. A small result is not
// packed.
func TestResultPacksLargeSubtaskResults(t *testing.T) {
	res := tenThousandResults()
	plain, _ := json.Marshal(res)
	if len(plain) <= 2<<20 {
		t.Fatalf("the unpacked result is %d bytes; the test needs one over 2 MB", len(plain))
	}
	packed, err := res.Pack()
	if err != nil {
		t.Fatal(err)
	}
	wire, _ := json.Marshal(packed)
	if packed.SubtaskResults != nil || len(wire) > 1<<20 {
		t.Fatalf("packed result: %d bytes, subtask results left %d; want under 1 MB with all of them packed", len(wire), len(packed.SubtaskResults))
	}
	t.Logf("10,000 subtask results: %d bytes as JSON, %d packed", len(plain), len(wire))
	var back SwarmResult
	if err := json.Unmarshal(wire, &back); err != nil {
		t.Fatal(err)
	}
	if err := back.Unpack(); err != nil || !reflect.DeepEqual(back, res) {
		t.Fatalf("unpacked result differs (%v)", err)
	}
	failed := res
	failed.Success = false
	packedFailed, _ := failed.Pack()
	if got, ok := ResultOf(RunFailure(packedFailed)); !ok || len(got.SubtaskResults) != 10000 || got.SubtaskResultsPacked != nil {
		t.Fatalf("ResultOf a failed run's packed result: ok %v, %d subtask results", ok, len(got.SubtaskResults))
	}

	// Every sub-agent failed, its worktree kept: 10,000 paths pack too.
	for i := range res.SubtaskResults {
		st := &res.SubtaskResults[i]
		st.Success, st.Status, st.Merge = false, "failed", ""
		st.Worktree = "/home/user/.codeswarm/work/swarm-x/" + st.ID
		res.KeptWorktrees = append(res.KeptWorktrees, st.Worktree)
	}
	res.Success = false
	keptJSON, _ := json.Marshal(res.KeptWorktrees)
	if len(keptJSON) <= keptPackThreshold {
		t.Fatalf("10,000 kept worktrees are %d bytes as JSON; the test needs more than %d", len(keptJSON), keptPackThreshold)
	}
	packedAll, err := res.Pack()
	if err != nil {
		t.Fatal(err)
	}
	wire, _ = json.Marshal(packedAll)
	if packedAll.KeptWorktrees != nil || packedAll.SubtaskResults != nil || len(wire) > 1<<20 {
		t.Fatalf("packed result of 10,000 failures: %d bytes, %d kept worktrees and %d subtask results left; want under 1 MB with both packed",
			len(wire), len(packedAll.KeptWorktrees), len(packedAll.SubtaskResults))
	}
	t.Logf("10,000 kept worktrees: %d bytes as JSON; the whole result %d packed", len(keptJSON), len(wire))
	if got, ok := ResultOf(RunFailure(packedAll)); !ok || !reflect.DeepEqual(got, res) {
		t.Fatalf("ResultOf a failed run with packed kept worktrees: ok %v, %d kept, equal %v", ok, len(got.KeptWorktrees), reflect.DeepEqual(got, res))
	}

	small := SwarmResult{RunID: "swarm-y", SubtaskResults: res.SubtaskResults[:3], KeptWorktrees: res.KeptWorktrees[:3]}
	if p, err := small.Pack(); err != nil || !reflect.DeepEqual(p, small) {
		t.Errorf("a 3-subtask result was changed by Pack (%v)", err)
	}
}
