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
	env := []string{
		"CODESWARM_EMBEDDED_DB_PATH=" + filepath.Join(state, "temporal.db"),
		fmt.Sprintf("CODESWARM_EMBEDDED_PORT=%d", freePort(t)),
		fmt.Sprintf("CODESWARM_EMBEDDED_UI_PORT=%d", freePort(t)),
		"CODESWARM_TEMPORAL_ADDRESS=", "TEMPORAL_ADDRESS=",
		"CODESWARM_LLM_BASE_URL=" + model.URL(), "CODESWARM_LLM_API_KEY=" + testAPIKey,
		"CODESWARM_WORKSPACE_ROOT=" + filepath.Join(state, "ws"),
	}
	args := []string{"run", "--repo", repo, "--task", scripted.DemoTask, "--id", "crash-demo", "--json"}

	first, _, firstErr := cliProcess(t, env, args...)
	waitFor(t, 60*time.Second, func() bool { return model.Count("agent") >= 6 })
	before := model.Requests()
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	inFlight := inFlightAt(before)

	second, out, secondErr := cliProcess(t, env, args...)
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
	resent := resentAfter(before, model.Requests(), nil)
	t.Logf("requests before kill %d (in flight %d), re-sent after restart %d", len(before), inFlight, resent)
	if resent > inFlight {
		t.Errorf("re-sent %d completed model calls; only %d were in flight at the kill", resent, inFlight)
	}
}

// inFlightAt counts requests not yet answered in a snapshot taken just
// before the kill (the scripted server records a request on arrival and its
// status when it answers).
func inFlightAt(reqs []scripted.Request) int {
	n := 0
	for _, r := range reqs {
		if r.Status == 0 {
			n++
		}
	}
	return n
}

// resentAfter counts model calls for a (kind, agent, turn) that had already
// been answered successfully before the kill; answers to requests in lost
// (in flight at an earlier kill, so never received) do not count.
func resentAfter(before, all []scripted.Request, lost map[int]bool) int {
	paid := map[string]bool{}
	for j, r := range before {
		if r.Status == 200 && !lost[j] {
			paid[requestKey(r)] = true
		}
	}
	n := 0
	for _, r := range all[len(before):] {
		if paid[requestKey(r)] {
			n++
		}
	}
	return n
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
