package cluster

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"codeswarm/activities"
	"codeswarm/control"
	"codeswarm/llm/scripted"
)

const (
	// hostLostAfter is the hosts' workspace.host_lost_after: above the
	// server's 10 s idle-poll interval, well below the 90 s default.
	hostLostAfter = 15 * time.Second
	// hostLossBound is how soon after a kill the run must say it waits:
	// host_lost_after, one idle poll, one check interval and slack for a
	// loaded machine.
	hostLossBound = 45 * time.Second
	// slowSubtask answers its last turn slowly: it is still working when
	// the others are merged, so a kill then interrupts it alone.
	slowSubtask = "gamma"
)

// TestClusterHostKilled shows both outcomes of a lost host on the real
// cluster. A: the home host of a running run is lost for good mid-run (its
// worker SIGKILLed, its network namespace deleted); the run says within the
// bound that it waits for that host, `workers` lists the host as lost, and
// when the host comes back with the same workspace.root the run is running
// again and every run completes with no subtask started over, still only on
// its own host. B: another run's host is killed after two of its three
// subtasks are merged, and `codeswarm move` from the starter process re-homes the run
// on a live host: the interrupted subtask restarts there in that host's
// workspace.root, the merged ones are not redone, and the run completes.
func TestClusterHostKilled(t *testing.T) {
	began := time.Now()
	script := clusterScript()
	for i := range script.Agents {
		// Slow answers keep the sub-agents busy when a host dies.
		delay := 1500 * time.Millisecond
		if script.Agents[i].Match == marker(slowSubtask) {
			delay = 10 * time.Second
		}
		script.Agents[i].Turns[1].Delay = scripted.Duration(delay)
	}
	c := newCluster(t, script)
	for i := 1; i <= nHosts; i++ {
		c.addHost(i)
	}
	for _, h := range c.hosts {
		h.start()
	}
	c.waitHosts(nHosts)
	c.killAndRestart()
	if !t.Failed() {
		c.killAndMove()
	}
	t.Logf("whole scenario (both outcomes) %s", time.Since(began).Round(time.Second))
	if t.Failed() {
		c.dumpLogs()
	}
}

// killAndRestart is outcome A: kill the home of one of two runs, see the
// run wait for it, bring it back.
func (c *cluster) killAndRestart() {
	t := c.t
	ids, repos := c.startRuns(2)
	victim := c.waitToolWork(ids[0])
	killed := time.Now()
	victim.kill()
	t.Logf("A: killed host %s (home of %s): SIGKILL, network namespace deleted", victim.name, ids[0])
	c.checkWaiting(ids[0], victim.name, killed)

	victim.start()
	back := time.Now()
	_, took := c.awaitState(ids[0], control.RunStateRunning, back, hostLossBound)
	t.Logf("A: %s running again %s after %s restarted", ids[0], took.Round(100*time.Millisecond), victim.name)
	results := c.awaitRuns(ids)
	t.Logf("A: host %s back %s after the kill; all runs done %s after it came back", victim.name,
		back.Sub(killed).Round(time.Millisecond), time.Since(back).Round(time.Millisecond))
	c.checkResults(ids, repos, results)
	for _, s := range results[ids[0]].SubtaskResults {
		t.Logf("A: %s/%s: attempts %d, model calls %d, steps %d", ids[0], s.ID, s.Attempts, s.LLMCalls, s.Steps)
		// Durable sub-agents resume where they were: none starts over.
		if s.Attempts != 1 {
			t.Errorf("%s/%s ran %d times: the kill lost its work", ids[0], s.ID, s.Attempts)
		}
	}
	homes := c.checkLocality(ids)
	if homes[ids[0]] != victim.name {
		t.Errorf("run %s moved from its host %s to %s", ids[0], victim.name, homes[ids[0]])
	}
	c.checkDisks(homes)
}

