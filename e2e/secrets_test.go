package e2e

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"codeswarm/llm/scripted"
)

// TestEncodedKeyNeverLeaves: the repository holds the API key in a file; the
// agent prints it plainly, base64-encoded (alone and mid-stream) and in hex,
// writes it into its final answer and publishes it with swarm_share. The key
// reaches neither the model, nor any workflow history, the result, the logs,
// or a file of the workspace state (transcripts, journals), in any of these
// forms.
func TestEncodedKeyNeverLeaves(t *testing.T) {
	bashArgs, _ := json.Marshal(map[string]string{"command": "cat leak.txt; base64 -w0 leak.txt; echo; " +
		"printf 'Authorization: %s' \"$(cat leak.txt)\" | base64 -w0; echo; od -An -v -tx1 leak.txt | tr -d ' \\n'"})
	shareArgs, _ := json.Marshal(map[string]any{"action": "publish", "key": "creds", "value": map[string]string{"key": testAPIKey}})
	h := newHarness(t, scripted.Script{
		Planner: []scripted.Reply{{Content: faultPlan("leaky")}},
		Agents: []scripted.Agent{faultAgent("leaky", []scripted.Reply{
			{ToolCalls: []scripted.ToolCall{{Name: "bash", Arguments: string(bashArgs)}, {Name: "swarm_share", Arguments: string(shareArgs)},
				{Name: "write", Arguments: `{"path": "leaky.txt", "content": "done\n"}`}}},
			{Content: "The key is " + testAPIKey + "\nSTATUS: completed"},
		})},
	})
	repo := faultRepo(t)
	if err := os.WriteFile(filepath.Join(repo, "leak.txt"), []byte(testAPIKey), 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, repo, "add", "leak.txt")
	git(t, repo, "commit", "-m", "a file holding the key")

	code, res := h.runJSON("run", "--repo", repo, "--task", "secret exfiltration scenario", "--id", "leak-run")
	if code != 0 || !res.Success {
		t.Fatalf("run failed (exit %d):\n%s\n%s", code, fmtResult(res), tail(h.logs.String(), 3000))
	}
	forms := keyForms(testAPIKey)
	check := func(where, text string) {
		for name, form := range forms {
			if strings.Contains(text, form) {
				t.Errorf("%s holds the key %s", where, name)
			}
		}
	}
	result, _ := json.Marshal(res)
	check("the result", string(result))
	check("the logs", h.logs.String())
	for id, hist := range exportHistories(t, h.client) {
		check("history "+id, hist)
	}
	for i, r := range h.model.Requests() {
		check(fmt.Sprintf("model request %d", i), string(r.Body))
	}
	err := filepath.WalkDir(h.root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "leak.txt" { // the worktree's own copy of the file
			return err
		}
		b, err := os.ReadFile(path)
		check(path, string(b))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(byID(res)["01-leaky"].Result, "The key is [REDACTED]") {
		t.Errorf("subtask result %q, want the key redacted", byID(res)["01-leaky"].Result)
	}
}

// keyForms are the disguises checked for, computed independently of the
// scrubber: the key, its hex, its base64 alone, and the part of a base64
// stream that encodes only the key when it follows a 15-byte prefix.
func keyForms(key string) map[string]string {
	midStream := base64.StdEncoding.EncodeToString([]byte("Authorization: " + key))
	return map[string]string{
		"in clear":             key,
		"in hex":               hex.EncodeToString([]byte(key)),
		"in base64":            strings.TrimRight(base64.StdEncoding.EncodeToString([]byte(key)), "="),
		"in mid-stream base64": midStream[20 : len(midStream)-4],
	}
}
