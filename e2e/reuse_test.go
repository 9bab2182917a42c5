package e2e

import (
	"strings"
	"testing"

	"codeswarm/llm/scripted"
)

// TestRunIDReuseRefused runs the demo, then `run` again with the same --id
// on a fresh copy of the repository. The ID names the first run's
// transcripts and branches, so the second run must be refused with an error
// that names the old run, before any model call or branch is made (it used
// to replay the old answers and fail every subtask).
func TestRunIDReuseRefused(t *testing.T) {
	h := newHarness(t, scripted.DemoScript())
	first := t.TempDir()
	if err := scripted.WriteDemoRepo(first); err != nil {
		t.Fatal(err)
	}
	const id = "e2e-reuse"
	code, res := h.runJSON("run", "--repo", first, "--task", scripted.DemoTask, "--id", id)
	if code != 0 || !res.Success {
		t.Fatalf("first run failed (exit %d):\n%s", code, fmtResult(res))
	}
	calls := len(h.model.Requests())

	fresh := t.TempDir()
	if err := scripted.WriteDemoRepo(fresh); err != nil {
		t.Fatal(err)
	}
	expectUsageError(t, h, "run ID "+id+" is taken: that run completed at ",
		"run", "--repo", fresh, "--task", scripted.DemoTask, "--id", id)
	stderr := h.logs.String()
	for _, want := range []string{"repository " + first, "give a new --id", "codeswarm clean " + id} {
		if !strings.Contains(stderr, want) {
			t.Errorf("error does not say %q:\n%s", want, stderr)
		}
	}
	if n := len(h.model.Requests()); n != calls {
		t.Errorf("the refused run made %d model calls", n-calls)
	}
	if branches := git(t, fresh, "branch", "--list", "codeswarm/*"); branches != "" {
		t.Errorf("the refused run created branches:\n%s", branches)
	}
}