// killAndMove is outcome B: kill a run's home once some of its subtasks
// are merged and move the run to a live host with `codeswarm move`.
func (c *cluster) killAndMove() {
	t := c.t
	id := "cluster-run-move"
	repo := c.startRun(id, "move")
	p := c.waitMerged(id)
	victim := c.host(p.Host)
	mergedBefore := mergedSubtasks(p)
	callsBefore := c.agentCalls()
	killed := time.Now()
	victim.kill()
	t.Logf("B: killed host %s (home of %s, %v merged): SIGKILL, network namespace deleted", victim.name, id, mergedBefore)
	c.checkWaiting(id, victim.name, killed)

	// The repositories are under the test's directory, which no host's
	// mount namespace hides: every host reaches them at the same path, as
	// a move requires. Only the workspace roots are per host.
	var target *host
	for _, h := range c.hosts {
		if h != victim {
			target = h
			break
		}
	}
	stopWatch := watchWorktrees(filepath.Join(target.root, id))
	moved := time.Now()
	out, err := c.runCLI("move", id, "--to", target.name)
	if err != nil || !strings.Contains(out, "moved from host "+victim.name+" to "+target.name) {
		stopWatch()
		t.Fatalf("codeswarm move %s --to %s: %v\n%s", id, target.name, err, out)
	}
	if p := c.progress(id); p.Host != target.name {
		t.Errorf("B: after the move the run's host is %q, want %s", p.Host, target.name)
	}
	res := c.awaitRuns([]string{id})[id]
	done := time.Since(moved)
	worktrees := stopWatch()
	t.Logf("B: %s done %s after `codeswarm move --to %s` (%s after the kill)", id,
		done.Round(time.Millisecond), target.name, time.Since(killed).Round(time.Millisecond))
	c.checkResults([]string{id}, []string{repo}, map[string]activities.SwarmResult{id: res})
	c.checkNotRedone(id, repo, res, mergedBefore, callsBefore)
	c.checkMovedLocality(id, victim.name, target.name)
	// The restarted sub-agents worked in the new host's workspace.root;
	// the merged ones never had a worktree there.
	for _, s := range subtasks {
		if had := slices.Contains(worktrees, s); had == slices.Contains(mergedBefore, s) {
			t.Errorf("B: %s's workspace.root had worktrees %v of %s; merged before the kill: %v", target.name, worktrees, id, mergedBefore)
			break
		}
	}
	t.Logf("B: worktrees of %s seen in %s's workspace.root after the move: %v", id, target.name, worktrees)
}

// checkWaiting: within the bound after the kill the run's progress query
// and `codeswarm status` say it waits for host, and `codeswarm workers`
// lists that host as lost.
func (c *cluster) checkWaiting(id, host string, killed time.Time) {
	t := c.t
	t.Helper()
	p, took := c.awaitState(id, control.RunStateWaitingHost, killed, hostLossBound)
	t.Logf("%s: waiting_for_host %s after the kill: %s", id, took.Round(100*time.Millisecond), p.StateReason)
	if !strings.Contains(p.StateReason, "waiting for host "+host+" since ") {
		t.Errorf("%s: state reason %q does not name host %s", id, p.StateReason, host)
	}
	if out, err := c.runCLI("status", id); err != nil || !strings.Contains(out, "state waiting_for_host: waiting for host "+host) {
		t.Errorf("codeswarm status %s: %v\n%s", id, err, out)
	}
	out, err := c.runCLI("workers")
	if err != nil || !hasLine(out, host, "workspace", "lost") {
		t.Errorf("codeswarm workers does not list %s's workspace queue as lost: %v\n%s", host, err, out)
	}
}

// checkNotRedone: the subtasks merged before the kill made no model call
// after it and have one sub-agent workflow each; the others were restarted
// by the move; the integration branch has one merge per subtask.
func (c *cluster) checkNotRedone(id, repo string, res activities.SwarmResult, mergedBefore []string, callsBefore map[string]int) {
	t := c.t
	after := c.agentCalls()
	children := c.children(id)
	for _, s := range subtasks {
		calls, kids := after[marker(s)]-callsBefore[marker(s)], children[s]
		t.Logf("B: %s/%s: model calls after the kill %d, sub-agent workflows %v", id, s, calls, kids)
		if slices.Contains(mergedBefore, s) {
			if calls != 0 || len(kids) != 1 {
				t.Errorf("B: %s was merged before the kill but made %d model calls after it and has sub-agents %v", s, calls, kids)
			}
		} else if calls == 0 || !slices.ContainsFunc(kids, func(k string) bool { return strings.HasSuffix(k, ".m1") }) {
			t.Errorf("B: %s was not restarted by the move: %d model calls after the kill, sub-agents %v", s, calls, kids)
		}
	}
	out, err := exec.Command("git", "-C", repo, "rev-list", "--merges", "--count", res.BaseCommit+".."+res.Branch).CombinedOutput()
	if got := strings.TrimSpace(string(out)); err != nil || got != "3" {
		t.Errorf("B: merge commits on %s: %s %v, want 3 (none redone)", res.Branch, got, err)
	}
}

// checkMovedLocality: the moved run used exactly the workspace queues of
// its old and new host, and every activity and sub-agent workflow task on
// one of them ran on that queue's host.
func (c *cluster) checkMovedLocality(id, from, to string) {
	t := c.t
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	acts, err := runActivities(ctx, c.client, id)
	if err != nil {
		t.Fatal(err)
	}
	queues := map[string]bool{}
	for _, a := range acts {
		if host, ok := strings.CutPrefix(a.queue, c.queue+"-ws-"); ok {
			queues[host] = true
			if a.host != host {
				t.Errorf("B: %s (queue %s) ran on %s", a.typ, a.queue, a.host)
			}
		}
		if a.typ == "AgentStep" && a.host != from && a.host != to {
			t.Errorf("B: a model step of %s (%s) ran on %s, neither its old nor its new host", id, a.workflowID, a.host)
		}
	}
	if len(queues) != 2 || !queues[from] || !queues[to] {
		t.Errorf("B: %s used the workspace queues of %v, want %s and %s", id, queues, from, to)
	}
}

