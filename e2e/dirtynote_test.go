package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"codeswarm/llm/scripted"
)

// TestRunNotesUncommittedChanges: a run started on a repository with
// uncommitted changes says once, on stderr, that it works from the commit
// and does not see them, though the check now runs beside the connection.
func TestRunNotesUncommittedChanges(t *testing.T) {
	h := newHarness(t, scripted.DemoScript())
	repo := faultRepo(t)
	if err := os.WriteFile(filepath.Join(repo, "scratch.txt"), []byte("not committed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.logs.Reset()
	code, res := h.runJSON("run", "--repo", repo, "--task", scripted.DemoTask, "--id", "dirty-note")
	if code != 0 || !res.Success {
		t.Fatalf("run exited %d: %s\n%s", code, fmtResult(res), tail(h.logs.String(), 3000))
	}
	const note = "note: your working tree has uncommitted changes"
	if n := strings.Count(h.logs.String(), note); n != 1 {
		t.Errorf("stderr has the note %d times, want once:\n%s", n, tail(h.logs.String(), 3000))
	}
}
