package workflows_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"codeswarm/activities"
)

// TestResultStaysUnderPayloadLimit: a large plan whose sub-agents all answer
// with long final texts still gives a result far under Temporal's 2 MB
// payload limit: each subtask's text is cut to its share, the aggregate to
// its budget, and every cut is marked.
func TestResultStaysUnderPayloadLimit(t *testing.T) {
	const n = 80
	subs := make([]activities.Subtask, n)
	for i := range subs {
		subs[i] = subtask(fmt.Sprintf("%02d-s", i), 0)
	}
	w := newWorld(subs...)
	long := strings.Repeat("é long final answer ", 2000) // 42 kB, two-byte characters
	w.fallback = sequence(finalTurn(long + "\nSTATUS: completed"))
	in := swarmInput()
	in.Limits.MaxSubagents = n
	in.Limits.MaxTotalSteps = 10 * n
	res := runSwarm(t, newEnv(t, w), in)
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d subtasks of %d-byte answers: result JSON %d bytes", n, len(long), len(b))
	if len(b) > 1600<<10 {
		t.Errorf("result JSON is %d bytes, want under 1.6 MiB (Temporal refuses payloads over 2 MB)", len(b))
	}
	if len(res.SubtaskResults) != n {
		t.Fatalf("%d subtask results, want %d", len(res.SubtaskResults), n)
	}
	perTask := (1 << 20) / n
	for _, r := range res.SubtaskResults {
		if len(r.Result) > perTask+32 || !strings.HasSuffix(r.Result, "...[truncated]") {
			t.Fatalf("%s: result %d bytes (suffix %q), want at most its share %d and marked", r.ID, len(r.Result), r.Result[max(0, len(r.Result)-20):], perTask)
		}
		if !utf8.ValidString(r.Result) || !strings.HasPrefix(r.Result, "é") {
			t.Fatalf("%s: cut text is not valid", r.ID)
		}
	}
	if len(res.Result) > 256<<10+32 || !strings.HasSuffix(res.Result, "...[truncated]") {
		t.Errorf("aggregate %d bytes, want at most 256 KiB and marked", len(res.Result))
	}
}
