package workflows_test

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"codeswarm/workflows"
)

// Recorded histories of a real demo run (see recordHistories). Replaying
// them against the current workflow code catches changes that would break
// runs already in flight: a new, removed or reordered command is a
// non-determinism error.
const (
	replaySwarmHistory    = "testdata/swarm_history.json"
	replaySubAgentHistory = "testdata/subagent_history.json"
	// The same demo run with search attributes on (upserts in history).
	replayObservedSwarmHistory    = "testdata/observed_swarm_history.json"
	replayObservedSubAgentHistory = "testdata/observed_subagent_history.json"
	// The same demo run continued as new: the parent after 30 events,
	// every sub-agent every 2 steps; the first run of each chain and the
	// last.
	replayContinuedSwarmFirst    = "testdata/continued_swarm_first_history.json"
	replayContinuedSwarmLast     = "testdata/continued_swarm_last_history.json"
	replayContinuedSubAgentFirst = "testdata/continued_subagent_first_history.json"
	replayContinuedSubAgentLast  = "testdata/continued_subagent_last_history.json"
	// The same demo run steered: plan approved, paused by its token cap
	// with sub-agents asking for allowance, resumed with more tokens.
	replaySteeredSwarmHistory    = "testdata/steered_swarm_history.json"
	replaySteeredSubAgentHistory = "testdata/steered_subagent_history.json"
	replayPausedSwarmHistory     = "testdata/paused_swarm_history.json"
	replayPausedSubAgentHistory  = "testdata/paused_subagent_history.json"
	replayMovedSwarmHistory      = "testdata/moved_swarm_history.json"
	replayMovedSubAgentHistory   = "testdata/moved_subagent_history.json"
	// A run whose second subtask conflicts and is re-run (its re-run too).
	replayConflictSwarmHistory    = "testdata/conflict_swarm_history.json"
	replayConflictSubAgentHistory = "testdata/conflict_subagent_history.json"
	// The demo run again on the repository it has just run on: the plan
	// and every sub-agent from the result cache.
	replayCachedSwarmHistory    = "testdata/cached_swarm_history.json"
	replayCachedSubAgentHistory = "testdata/cached_subagent_history.json"
	// recordRunID is the demo run's workflow ID; recordChild is the
	// sub-agent whose history is kept (it sends a malformed tool call, so
	// its history has the error path too).
	recordRunID = "replay-demo"
	recordChild = recordRunID + ".02-mathx-docs"
)

func TestReplayRecordedHistories(t *testing.T) {
	replayer := worker.NewWorkflowReplayer()
	replayer.RegisterWorkflowWithOptions(workflows.SwarmWorkflow, workflow.RegisterOptions{Name: workflows.SwarmWorkflowName})
	replayer.RegisterWorkflowWithOptions(workflows.SubAgentWorkflow, workflow.RegisterOptions{Name: workflows.SubAgentWorkflowName})
	logger := log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, h := range []struct{ file, workflowID string }{
		{replaySwarmHistory, recordRunID},
		{replaySubAgentHistory, recordChild},
		{replayObservedSwarmHistory, recordRunID},
		{replayObservedSubAgentHistory, recordChild},
		{replayContinuedSwarmFirst, recordRunID},
		{replayContinuedSwarmLast, recordRunID},
		{replayContinuedSubAgentFirst, recordChild},
		{replayContinuedSubAgentLast, recordChild},
		{replaySteeredSwarmHistory, recordRunID},
		{replaySteeredSubAgentHistory, recordChild},
		{replayPausedSwarmHistory, recordRunID},
		{replayPausedSubAgentHistory, recordChild},
		{replayMovedSwarmHistory, recordRunID},
		{replayMovedSubAgentHistory, ""},
		{replayConflictSwarmHistory, recordRunID},
		{replayConflictSubAgentHistory, ""},
		{replayCachedSwarmHistory, recordRunID},
		{replayCachedSubAgentHistory, recordChild},
	} {
		t.Run(filepath.Base(h.file), func(t *testing.T) {
			hist := readHistory(t, h.file)
			// The original workflow ID, not the replayer's default: child
			// workflow IDs are derived from it.
			opts := worker.ReplayWorkflowHistoryOptions{OriginalExecution: workflow.Execution{ID: h.workflowID}}
			if err := replayer.ReplayWorkflowHistoryWithOptions(logger, hist, opts); err != nil {
				t.Fatalf("replay %s: %v\n(a change to workflow logic breaks runs in flight: ship it under Worker Versioning, or a workflow.GetVersion gate where that does not apply (see CHANGELOG.md); re-record with `go test -tags record -run 'TestRecord' ./workflows/` only once no run of the old code can be replayed by this build)", h.file, err)
			}
		})
	}
}

func readHistory(t *testing.T, file string) *historypb.History {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hist, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
	if err != nil {
		t.Fatalf("read %s: %v", file, err)
	}
	return hist
}
