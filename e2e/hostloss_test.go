package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"codeswarm/activities"
	"codeswarm/control"
	"codeswarm/devserver"
	"codeswarm/internal/cli"
	"codeswarm/llm/scripted"
	"codeswarm/workflows"
)

// Host-loss bounds of these tests. Workers count a host lost after
// hostLostAfter without a poll (the embedded server ends idle polls every
// 10 s); the watch that notices may itself have died with the host and
// comes back after the 20 s heartbeat timeout.
const (
	hostLostAfter = 15 * time.Second
	hostLossBound = 45 * time.Second
	slowBashSleep = 20 // seconds the interrupted bash call sleeps
)

// hostRig is one server, one scripted model and worker processes for two
// hosts, hosta (the run's home) and hostb.
type hostRig struct {
	t      *testing.T
	client client.Client
	model  *scripted.Server
	marker string // in the bash command the kill interrupts
	bashAt string // the agent Match whose bash it is
	mathx  string // the agent Match of the subtask merged before the kill
}

func newHostRig(t *testing.T) *hostRig {
	t.Helper()
	if testing.Short() {
		t.Skip("kills worker processes")
	}
	script, bashAgent := slowBashScript()
	srv, model, c := startHostStack(t, script)
	setCLIEnv(t, srv.FrontendAddress(), testQueue(t), model.URL(), t.TempDir())
	t.Setenv("CODESWARM_WORKSPACE_HOST_LOST_AFTER", hostLostAfter.String())
	r := &hostRig{t: t, client: c, model: model, marker: hostMarker, bashAt: bashAgent}
	for _, a := range script.Agents {
		if strings.Contains(a.Match, "mathx-docs") {
			r.mathx = a.Match
		}
	}
	return r
}

// startHostStack is startStack with the CodeswarmHost search attribute
// registered, as the CLI's embedded server and a prepared cluster have it.
func startHostStack(t *testing.T, script scripted.Script) (*devserver.Server, *scripted.Server, client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := devserver.Start(ctx, devserver.Options{DBPath: filepath.Join(t.TempDir(), "temporal.db"), UIPort: -1, Logger: zap.NewNop(),
		SearchAttributes: map[string]enumspb.IndexedValueType{control.SAHost: enumspb.INDEXED_VALUE_TYPE_KEYWORD}})
	if err != nil {
		t.Fatalf("start temporal: %v", err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	model, err := scripted.Start(script, scripted.WithAPIKey(testAPIKey))
	if err != nil {
		t.Fatalf("start scripted model: %v", err)
	}
	t.Cleanup(model.Close)
	c, err := client.Dial(client.Options{HostPort: srv.FrontendAddress(), Logger: nopLogger{}})
	if err != nil {
		t.Fatalf("dial %s: %v", srv.FrontendAddress(), err)
	}
	t.Cleanup(c.Close)
	return srv, model, c
}

// runsOnHost lists the runs whose CodeswarmHost search attribute is host.
func (r *hostRig) runsOnHost(host string) []string {
	r.t.Helper()
	resp, err := r.client.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
		Query: fmt.Sprintf("%s = '%s'", control.SAHost, host)})
	if err != nil {
		r.t.Fatalf("list runs on %s: %v", host, err)
	}
	var ids []string
	for _, e := range resp.GetExecutions() {
		ids = append(ids, e.GetExecution().GetWorkflowId())
	}
	return ids
}

const hostMarker = "host-bash-log.txt"

// slowBashScript is the demo whose rename-greet agent's bash sleeps long
// enough to be killed mid-command; mathx-docs, in parallel, is merged first.
func slowBashScript() (scripted.Script, string) {
	s := slowDemo(crashLatency)
	args, _ := json.Marshal(map[string]string{"command": "sleep " + strconv.Itoa(slowBashSleep) + "; echo once >> " + hostMarker + "; go test ./greet/"})
	for i, a := range s.Agents {
		if !strings.Contains(a.Match, "rename-greet") {
			continue
		}
		for j, reply := range a.Turns {
			if len(reply.ToolCalls) == 1 && reply.ToolCalls[0].Name == "bash" {
				s.Agents[i].Turns[j].ToolCalls = []scripted.ToolCall{{Name: "bash", Arguments: string(args)}}
				return s, a.Match
			}
		}
	}
	return s, ""
}

// host starts a worker process for host name with its own workspace root.
func (r *hostRig) host(name, root string) *workerProc {
	return startWorkerProcess(r.t, "CODESWARM_WORKSPACE_HOST="+name, "CODESWARM_WORKSPACE_ROOT="+root)
}

