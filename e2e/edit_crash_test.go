package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"codeswarm/llm/scripted"
)

// bigEditScript: one subtask whose only change is an edit near the end of a
// large file, so the edit (read, hash, write, fsync, rename) lasts long
// enough to kill the worker in the middle of it.
func bigEditScript(t *testing.T) scripted.Script {
	return scripted.Script{
		Planner: []scripted.Reply{planReply(t, subtask("big-edit", "[crash:edit] Replace MARKER_OLD with MARKER_NEW in data.txt."))},
		Agents: []scripted.Agent{{Match: "[crash:edit]", Turns: []scripted.Reply{
			{ToolCalls: []scripted.ToolCall{toolCall(t, "edit", map[string]any{"path": "data.txt", "old_string": "MARKER_OLD", "new_string": "MARKER_NEW"})}},
			done("replaced the marker"),
		}}},
	}
}

// journalIntent reports whether a tool journal under root has recorded the
// intent of a change (the edit has been planned and is being applied).
func journalIntent(root string) bool {
	files, _ := filepath.Glob(filepath.Join(root, "*", ".state", "journal", "*", "*.json"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err == nil && bytes.Contains(b, []byte(`"state":"intent"`)) && bytes.Contains(b, []byte(`"tool":"edit"`)) {
			return true
		}
	}
	return false
}

// TestWorkerCrashDuringEdit kills the worker while an edit is being applied
// (its intent is journaled, its completion is not). Whether the kill came
// before or after the file was replaced, the retried tool call must leave
// the change applied exactly once and report success to the model.
func TestWorkerCrashDuringEdit(t *testing.T) {
	if testing.Short() {
		t.Skip("kills worker processes")
	}
	r := newCrashRig(t, bigEditScript(t))
	var data bytes.Buffer
	line := strings.Repeat("filler text for a large file that takes a while to rewrite ", 2) + "\n"
	for data.Len() < 96<<20 {
		data.WriteString(line)
	}
	data.WriteString("MARKER_OLD\n")
	repo := newRepo(t, map[string]string{"data.txt": data.String()})
	r.startWorker()
	r.startRun(repo, "crash-edit")
	waitFor(t, 2*time.Minute, func() bool { return journalIntent(r.root) })
	r.killWorker()
	res := r.await("crash-edit")
	if !res.Success || len(res.SubtaskResults) != 1 || res.SubtaskResults[0].Merge != "merged" {
		t.Fatalf("run after the kill did not succeed:\n%s", fmtResult(res))
	}
	body := git(t, repo, "show", res.Branch+":data.txt")
	if strings.Count(body, "MARKER_NEW") != 1 || strings.Contains(body, "MARKER_OLD") || len(body)+1 != data.Len() {
		t.Errorf("data.txt after the retried edit: %d bytes (want %d), MARKER_NEW %d times, MARKER_OLD present %v",
			len(body)+1, data.Len(), strings.Count(body, "MARKER_NEW"), strings.Contains(body, "MARKER_OLD"))
	}
	// The model saw a successful edit, not "changed since the interrupted attempt".
	reqs := r.model.Requests()
	last := string(reqs[len(reqs)-1].Body)
	if strings.Contains(last, "changed since the interrupted attempt") || strings.Contains(last, "not found") {
		t.Errorf("the model was told the edit failed:\n%s", tail(last, 1500))
	}
	r.reportKills(0)
}
