package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"codeswarm/activities"
	"codeswarm/llm/scripted"
)

// cliProcess starts the CLI as a child process with the given environment.
func cliProcess(t *testing.T, env []string, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), env...), cliEnv+"="+strings.Join(args, "\x1f"))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return cmd, &out, &errb
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// slowDemo is the demo script with model latency, so a run lasts long enough
// to be killed in the middle.
func slowDemo(delay time.Duration) scripted.Script {
	s := scripted.DemoScript()
	for i := range s.Agents {
		for j := range s.Agents[i].Turns {
			s.Agents[i].Turns[j].Delay = scripted.Duration(delay)
		}
	}
	return s
}

// TestKillAndResume kills the CLI process (embedded server, worker and all)
// with SIGKILL in the middle of a run, starts it again with the same run ID
// on the same SQLite file, and expects the run to finish correctly without
// paying again for model answers that had completed.
func TestKillAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("kills processes")
	}
	model, err := scripted.Start(slowDemo(400*time.Millisecond), scripted.WithAPIKey(testAPIKey))
	if err != nil {
		t.Fatal(err)
	}
	defer model.Close()
	repo, state := t.TempDir(), t.TempDir()
	if err := scripted.WriteDemoRepo(repo); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	env := []string{
		"CODESWARM_EMBEDDED_DB_PATH=" + filepath.Join(state, "temporal.db"),
		fmt.Sprintf("CODESWARM_EMBEDDED_PORT=%d", port),
		fmt.Sprintf("CODESWARM_EMBEDDED_UI_PORT=%d", freePort(t)),
		"CODESWARM_TEMPORAL_ADDRESS=", "TEMPORAL_ADDRESS=",
		"CODESWARM_LLM_BASE_URL=" + model.URL(), "CODESWARM_LLM_API_KEY=" + testAPIKey,
		"CODESWARM_WORKSPACE_ROOT=" + filepath.Join(state, "ws"),
	}
	args := []string{"run", "--repo", repo, "--task", scripted.DemoTask, "--id", "crash-demo", "--json"}

	first, _, firstErr := cliProcess(t, env, args...)
	waitFor(t, 60*time.Second, func() bool { return model.Count("agent") >= 6 })
	// Kill with the run at rest (freezeModel).
	freezeModel(t, model, filepath.Join(state, "ws"), first.Process.Pid, 1)
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	before := thawAfterKill(t, model)

	// The Web UI's port is picked again: the first process held it until
	// the kill, and any process on the machine may have taken it since.
	second, out, secondErr := cliProcess(t, append(env, fmt.Sprintf("CODESWARM_EMBEDDED_UI_PORT=%d", freePort(t))), args...)
	if err := second.Wait(); err != nil {
		t.Fatalf("second run: %v\nstdout:\n%s\nstderr:\n%s\nfirst stderr:\n%s", err, out, tail(secondErr.String(), 4000), tail(firstErr.String(), 2000))
	}
	var res activities.SwarmResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("result: %v\n%s", err, out)
	}
	if !res.Success || len(res.SubtaskResults) != 3 {
		t.Fatalf("run after restart did not succeed:\n%s", fmtResult(res))
	}
	for _, s := range res.SubtaskResults {
		if s.Merge != activities.MergeMerged {
			t.Errorf("%s: merge %s", s.ID, s.Merge)
		}
	}
	mustContain(t, "main.go", git(t, repo, "show", res.Branch+":main.go"), "mathx.Mean")
	// Exactly one merge commit per subtask: no merge was repeated.
	merges := git(t, repo, "rev-list", "--merges", "--count", res.BaseCommit+".."+res.Branch)
	if merges != "3" {
		t.Errorf("merge commits on the integration branch: %s, want 3", merges)
	}
	s := accountKill(before, 0, model.Requests())
	t.Logf("requests before kill %d (in flight %d), re-sent of those %d, answered calls re-sent %d", len(before), s.inFlight, s.retried, s.resent)
	checkKillStats(t, "CLI kill", s)
	if s.inFlight == 0 {
		t.Error("no model call was in flight at the kill")
	}
}

func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
