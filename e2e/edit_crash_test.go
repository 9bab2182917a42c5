package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
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

// editIntent is the journal record of an edit that has been planned but
// not completed, and the worktree file it changes.
type editIntent struct {
	Tool     string `json:"tool"`
	State    string `json:"state"`
	Path     string `json:"path"`
	PreHash  string `json:"pre_hash"`
	PostHash string `json:"post_hash"`
	file     string // absolute path of Path in the subtask's worktree
}

// journalEdits returns the latest record of each edit call in run runID's
// tool journals under root (root/RUN/.state/journal/SUBTASK-aN/calls.log,
// one JSON line per record, a key's latest line winning; the worktree
// being root/RUN/SUBTASK).
func journalEdits(root, runID string) []editIntent {
	logs, _ := filepath.Glob(filepath.Join(root, runID, ".state", "journal", "*", "calls.log"))
	var edits []editIntent
	for _, f := range logs {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		latest, order := map[string]editIntent{}, []string{}
		subtask := strings.TrimSuffix(filepath.Base(filepath.Dir(f)), "-a1")
		for _, line := range strings.Split(string(b), "\n") {
			var rec struct {
				Key string `json:"key"`
				editIntent
			}
			if json.Unmarshal([]byte(line), &rec) != nil || rec.Key == "" || rec.Tool != "edit" {
				continue
			}
			if _, seen := latest[rec.Key]; !seen {
				order = append(order, rec.Key)
			}
			rec.file = filepath.Join(root, runID, subtask, rec.Path)
			latest[rec.Key] = rec.editIntent
		}
		for _, k := range order {
			edits = append(edits, latest[k])
		}
	}
	return edits
}

// journalIntent returns the recorded intent of an edit in run runID's tool
// journals that has not been completed, if there is one.
func journalIntent(root, runID string) (editIntent, bool) {
	for _, rec := range journalEdits(root, runID) {
		if rec.State == "intent" {
			return rec, true
		}
	}
	return editIntent{}, false
}

// journalState returns the state of the journal record of the edit's call
// ("intent", "done"), "" if there is none.
func journalState(root, runID string) string {
	if edits := journalEdits(root, runID); len(edits) > 0 {
		return edits[0].State
	}
	return ""
}

// killSide says which side of the journal a kill hit: the recorded change
// had not landed (the file still has the pre-image) or had (post-image).
func killSide(t *testing.T, in editIntent) string {
	t.Helper()
	b, err := os.ReadFile(in.file)
	if err != nil {
		t.Fatalf("read the edited file after the kill: %v", err)
	}
	sum := sha256.Sum256(b)
	switch hex.EncodeToString(sum[:]) {
	case in.PreHash:
		return "not applied"
	case in.PostHash:
		return "applied"
	}
	t.Fatalf("%s after the kill matches neither the recorded pre- nor post-image: the change was torn", in.file)
	return ""
}

// TestWorkerCrashDuringEdit kills the worker while an edit is being applied
// (its intent is journaled, its completion is not) and checks which side
// of the journal the kill hit. Not applied: the retried call applies the
// change; applied: the retried call finds it landed and does not apply it
// again. Either way the change is there exactly once and the model is told
// the edit succeeded.
func TestWorkerCrashDuringEdit(t *testing.T) {
	if testing.Short() {
		t.Skip("kills worker processes")
	}
	const id = "crash-edit"
	// The 96 MiB file is over the default tools.max_file_bytes (8 MiB).
	t.Setenv("CODESWARM_TOOLS_MAX_FILE_BYTES", strconv.Itoa(256<<20))
	r := newCrashRig(t, bigEditScript(t))
	var data bytes.Buffer
	line := strings.Repeat("filler text for a large file that takes a while to rewrite ", 2) + "\n"
	for data.Len() < 96<<20 {
		data.WriteString(line)
	}
	data.WriteString("MARKER_OLD\n")
	repo := newRepo(t, map[string]string{"data.txt": data.String()})
	r.startWorker()
	r.startRun(repo, id)
	// The answer asking for the edit is turn 0; freeze once it is sent, so
	// no model call is in flight at the kill and the kill follows the
	// journal's intent record with nothing in between.
	waitFor(t, 2*time.Minute, func() bool { return answered(r.model, "[crash:edit]", 0) })
	r.freeze(0)
	var intent editIntent
	waitFor(t, 2*time.Minute, func() bool { var ok bool; intent, ok = journalIntent(r.root, id); return ok })
	r.killFrozen()
	if st := journalState(r.root, id); st != "intent" {
		t.Fatalf("journal record of the edit is %q at the kill, want intent: the kill did not interrupt the edit", st)
	}
	side := killSide(t, intent)
	t.Logf("the kill hit the edit with its change %s", side)
	res := r.await(id)
	if !res.Success || len(res.SubtaskResults) != 1 || res.SubtaskResults[0].Merge != "merged" {
		t.Fatalf("run after the kill did not succeed:\n%s", fmtResult(res))
	}
	body := git(t, repo, "show", res.Branch+":data.txt")
	if strings.Count(body, "MARKER_NEW") != 1 || strings.Contains(body, "MARKER_OLD") || len(body)+1 != data.Len() {
		t.Errorf("data.txt after the retried edit (%s at the kill): %d bytes (want %d), MARKER_NEW %d times, MARKER_OLD present %v",
			side, len(body)+1, data.Len(), strings.Count(body, "MARKER_NEW"), strings.Contains(body, "MARKER_OLD"))
	}
	if st := journalState(r.root, id); st != "done" && st != "" {
		t.Errorf("journal record of the edit ends %q, want done", st)
	}
	// The model saw a successful edit, not "changed since the interrupted attempt".
	reqs := r.model.Requests()
	last := string(reqs[len(reqs)-1].Body)
	if strings.Contains(last, "changed since the interrupted attempt") || strings.Contains(last, "not found") {
		t.Errorf("the model was not told the edit succeeded:\n%s", tail(last, 1500))
	}
	r.reportKills(0)
}
