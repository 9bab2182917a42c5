package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"codeswarm/activities"
	"codeswarm/devserver"
	"codeswarm/internal/cli"
	"codeswarm/internal/swarmworker"
	"codeswarm/llm/scripted"
	"codeswarm/workflows"
)

// Bounds of the crash tests. The run deadline is generous because every
// kill costs up to one activity heartbeat timeout (20 s) of recovery.
const (
	crashRunDeadline = 4 * time.Minute
	crashLatency     = 300 * time.Millisecond
	demoSubtasks     = 3
)

// crashRig is a Temporal server in the test process (on SQLite), a scripted
// model with latency, and a worker that runs as a child process so it can
// be SIGKILLed and replaced.
type crashRig struct {
	t      *testing.T
	server *devserver.Server
	client client.Client
	model  *scripted.Server
	queue  string
	root   string
	worker *workerProc
	runID  string
	kills  []killPoint
	// workerLogs are the stderr tails of the killed workers, for failures.
	workerLogs []string
}

// killPoint is what the model had seen when a worker was killed.
type killPoint struct {
	at time.Time
	// before is every request up to the kill, taken once the killed worker
	// was gone and the model had dropped its requests, before any held
	// answer was released: a request in it is either answered to a live
	// worker (status 200) or was never answered at all.
	before []scripted.Request
	// fresh is where the killed worker's requests start in before: older
	// ones were sent by an earlier worker.
	fresh   int
	pending []pendingActivity // activities pending in Temporal at the kill
}

func newCrashRig(t *testing.T, script scripted.Script) *crashRig {
	t.Helper()
	srv, model, c := startStack(t, filepath.Join(t.TempDir(), "temporal.db"), script)
	r := &crashRig{t: t, server: srv, client: c, model: model, queue: testQueue(t), root: t.TempDir()}
	setCLIEnv(t, srv.FrontendAddress(), r.queue, model.URL(), r.root)
	return r
}

// testQueue is a task queue of this test alone.
func testQueue(t *testing.T) string {
	return "e2e-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
}

// setCLIEnv points the in-process CLI and every child process (they inherit
// the environment) at a server, queue, model and workspace.
func setCLIEnv(t *testing.T, address, queue, modelURL, root string) {
	t.Setenv("CODESWARM_TEMPORAL_ADDRESS", address)
	t.Setenv("CODESWARM_TEMPORAL_TASK_QUEUE", queue)
	t.Setenv("CODESWARM_LLM_BASE_URL", modelURL)
	t.Setenv("CODESWARM_LLM_API_KEY", testAPIKey)
	t.Setenv("CODESWARM_LLM_MODEL", "scripted")
	t.Setenv("CODESWARM_WORKSPACE_ROOT", root)
	t.Setenv("CODESWARM_LOG_LEVEL", "info")
	t.Setenv("OPENAI_API_KEY", "")
	// Tests run the same task again and count the model's calls; the
	// result cache would answer the second run (TestResultCacheRerun
	// turns it on).
	t.Setenv("CODESWARM_CACHE_ENABLED", "false")
}

// workerProc is a standalone worker process (see runWorker in main_test.go).
type workerProc struct {
	cmd  *exec.Cmd
	logs *bytes.Buffer
}

// startWorkerProcess starts a worker configured by the environment plus env.
func startWorkerProcess(t *testing.T, env ...string) *workerProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), env...), workerEnv+"=1")
	logs := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start worker process: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return &workerProc{cmd: cmd, logs: logs}
}

// kill SIGKILLs the worker and waits for it; only then are its logs safe
// to read.
func (w *workerProc) kill(t *testing.T) string {
	t.Helper()
	if err := w.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill worker %d: %v", w.cmd.Process.Pid, err)
	}
	_ = w.cmd.Wait()
	return w.logs.String()
}

func (r *crashRig) startWorker() { r.worker = startWorkerProcess(r.t) }

// killWorker brings the run to rest around held model answers (see
// freezeModel), SIGKILLs the current worker, records what it had in flight,
// releases the answers once the dead worker's requests are dropped and
// starts a new worker. minHeld is how many model requests must be in
// flight at the kill.
func (r *crashRig) killWorker(minHeld int) {
	r.t.Helper()
	r.freeze(minHeld)
	r.killFrozen()
}

