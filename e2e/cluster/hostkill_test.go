package cluster

import (
	"context"
	"strings"
	"testing"
	"time"

	"codeswarm/llm/scripted"
)

// TestClusterHostKilledAndRestarted: the home host of a running run is
// lost for good mid-run (its worker SIGKILLed, its network namespace
// deleted), then comes back with the same workspace.root. Every run, the
// interrupted one included, completes with every subtask merged, still
// only on its own host.
func TestClusterHostKilledAndRestarted(t *testing.T) {
	script := clusterScript()
	for i := range script.Agents {
		// Slow answers keep the sub-agents busy when the host dies.
		script.Agents[i].Turns[1].Delay = scripted.Duration(1500 * time.Millisecond)
	}
	c := newCluster(t, script)
	for i := 1; i <= nHosts; i++ {
		c.addHost(i)
	}
	for _, h := range c.hosts {
		h.start()
	}
	c.waitHosts(nHosts)
	ids, repos := c.startRuns(2)

	victim := c.waitToolWork(ids[0])
	start := time.Now()
	victim.kill()
	t.Logf("killed host %s (home of %s): SIGKILL, network namespace deleted", victim.name, ids[0])
	time.Sleep(3 * time.Second)
	if c.alivePollers(victim.name) {
		t.Logf("the server still lists %s as a poller 3 s after the kill (poller info lags)", victim.name)
	}
	victim.start()
	back := time.Now()
	results := c.awaitRuns(ids)
	t.Logf("host %s back %s after the kill; all runs done %s after it came back", victim.name,
		back.Sub(start).Round(time.Millisecond), time.Since(back).Round(time.Millisecond))
	c.checkResults(ids, repos, results)
	for _, s := range results[ids[0]].SubtaskResults {
		t.Logf("%s/%s: attempts %d, model calls %d, steps %d", ids[0], s.ID, s.Attempts, s.LLMCalls, s.Steps)
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
	if t.Failed() {
		c.dumpLogs()
	}
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

// alivePollers reports whether the server lists name among the main
// queue's pollers.
func (c *cluster) alivePollers(name string) bool {
	for _, h := range c.pollingHosts(c.queue) {
		if h == name {
			return true
		}
	}
	return false
}