// progress queries the run; errors (no worker has the run yet) are empty.
func (r *hostRig) progress(id string) control.Progress {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, err := r.client.QueryWorkflow(ctx, id, "", control.ProgressQueryName, 0)
	var p control.Progress
	if err == nil {
		_ = v.Get(&p)
	}
	return p
}

func merged(p control.Progress, n int) bool {
	count := 0
	for _, e := range p.Events {
		if e.Kind == "merged" {
			count++
		}
	}
	return count >= n
}

// killMidBash waits until mathx-docs is merged and hosta's bash sleeps,
// then SIGKILLs hosta and returns when.
func (r *hostRig) killMidBash(id string, a *workerProc) time.Time {
	r.t.Helper()
	waitFor(r.t, 2*time.Minute, func() bool {
		return merged(r.progress(id), 1) && findBash(a.cmd.Process.Pid, r.marker) != 0
	})
	pgid := findBash(a.cmd.Process.Pid, r.marker)
	at := time.Now()
	a.kill(r.t)
	waitFor(r.t, 2*time.Second, func() bool { return !groupAlive(pgid) })
	return at
}

// awaitState waits for the run's state and reports how long it took.
func (r *hostRig) awaitState(id, state string, since time.Time, bound time.Duration) (control.Progress, time.Duration) {
	r.t.Helper()
	var p control.Progress
	deadline := since.Add(bound)
	for {
		p = r.progress(id)
		if p.State == state {
			return p, time.Since(since)
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("state %q not reached within %s of the kill; state %q (%s)", state, bound, p.State, p.StateReason)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// cliOut runs the CLI in-process and returns its exit code and output.
func cliOut(args ...string) (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	code := cli.Execute(ctx, args, cli.IO{Out: &out, Err: &errb})
	return code, out.String() + errb.String()
}

func (r *hostRig) agentCalls(match string) int {
	n := 0
	for _, q := range r.model.Requests() {
		if q.Agent == match && q.Status == 200 {
			n++
		}
	}
	return n
}

// TestHostLostThenBack kills the run's host in the middle of a bash call: a
// second host's worker notices within the bound and the run says it waits
// for hosta; once hosta is back the run is running again and completes
// without loss (the merged subtask is not re-run).
func TestHostLostThenBack(t *testing.T) {
	r := newHostRig(t)
	repo, root := t.TempDir(), t.TempDir() // one workspace root: a shared volume
	if err := scripted.WriteDemoRepo(repo); err != nil {
		t.Fatal(err)
	}
	a := r.host("hosta", root)
	startDetached(t, repo, "host-back")
	waitFor(t, time.Minute, func() bool { return r.progress("host-back").Host == "hosta" })
	b := r.host("hostb", root)
	killed := r.killMidBash("host-back", a)
	mathxBefore := r.agentCalls(r.mathx)

	p, took := r.awaitState("host-back", control.RunStateWaitingHost, killed, hostLossBound)
	t.Logf("waiting_for_host %s after the kill: %s", took.Round(100*time.Millisecond), p.StateReason)
	mustContain(t, "state reason", p.StateReason, "waiting for host hosta since ")
	code, out := cliOut("status", "host-back")
	if code != 0 {
		t.Fatalf("status: exit %d\n%s", code, out)
	}
	mustContain(t, "status", out, "state waiting_for_host: waiting for host hosta")
	code, out = cliOut("workers")
	if code != 0 {
		t.Fatalf("workers: exit %d\n%s", code, out)
	}
	mustContain(t, "workers", out, "hostb")
	if !strings.Contains(out, "hosta") || !hasLine(out, "hosta", "workspace", "lost") {
		t.Errorf("workers does not list hosta's workspace queue as lost:\n%s", out)
	}

	back := time.Now()
	a = r.host("hosta", root)
	_, took = r.awaitState("host-back", control.RunStateRunning, back, hostLossBound)
	t.Logf("running again %s after hosta restarted", took.Round(100*time.Millisecond))
	res := awaitResult(t, r.client, "host-back", func() string { return tail(a.logs.String(), 2000) + tail(b.logs.String(), 2000) })
	if !res.Success || len(res.SubtaskResults) != demoSubtasks {
		t.Fatalf("run did not succeed after the host came back:\n%s", fmtResult(res))
	}
	for _, s := range res.SubtaskResults {
		if s.Merge != activities.MergeMerged {
			t.Errorf("%s: merge %s", s.ID, s.Merge)
		}
	}
	if got := git(t, repo, "show", res.Branch+":"+hostMarker); got != "once" {
		t.Errorf("%s = %q, want one line: the killed command never finished, its re-run did", hostMarker, got)
	}
	if n := r.agentCalls(r.mathx); n != mathxBefore {
		t.Errorf("mathx-docs (merged before the kill) made %d model calls after it", n-mathxBefore)
	}
	code, out = cliOut("list")
	if code != 0 || !hasLine(out, "host-back", "hosta") {
		t.Errorf("list does not show host-back on hosta (exit %d):\n%s", code, out)
	}
}

// TestHostLostThenMoved kills the run's host and moves the run to a second
// host with its own workspace root (the repository is on a path both
// reach): the interrupted subtask restarts there, the merged one is not
// re-run, and the run completes on hostb.
func TestHostLostThenMoved(t *testing.T) {
	r := newHostRig(t)
	repo := t.TempDir()
	if err := scripted.WriteDemoRepo(repo); err != nil {
		t.Fatal(err)
	}
	a := r.host("hosta", t.TempDir())
	startDetached(t, repo, "host-move")
	waitFor(t, time.Minute, func() bool { return r.progress("host-move").Host == "hosta" })
	waitFor(t, 10*time.Second, func() bool { return slices.Equal(r.runsOnHost("hosta"), []string{"host-move"}) })
	killed := r.killMidBash("host-move", a)
	mathxBefore, bashBefore := r.agentCalls(r.mathx), r.agentCalls(r.bashAt)
	// hostb starts after the kill: until transcripts are reachable from
	// every host, a second live host would answer hosta's model calls
	// from its own empty transcript store.
	b := r.host("hostb", t.TempDir())

	p, took := r.awaitState("host-move", control.RunStateWaitingHost, killed, hostLossBound)
	t.Logf("waiting_for_host %s after the kill: %s", took.Round(100*time.Millisecond), p.StateReason)

	if code, out := cliOut("move", "host-move", "--to", "hostc"); code == 0 || !strings.Contains(out, "host hostc is not polling") {
		t.Errorf("move to a host nobody runs: exit %d\n%s", code, out)
	}
	code, out := cliOut("move", "host-move", "--to", "hostb")
	if code != 0 {
		t.Fatalf("move: exit %d\n%s", code, out)
	}
	mustContain(t, "move", out, "moved from host hosta to hostb; restarting there: ")
	waitFor(t, 10*time.Second, func() bool { return slices.Equal(r.runsOnHost("hostb"), []string{"host-move"}) })
	if p := r.progress("host-move"); p.State != control.RunStateRunning || p.Host != "hostb" {
		t.Errorf("after the move: state %q host %q", p.State, p.Host)
	}

	res := awaitResult(t, r.client, "host-move", func() string { return tail(b.logs.String(), 3000) })
	if !res.Success || len(res.SubtaskResults) != demoSubtasks {
		t.Fatalf("moved run did not succeed:\n%s", fmtResult(res))
	}
	for _, s := range res.SubtaskResults {
		if s.Merge != activities.MergeMerged {
			t.Errorf("%s: merge %s", s.ID, s.Merge)
		}
	}
	mustContain(t, "main.go", git(t, repo, "show", res.Branch+":main.go"), "mathx.Mean")
	if n := r.agentCalls(r.mathx); n != mathxBefore {
		t.Errorf("mathx-docs (merged before the kill) made %d model calls after it", n-mathxBefore)
	}
	if n := r.agentCalls(r.bashAt); n <= bashBefore {
		t.Errorf("rename-greet made no model call after the move: it was not restarted")
	}
	if got := git(t, repo, "show", res.Branch+":"+hostMarker); got != "once" {
		t.Errorf("%s = %q, want one line, from hostb", hostMarker, got)
	}
	merges := git(t, repo, "rev-list", "--merges", "--count", res.BaseCommit+".."+res.Branch)
	if merges != "3" {
		t.Errorf("merge commits on the integration branch: %s, want 3 (none redone)", merges)
	}
	if code, out := cliOut("move", "host-move", "--to", "hosta"); code == 0 || !strings.Contains(out, "host-move") {
		t.Errorf("move of a finished run: exit %d\n%s", code, out)
	}
}

// TestHostLostThenAutoMoved is TestHostLostThenMoved with
// workspace.auto_move_after set and no move command: once hosta has been
// lost that long and hostb is the only other live host, the run moves there
// by itself and completes without redoing merged work.
func TestHostLostThenAutoMoved(t *testing.T) {
	r := newHostRig(t)
	t.Setenv("CODESWARM_WORKSPACE_AUTO_MOVE_AFTER", "5s")
	repo := t.TempDir()
	if err := scripted.WriteDemoRepo(repo); err != nil {
		t.Fatal(err)
	}
	a := r.host("hosta", t.TempDir())
	startDetached(t, repo, "host-auto")
	waitFor(t, time.Minute, func() bool { return r.progress("host-auto").Host == "hosta" })
	killed := r.killMidBash("host-auto", a)
	mathxBefore := r.agentCalls(r.mathx)
	b := r.host("hostb", t.TempDir())

	waitFor(t, hostLossBound+30*time.Second, func() bool { return r.progress("host-auto").Host == "hostb" })
	t.Logf("moved to hostb by itself %s after the kill", time.Since(killed).Round(100*time.Millisecond))
	res := awaitResult(t, r.client, "host-auto", func() string { return tail(b.logs.String(), 3000) })
	if !res.Success {
		t.Fatalf("run did not succeed after the automatic move:\n%s", fmtResult(res))
	}
	merges := git(t, repo, "rev-list", "--merges", "--count", res.BaseCommit+".."+res.Branch)
	if merges != "3" {
		t.Errorf("merge commits on the integration branch: %s, want 3 (none redone)", merges)
	}
	if n := r.agentCalls(r.mathx); n != mathxBefore {
		t.Errorf("mathx-docs (merged before the kill) made %d model calls after it", n-mathxBefore)
	}
}

// hasLine reports whether one line of out contains every word.
func hasLine(out string, words ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		all := true
		for _, w := range words {
			all = all && strings.Contains(line, w)
		}
		if all {
			return true
		}
	}
	return false
}

// TestHostMovedWhileAlive moves a run away from a host that is still up,
// while a sub-agent there sleeps in bash with its edit and new test file
// not yet committed: the move stops it, commits that work on its branch on
// the old host, and restarts it on the new host from there, so nothing it
// had written is lost; the run completes on the new host.
func TestHostMovedWhileAlive(t *testing.T) {
	r := newHostRig(t)
	repo := t.TempDir()
	if err := scripted.WriteDemoRepo(repo); err != nil {
		t.Fatal(err)
	}
	const id = "host-live-move"
	a := r.host("hosta", t.TempDir())
	startDetached(t, repo, id)
	waitFor(t, time.Minute, func() bool { return r.progress(id).Host == "hosta" })
	b := r.host("hostb", t.TempDir())
	waitFor(t, 2*time.Minute, func() bool { return findBash(a.cmd.Process.Pid, r.marker) != 0 })

	code, out := cliOut("move", id, "--to", "hostb")
	if code != 0 {
		t.Fatalf("move: exit %d\n%s", code, out)
	}
	mustContain(t, "move", out, "moved from host hosta to hostb; restarting there: 01-rename-greet")
	res := awaitResult(t, r.client, id, func() string { return tail(a.logs.String(), 2000) + tail(b.logs.String(), 2000) })
	if !res.Success || len(res.SubtaskResults) != demoSubtasks {
		t.Fatalf("moved run did not succeed:\n%s", fmtResult(res))
	}
	old := workflowsSubtaskBranch(id, "01-rename-greet")
	subject := git(t, repo, "log", "-1", "--format=%s", old)
	mustContain(t, "the old branch's head", subject, "work in progress, saved when the run moved to host hostb")
	saved := git(t, repo, "show", "--name-only", "--format=", old)
	for _, f := range []string{"greet/greet.go", "greet/greet_test.go"} {
		mustContain(t, "files saved on "+old, saved, f)
	}
	if p := r.progress(id); !slices.ContainsFunc(p.Events, func(e control.Event) bool {
		return e.Kind == "move_saved" && e.Subtask == "01-rename-greet"
	}) {
		t.Errorf("no move_saved event for 01-rename-greet in %+v", p.Events)
	}
	for _, s := range res.SubtaskResults {
		if s.Merge != activities.MergeMerged {
			t.Errorf("%s: merge %s", s.ID, s.Merge)
		}
	}
}

func workflowsSubtaskBranch(runID, subtask string) string {
	return workflows.SubtaskBranch("codeswarm", runID, subtask, 1)
}