// freeze holds the model's answers and waits until the run is at rest
// around at least minHeld held requests of the current worker.
func (r *crashRig) freeze(minHeld int) {
	r.t.Helper()
	freezeModel(r.t, r.model, r.root, r.worker.cmd.Process.Pid, minHeld)
}

// killFrozen kills the worker of a frozen run at once (see killWorker).
func (r *crashRig) killFrozen() {
	r.t.Helper()
	k := killPoint{at: time.Now()}
	r.workerLogs = append(r.workerLogs, tail(r.worker.kill(r.t), 2000))
	// Described after the kill, so as not to delay it: with its only worker
	// dead the run stands still until the heartbeat timeout.
	k.pending = runPendingActivities(r.t, r.client, r.runID)
	k.before = thawAfterKill(r.t, r.model)
	if n := len(r.kills); n > 0 {
		k.fresh = len(r.kills[n-1].before)
	}
	r.kills = append(r.kills, k)
	r.startWorker()
}

// startRun starts the swarm with the real CLI, detached and without an
// in-process worker: only the worker processes run it.
func (r *crashRig) startRun(repo, id string) {
	r.t.Helper()
	r.runID = id
	startDetached(r.t, repo, id)
}

func startDetached(t *testing.T, repo, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	code := cli.Execute(ctx, []string{"run", "--repo", repo, "--task", scripted.DemoTask, "--id", id, "--no-worker", "--detach", "--json"}, cli.IO{Out: &out, Err: &errb})
	if code != 0 || strings.TrimSpace(out.String()) != id {
		t.Fatalf("run --detach: exit %d, stdout %q\n%s", code, out.String(), tail(errb.String(), 3000))
	}
}

// awaitResult waits for the run's result through the Temporal client.
func awaitResult(t *testing.T, c client.Client, id string, logs func() string) activities.SwarmResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), crashRunDeadline)
	defer cancel()
	res, err := activities.RunResult(ctx, c, id)
	if err != nil {
		t.Fatalf("result of %s: %v\nworker logs:\n%s", id, err, logs())
	}
	return res
}

func (r *crashRig) await(id string) activities.SwarmResult {
	r.t.Helper()
	return awaitResult(r.t, r.client, id, func() string { return strings.Join(r.workerLogs, "\n--- next worker ---\n") })
}

// reference is an uninterrupted run of the same script on a copy of the repo.
type reference struct {
	repo string
	wait func() activities.SwarmResult
}

// startReference runs the script without any kill, in a CLI process with its
// own in-process worker, its own model server and task queue. With address
// "" the process starts its own embedded server.
func startReference(t *testing.T, script scripted.Script, address string) reference {
	t.Helper()
	model, err := scripted.Start(script, scripted.WithAPIKey(testAPIKey))
	if err != nil {
		t.Fatalf("start reference model: %v", err)
	}
	t.Cleanup(model.Close)
	repo, state := t.TempDir(), t.TempDir()
	if err := scripted.WriteDemoRepo(repo); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"CODESWARM_TEMPORAL_ADDRESS=" + address, "TEMPORAL_ADDRESS=",
		"CODESWARM_TEMPORAL_TASK_QUEUE=" + testQueue(t) + "-ref",
		"CODESWARM_LLM_BASE_URL=" + model.URL(), "CODESWARM_LLM_API_KEY=" + testAPIKey,
		"CODESWARM_LLM_MODEL=scripted", "CODESWARM_LOG_LEVEL=warn",
		"CODESWARM_WORKSPACE_ROOT=" + filepath.Join(state, "ws"),
		"CODESWARM_EMBEDDED_DB_PATH=" + filepath.Join(state, "temporal.db"),
		fmt.Sprintf("CODESWARM_EMBEDDED_PORT=%d", freePort(t)),
		fmt.Sprintf("CODESWARM_EMBEDDED_UI_PORT=%d", freePort(t)),
	}
	cmd, out, errb := cliProcess(t, env, "run", "--repo", repo, "--task", scripted.DemoTask, "--id", "reference", "--json")
	wait := func() activities.SwarmResult {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("reference run: %v\n%s\n%s", err, out, tail(errb.String(), 4000))
			}
		case <-time.After(crashRunDeadline):
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("reference run did not end within %s\n%s", crashRunDeadline, tail(errb.String(), 4000))
		}
		var res activities.SwarmResult
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			t.Fatalf("reference result: %v\n%s", err, out)
		}
		if !res.Success {
			t.Fatalf("reference run failed:\n%s", fmtResult(res))
		}
		return res
	}
	return reference{repo: repo, wait: wait}
}