// startRun starts run id on a new repository named name.
func (c *cluster) startRun(id, name string) string {
	t := c.t
	repo := filepath.Join(c.dir, "repos", name)
	if err := scripted.WriteDemoRepo(repo); err != nil {
		t.Fatal(err)
	}
	out, err := c.runCLI("run", "--no-worker", "--detach", "--repo", repo, "--task", "cluster task", "--id", id, "--max-concurrent", "3")
	if err != nil {
		t.Fatalf("codeswarm run %s: %v\n%s", id, err, out)
	}
	if !strings.Contains(out, id) {
		t.Fatalf("codeswarm run --detach did not print the run ID %s:\n%s", id, out)
	}
	return repo
}

// waitMerged waits until run id has merged every subtask but the slow one
// (so that none is between its last step and its merge at the kill).
func (c *cluster) waitMerged(id string) control.Progress {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		p := c.progress(id)
		m := mergedSubtasks(p)
		if slices.Contains(m, slowSubtask) {
			c.t.Fatalf("run %s merged %s before the others were all merged: %v", id, slowSubtask, m)
		}
		if len(m) == len(subtasks)-1 && p.Host != "" {
			return p
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("run %s merged nothing within 2 min", id)
	return control.Progress{}
}

func mergedSubtasks(p control.Progress) []string {
	var out []string
	for _, e := range p.Events {
		if n := subtaskName(e.Subtask); e.Kind == "merged" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return slices.Sorted(slices.Values(out))
}

// subtaskName is the plan's name of a subtask ID ("03-gamma" → "gamma").
func subtaskName(id string) string {
	if _, name, ok := strings.Cut(id, "-"); ok {
		return name
	}
	return id
}

// progress queries run id; an error (no worker has it yet) is empty.
func (c *cluster) progress(id string) control.Progress {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var p control.Progress
	if v, err := c.client.QueryWorkflow(ctx, id, "", control.ProgressQueryName, 0); err == nil {
		_ = v.Get(&p)
	}
	return p
}

// awaitState waits for the run's state and reports how long after since.
func (c *cluster) awaitState(id, state string, since time.Time, bound time.Duration) (control.Progress, time.Duration) {
	c.t.Helper()
	for {
		p := c.progress(id)
		if p.State == state {
			return p, time.Since(since)
		}
		if time.Since(since) > bound {
			c.dumpLogs()
			c.t.Fatalf("run %s: state %q not reached within %s; state %q (%s)", id, state, bound, p.State, p.StateReason)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// agentCalls counts the answered sub-agent requests per script marker.
func (c *cluster) agentCalls() map[string]int {
	out := map[string]int{}
	for _, r := range c.scripted.Requests() {
		if r.Kind == scripted.KindAgent && r.Status == 200 {
			out[r.Agent]++
		}
	}
	return out
}

// children lists run id's sub-agent workflows per subtask.
func (c *cluster) children(id string) map[string][]string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	acts, err := runActivities(ctx, c.client, id)
	if err != nil {
		c.t.Fatal(err)
	}
	out := map[string][]string{}
	for _, a := range acts {
		sub, _, _ := strings.Cut(strings.TrimPrefix(a.workflowID, id+"."), ".")
		sub = subtaskName(sub)
		if a.workflowID != id && !slices.Contains(out[sub], a.workflowID) {
			out[sub] = append(out[sub], a.workflowID)
		}
	}
	return out
}

// watchWorktrees records the git worktrees that appear in dir until the
// returned stop is called, which returns their names.
func watchWorktrees(dir string) func() []string {
	var (
		mu   sync.Mutex
		seen []string
	)
	quit, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if _, err := os.Stat(filepath.Join(dir, e.Name(), ".git")); err == nil {
					mu.Lock()
					if n := subtaskName(e.Name()); !slices.Contains(seen, n) {
						seen = append(seen, n)
					}
					mu.Unlock()
				}
			}
			select {
			case <-quit:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() []string {
		close(quit)
		<-stopped
		mu.Lock()
		defer mu.Unlock()
		return slices.Sorted(slices.Values(seen))
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

// waitToolWork waits until run id has done tool work on its host and
// returns that host.
func (c *cluster) waitToolWork(id string) *host {
	t := c.t
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		acts, err := runActivities(ctx, c.client, id)
		cancel()
		if err == nil {
			if home, err := runHost(acts, c.queue); err == nil {
				for _, a := range acts {
					if a.typ == "ExecTool" && strings.HasSuffix(a.queue, "-ws-"+home) {
						return c.host(home)
					}
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.dumpLogs()
	t.Fatalf("run %s did no tool work within 2 min", id)
	return nil
}

// host returns the host named name.
func (c *cluster) host(name string) *host {
	for _, h := range c.hosts {
		if h.name == name {
			return h
		}
	}
	c.t.Fatalf("no host %q", name)
	return nil
}