// checkLikeReference asserts a run that survived crashes ended exactly as the
// uninterrupted one: success, same integration tree, one merge commit per
// subtask and no edit applied twice.
func checkLikeReference(t *testing.T, repo string, res activities.SwarmResult, ref reference) {
	t.Helper()
	if !res.Success || len(res.SubtaskResults) != demoSubtasks {
		t.Fatalf("run did not succeed:\n%s", fmtResult(res))
	}
	for _, s := range res.SubtaskResults {
		if s.Merge != activities.MergeMerged {
			t.Errorf("subtask %s: merge %s, want merged", s.ID, s.Merge)
		}
	}
	refRes := ref.wait()
	got := git(t, repo, "rev-parse", res.Branch+"^{tree}")
	want := git(t, ref.repo, "rev-parse", refRes.Branch+"^{tree}")
	if got != want {
		t.Errorf("integration tree %s differs from the uninterrupted run's %s:\n%s", got, want,
			diffTrees(t, repo, res.Branch, ref.repo, refRes.Branch))
	}
	merges := git(t, repo, "rev-list", "--merges", "--count", res.BaseCommit+".."+res.Branch)
	if merges != strconv.Itoa(demoSubtasks) {
		t.Errorf("merge commits on %s: %s, want %d (one per subtask)", res.Branch, merges, demoSubtasks)
	}
	// Edits applied twice would duplicate these; the tree check says the
	// same, these say which edit.
	for _, c := range []struct{ path, once string }{
		{"greet/greet.go", "func Greet("},
		{"greet/greet.go", "// Package greet"},
		{"mathx/mathx.go", "// Package mathx"},
		{"mathx/mean.go", "func Mean("},
		{"main.go", "mathx.Mean(nums)"},
	} {
		body := git(t, repo, "show", res.Branch+":"+c.path)
		if n := strings.Count(body, c.once); n != 1 {
			t.Errorf("%s has %q %d times, want once:\n%s", c.path, c.once, n, body)
		}
	}
}

// diffTrees shows which files differ, for a failing tree comparison.
func diffTrees(t *testing.T, repoA, branchA, repoB, branchB string) string {
	t.Helper()
	a := git(t, repoA, "ls-tree", "-r", branchA)
	b := git(t, repoB, "ls-tree", "-r", branchB)
	return "crash run:\n" + a + "\nreference:\n" + b
}

// killStats is the accounting of one kill.
type killStats struct {
	inFlight int           // the killed worker's model requests never answered
	retried  int           // of those, sent again after the kill
	resent   int           // requests after the kill for calls answered before it
	recovery time.Duration // kill to the re-send of the last interrupted call; 0 if none
}

// statsPerKill accounts each kill over every request after it. Because no
// answer is released before the killed worker's requests are dropped (see
// thawAfterKill), a request answered before the kill was received by a live
// worker: sending it again would pay twice.
func statsPerKill(kills []killPoint, all []scripted.Request) []killStats {
	out := make([]killStats, len(kills))
	for i, k := range kills {
		out[i] = accountKill(k.before, k.fresh, all)
		out[i].recovery = recoveryAfter(k, all)
	}
	return out
}

// accountKill compares the requests after a kill with before, the requests
// up to it (fresh: where the killed client's start).
func accountKill(before []scripted.Request, fresh int, all []scripted.Request) killStats {
	answered, lost := map[string]bool{}, map[string]bool{}
	for j, q := range before {
		switch {
		case q.Status == 200:
			answered[requestKey(q)] = true
		case q.Status == 0 && q.Kind != "" && j >= fresh:
			lost[requestKey(q)] = true
		}
	}
	s := killStats{inFlight: len(lost)}
	again := map[string]bool{}
	for _, q := range all[len(before):] {
		if answered[requestKey(q)] {
			s.resent++
		}
		again[requestKey(q)] = true
	}
	for key := range lost {
		if again[key] {
			s.retried++
		}
	}
	return s
}

func requestKey(r scripted.Request) string { return fmt.Sprintf("%s|%s|%d", r.Kind, r.Agent, r.Turn) }

// recoveryAfter is how long after the kill the last of the interrupted model
// calls was sent again: the time Temporal took to notice the dead worker.
func recoveryAfter(k killPoint, all []scripted.Request) time.Duration {
	var worst time.Duration
	for _, r := range k.before[k.fresh:] {
		if r.Status != 0 || r.Kind == "" {
			continue
		}
		for _, again := range all[len(k.before):] {
			if requestKey(again) == requestKey(r) {
				worst = max(worst, again.Time.Sub(k.at))
				break
			}
		}
	}
	return worst
}

// reportKills logs every kill and checks what RELIABILITY.md claims of it:
// no model call answered before the kill is sent again, and every call in
// flight at the kill (never answered) is sent again exactly because it was
// lost.
func (r *crashRig) reportKills(elapsed time.Duration) {
	r.t.Helper()
	all := r.model.Requests()
	totalResent, totalInFlight := 0, 0
	for i, s := range statsPerKill(r.kills, all) {
		r.t.Logf("kill %d at +%s: in flight %d, re-sent of those %d, answered calls re-sent %d, recovery %s, pending activities %v",
			i+1, r.kills[i].at.Sub(r.kills[0].at).Round(time.Millisecond), s.inFlight, s.retried, s.resent, s.recovery.Round(time.Millisecond), r.kills[i].pending)
		checkKillStats(r.t, fmt.Sprintf("kill %d", i+1), s)
		totalResent += s.resent
		totalInFlight += s.inFlight
	}
	r.t.Logf("kills survived %d, model requests %d (distinct %d), in flight at kills %d, answered calls re-sent %d, run time %s",
		len(r.kills), len(all), distinctKeys(all), totalInFlight, totalResent, elapsed.Round(time.Millisecond))
}

// checkKillStats asserts the exact re-send bound of one kill.
func checkKillStats(t *testing.T, what string, s killStats) {
	t.Helper()
	if s.resent != 0 {
		t.Errorf("%s: %d model calls answered before the kill were sent again", what, s.resent)
	}
	if s.retried != s.inFlight {
		t.Errorf("%s: %d of the %d calls in flight were sent again, want all", what, s.retried, s.inFlight)
	}
}

func distinctKeys(reqs []scripted.Request) int {
	keys := map[string]bool{}
	for _, q := range reqs {
		keys[requestKey(q)] = true
	}
	return len(keys)
}

// newCrashRun prepares a rig, a repo and a concurrent reference run.
func newCrashRun(t *testing.T, script scripted.Script) (*crashRig, string, reference) {
	t.Helper()
	if testing.Short() {
		t.Skip("kills worker processes")
	}
	r := newCrashRig(t, script)
	ref := startReference(t, script, r.server.FrontendAddress())
	repo := t.TempDir()
	if err := scripted.WriteDemoRepo(repo); err != nil {
		t.Fatal(err)
	}
	return r, repo, ref
}

// TestWorkerCrashDuringLLMCall kills the worker while a model call is in
// flight; a new worker finishes the run as if nothing happened.
func TestWorkerCrashDuringLLMCall(t *testing.T) {
	r, repo, ref := newCrashRun(t, slowDemo(crashLatency))
	r.startWorker()
	start := time.Now()
	r.startRun(repo, "crash-llm")
	waitFor(t, 2*time.Minute, func() bool { return r.model.Count(scripted.KindAgent) >= 3 })
	r.killWorker(1)
	res := r.await("crash-llm")
	r.reportKills(time.Since(start))
	if statsPerKill(r.kills, r.model.Requests())[0].inFlight == 0 {
		t.Error("no model call was in flight at the kill")
	}
	checkLikeReference(t, repo, res, ref)
	// At 300 ms an answer, the sub-agents call the model in local
	// activities: the workflow task that ran one ended early, failed by the
	// restarted worker, or timed out after the sub-agents' 2 s task timeout
	// when the new worker took longer than that to start (a loaded CI
	// machine under -race): both are the fast path, not the 20 s heartbeat.
	failed, timedOut := restartFailures(t, r.client, res)
	t.Logf("sub-agent workflow tasks failed by the restarted worker %d, timed out %d", failed, timedOut)
	if failed+timedOut == 0 {
		t.Error("no sub-agent's workflow task running a local call was ended by the restarted worker or its timeout")
	}
}

// restartFailures counts the workflow tasks a restarted worker failed for
// its killed predecessor in the sub-agents of a run, and those that timed
// out. (A failed activity attempt leaves no event: only its retry's start
// is recorded.)
func restartFailures(t *testing.T, c client.Client, res activities.SwarmResult) (failed, timedOut int) {
	t.Helper()
	for _, s := range res.SubtaskResults {
		it := c.GetWorkflowHistory(context.Background(), workflows.ChildWorkflowID(res.RunID, s.ID, 1), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				t.Fatalf("history of %s's sub-agent %s: %v", res.RunID, s.ID, err)
			}
			if a := ev.GetWorkflowTaskFailedEventAttributes(); a != nil && a.GetFailure().GetApplicationFailureInfo().GetType() == swarmworker.ErrTypeWorkerRestarted {
				failed++
			}
			if ev.GetWorkflowTaskTimedOutEventAttributes() != nil {
				timedOut++
			}
		}
	}
	return failed, timedOut
}

// bashMarker is in the command of the bash call the bash test interrupts.
const bashMarker = "bash-log.txt"

// bashScript is the demo whose rename-greet agent runs a slow bash command
// that appends a line once it is done sleeping. It also returns the
// agent's Match and the turn whose answer asks for that command.
func bashScript() (scripted.Script, string, int) {
	s := slowDemo(crashLatency)
	args, _ := json.Marshal(map[string]string{"command": "sleep 5; echo once >> " + bashMarker + "; go test ./greet/"})
	match, turn := "", -1
	for i, a := range s.Agents {
		if !strings.Contains(a.Match, "rename-greet") {
			continue
		}
		for j, reply := range a.Turns {
			if len(reply.ToolCalls) == 1 && reply.ToolCalls[0].Name == "bash" {
				s.Agents[i].Turns[j].ToolCalls = []scripted.ToolCall{{Name: "bash", Arguments: string(args)}}
				match, turn = a.Match, j
			}
		}
	}
	return s, match, turn
}

// answered reports whether the model has answered turn of the agent match.
func answered(model *scripted.Server, match string, turn int) bool {
	for _, q := range model.Requests() {
		if q.Agent == match && q.Turn == turn && q.Status == 200 {
			return true
		}
	}
	return false
}

// TestWorkerCrashDuringBash kills the worker while a bash command sleeps:
// the interrupted command's process group dies with the worker, and the
// re-run after recovery leaves exactly one line.
func TestWorkerCrashDuringBash(t *testing.T) {
	script, match, turn := bashScript()
	if turn < 0 {
		t.Fatal("the demo script has no bash call to slow down")
	}
	r, repo, ref := newCrashRun(t, script)
	r.startWorker()
	start := time.Now()
	r.startRun(repo, "crash-bash")
	// Freeze the model once the bash call has been asked for: the other
	// agents stop at a known point while the bash starts.
	waitFor(t, 2*time.Minute, func() bool { return answered(r.model, match, turn) })
	r.freeze(0)
	var pgid int
	waitFor(t, 2*time.Minute, func() bool {
		pgid = findBash(r.worker.cmd.Process.Pid, bashMarker)
		return pgid != 0
	})
	t.Cleanup(func() {
		if groupAlive(pgid) { // only a survivor of a failed check
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		}
	})
	r.killFrozen()
	killed := r.kills[0].at
	// The command had not finished: the kill hit it mid-sleep.
	if files, _ := filepath.Glob(filepath.Join(r.root, "crash-bash", "*", bashMarker)); len(files) > 0 {
		t.Fatalf("the bash command had already written %v at the kill: the kill did not interrupt it", files)
	}
	waitFor(t, 2*time.Second, func() bool { return !groupAlive(pgid) })
	// Recovery of a bash call: the heartbeat timeout, then the re-run.
	waitFor(t, 2*time.Minute, func() bool { return findBash(r.worker.cmd.Process.Pid, bashMarker) != 0 })
	t.Logf("bash re-run started %s after the kill", time.Since(killed).Round(time.Millisecond))
	res := r.await("crash-bash")
	r.reportKills(time.Since(start))
	checkLikeReference(t, repo, res, ref)
	if got := git(t, repo, "show", res.Branch+":"+bashMarker); got != "once" {
		t.Errorf("%s = %q, want exactly one line \"once\"", bashMarker, got)
	}
}

// findBash returns the pid of a live bash (or the bwrap running it) started
// by parent whose command line contains marker, or 0. The reference run runs the same command, so
// the parent matters.
func findBash(parent int, marker string) int {
	for _, p := range processes() {
		// Sandboxed, the worker's child is bwrap (its process group leader),
		// which runs bash -c in its own namespaces.
		argv0, _, _ := strings.Cut(p.cmdline, "\x00")
		starter := argv0 == "bash" || strings.HasSuffix(argv0, "/bwrap")
		if p.ppid == parent && p.state != "Z" && starter && strings.Contains(p.cmdline, marker) {
			return p.pid
		}
	}
	return 0
}

type proc struct {
	pid, ppid, pgrp int
	state, cmdline  string
}

// processes lists the live processes from /proc.
func processes() []proc {
	ents, _ := os.ReadDir("/proc")
	var out []proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The command name in parentheses may hold spaces; fields follow it.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 3 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		pgrp, _ := strconv.Atoi(f[2])
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		out = append(out, proc{pid: pid, ppid: ppid, pgrp: pgrp, state: f[0], cmdline: string(cmdline)})
	}
	return out
}

// groupMembers lists the live (not zombie) processes of a process group.
func groupMembers(pgid int) []string {
	var out []string
	for _, p := range processes() {
		if p.pgrp == pgid && p.state != "Z" {
			out = append(out, fmt.Sprintf("%d %q", p.pid, strings.ReplaceAll(p.cmdline, "\x00", " ")))
		}
	}
	return out
}

func groupAlive(pgid int) bool {
	if errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH) {
		return false
	}
	return len(groupMembers(pgid)) > 0
}

// TestWorkerCrashChaos kills the worker 3 times at random points (model
// call, tool, git, merge). Each kill waits until the new worker has had a
// random 1–2 model answers, and for a random half of the kills until a
// model call is in flight, so no kill hits an idle worker that is only
// waiting for Temporal to time out the previous one's activities; the
// test fails unless all 3 kills happened before the run ended.
func TestWorkerCrashChaos(t *testing.T) {
	const kills = 3
	r, repo, ref := newCrashRun(t, slowDemo(crashLatency))
	seed := uint64(time.Now().UnixNano())
	t.Logf("chaos seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, seed))
	r.startWorker()
	start := time.Now()
	r.startRun(repo, "crash-chaos")
	for i := range kills {
		seen := len(r.model.Requests())
		want := 1 + rnd.IntN(2)
		waitFor(t, 2*time.Minute, func() bool {
			return answeredSince(r.model.Requests(), seen) >= want || runEnded(t, r.client, "crash-chaos")
		})
		if runEnded(t, r.client, "crash-chaos") {
			t.Fatalf("the run ended after %d of %d kills", i, kills)
		}
		// Half the kills strike with a model call in flight, the others
		// wherever the run is when no call is (tool, git, merge).
		r.killWorker(rnd.IntN(2))
	}
	res := r.await("crash-chaos")
	r.reportKills(time.Since(start))
	checkLikeReference(t, repo, res, ref)
}

// answeredSince counts the requests after index from that were answered.
func answeredSince(reqs []scripted.Request, from int) int {
	n := 0
	for _, q := range reqs[from:] {
		if q.Status == 200 {
			n++
		}
	}
	return n
}

func runEnded(t *testing.T, c client.Client, id string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		t.Fatalf("describe %s: %v", id, err)
	}
	return d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
}
