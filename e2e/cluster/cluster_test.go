package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"

	"codeswarm/activities"
	"codeswarm/llm/scripted"
)

const (
	nHosts = 3
	nRuns  = 6
	// providerRPS is the scripted provider's account limit (and burst):
	// the three hosts together must stay under it.
	providerRPS = 4
	// runTimeout bounds the wait for all runs.
	runTimeout = 5 * time.Minute
)

// subtasks of every run's plan; each writes <name>.txt.
var subtasks = []string{"alpha", "beta", "gamma"}

func marker(name string) string { return "[cluster:" + name + "]" }

// clusterScript plans the same three independent subtasks for every run
// (replies depend only on the request), each agent writing its file.
func clusterScript() scripted.Script {
	type subtask struct {
		Name          string   `json:"name"`
		Instruction   string   `json:"instruction"`
		Specialty     string   `json:"specialty"`
		Dependencies  []string `json:"dependencies"`
		Priority      int      `json:"priority"`
		NeedsWorktree bool     `json:"needs_worktree"`
	}
	var plan struct {
		Subtasks []subtask `json:"subtasks"`
	}
	var agents []scripted.Agent
	for _, n := range subtasks {
		plan.Subtasks = append(plan.Subtasks, subtask{n, marker(n) + " Create " + n + ".txt.", "generalist", []string{}, 1, true})
		args := fmt.Sprintf(`{"path": %q, "content": "written by %s\n"}`, n+".txt", n)
		agents = append(agents, scripted.Agent{Match: marker(n), Turns: []scripted.Reply{
			{ToolCalls: []scripted.ToolCall{{Name: "write", Arguments: args}}},
			{Content: "Wrote " + n + ".txt.\nSTATUS: completed"},
		}})
	}
	b, err := json.Marshal(plan)
	if err != nil {
		panic(err) // literals only
	}
	return scripted.Script{Planner: []scripted.Reply{{Content: string(b)}}, Agents: agents}
}

// TestClusterRunsOnSeveralHosts is codeswarm on a real cluster: a Temporal
// server on PostgreSQL, three worker hosts (own network namespace, hostname
// and workspace.root, every other host's root hidden), six runs started by a
// fourth process with --no-worker. It proves that the runs spread over the
// hosts, that each run's workspace, tool and model-step activities ran on
// its own host, that no host needed another's disk, that the model saw the
// full conversation of every sub-agent, and that the provider's rate limit
// held for the three hosts together.
func TestClusterRunsOnSeveralHosts(t *testing.T) {
	c := newCluster(t, clusterScript(), scripted.WithRateLimit(providerRPS, providerRPS))
	for i := 1; i <= nHosts; i++ {
		c.addHost(i)
	}
	for _, h := range c.hosts {
		h.start()
	}
	c.waitHosts(nHosts)

	watch, stopWatch := context.WithCancel(context.Background())
	lowest := c.watchLLMLimit(watch)
	began := time.Now()
	ids, repos := c.startRuns(nRuns)
	c.t.Logf("%d runs started by `codeswarm run --no-worker --detach` in %s", nRuns, time.Since(began).Round(time.Millisecond))
	start := time.Now()
	results := c.awaitRuns(ids)
	wall := time.Since(start)
	stopWatch()
	limit := <-lowest

	c.checkResults(ids, repos, results)
	homes := c.checkLocality(ids)
	c.checkDisks(homes)
	calls := c.checkModel(ids)
	if limited := count429(calls); limited > 0 && !strings.Contains(limit, "codeswarm adaptive") {
		t.Errorf("%d 429s but no worker cut the shared LLM queue's rate limit (lowest seen: %s)", limited, limit)
	}
	c.checkNoSecrets()
	c.report(ids, homes, calls, wall)
	t.Logf("lowest rate limit the hosts set on the shared LLM queue: %s", limit)
	if t.Failed() {
		c.dumpLogs()
	}
}

// checkResults: every run succeeded with every subtask merged, and the
// files are on its branch in its repository.
func (c *cluster) checkResults(ids, repos []string, results map[string]activities.SwarmResult) {
	t := c.t
	for i, id := range ids {
		res := results[id]
		if !res.Success || len(res.SubtaskResults) != len(subtasks) {
			t.Errorf("run %s failed:\n%s", id, fmtJSON(res))
			continue
		}
		for _, s := range res.SubtaskResults {
			if s.Merge != activities.MergeMerged {
				t.Errorf("run %s: subtask %s merge %q, want merged", id, s.ID, s.Merge)
			}
		}
		for _, n := range subtasks {
			if out, err := exec.Command("git", "-C", repos[i], "show", res.Branch+":"+n+".txt").CombinedOutput(); err != nil {
				t.Errorf("run %s: %s.txt not on %s: %v %s", id, n, res.Branch, err, out)
			}
		}
	}
}

// waitHosts waits until n distinct hosts poll the main queue.
func (c *cluster) waitHosts(n int) {
	t := c.t
	deadline := time.Now().Add(2 * time.Minute)
	for {
		for _, h := range c.hosts {
			if !h.alive() {
				c.dumpLogs()
				t.Fatalf("host %s exited before polling", h.name)
			}
		}
		hosts := c.pollingHosts(c.queue)
		if len(hosts) >= n {
			return
		}
		if time.Now().After(deadline) {
			c.dumpLogs()
			t.Fatalf("only %d of %d hosts poll %s after 2 min: %v", len(hosts), n, c.queue, hosts)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// pollingHosts lists the hostnames polling queue for workflow tasks.
func (c *cluster) pollingHosts(queue string) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.client.WorkflowService().DescribeTaskQueue(ctx, &workflowservice.DescribeTaskQueueRequest{
		Namespace: "default", TaskQueue: &taskqueuepb.TaskQueue{Name: queue, Kind: enumspb.TASK_QUEUE_KIND_NORMAL},
		TaskQueueType: enumspb.TASK_QUEUE_TYPE_WORKFLOW,
	})
	if err != nil {
		return nil
	}
	var hosts []string
	for _, p := range resp.GetPollers() {
		if h := identityHost(p.GetIdentity()); !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	sort.Strings(hosts)
	return hosts
}

// startRuns makes one repository per run and starts each run from the
// CLI with --no-worker --detach, as a user on a machine without a worker.
func (c *cluster) startRuns(n int) (ids, repos []string) {
	for i := range n {
		id := fmt.Sprintf("cluster-run-%d", i)
		ids, repos = append(ids, id), append(repos, c.startRun(id, fmt.Sprintf("repo%d", i)))
	}
	return ids, repos
}

// awaitRuns waits for every run's result.
func (c *cluster) awaitRuns(ids []string) map[string]activities.SwarmResult {
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	out := map[string]activities.SwarmResult{}
	for _, id := range ids {
		res, err := activities.RunResult(ctx, c.client, id)
		if err != nil {
			c.dumpLogs()
			c.t.Fatalf("run %s: %v", id, err)
		}
		out[id] = res
	}
	return out
}

// checkLocality reads every run's history (and its sub-agents') and
// returns each run's home host. Every activity on a workspace queue, every
// model step and every sub-agent workflow task must have run on that host.
func (c *cluster) checkLocality(ids []string) map[string]string {
	t := c.t
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	homes := map[string]string{}
	for _, id := range ids {
		acts, err := runActivities(ctx, c.client, id)
		if err != nil {
			t.Fatal(err)
		}
		home, err := runHost(acts, c.queue)
		if err != nil {
			t.Errorf("run %s: %v", id, err)
			continue
		}
		homes[id] = home
		c.checkPermits(id, acts)
		for _, a := range acts {
			onHostQueue := strings.HasPrefix(a.queue, c.queue+"-ws-")
			// Sub-agent workflows run on their host too: a workflow
			// task of a child anywhere else would mean it left.
			childTask := a.typ == workflowTask && a.workflowID != id
			if (onHostQueue || a.typ == "AgentStep" || childTask) && a.host != home {
				t.Errorf("run %s: %s (queue %s, workflow %s) ran on %s, not on the run's host %s", id, a.typ, a.queue, a.workflowID, a.host, home)
			}
		}
	}
	used := map[string]bool{}
	for _, h := range homes {
		used[h] = true
	}
	if len(used) < 2 {
		t.Errorf("the %d runs did not spread: hosts %v", len(ids), homes)
	}
	return homes
}

// checkPermits: every model call of the run (Plan, AgentStep, Summarize,
// on its host) waited for a permit from the shared LLM queue, whose rate
// limit the server enforces for all hosts together, unless the sub-agent's
// previous answer (or, for its first turn, its StartSubtask) said no limit
// was in force on its host (no ceiling, no 429 lately): then a call goes
// ahead without one.
func (c *cluster) checkPermits(id string, acts []activityRun) {
	calls, permits, callsWithoutPermit := 0, 0, 0
	permitted, noRateLimit := map[string]bool{}, map[string]bool{}
	for _, a := range acts {
		switch a.typ {
		case "Plan", "AgentStep", "Summarize":
			calls++
			switch {
			case permitted[a.workflowID]:
			case noRateLimit[a.workflowID]:
				callsWithoutPermit++
			default:
				c.t.Errorf("run %s: %s of %s took no permit and followed no answer saying no limit was in force", id, a.typ, a.workflowID)
			}
			permitted[a.workflowID] = false
			var res struct {
				NoRateLimit bool `json:"unpaced"`
			}
			if a.typ == "AgentStep" && json.Unmarshal(a.result, &res) == nil {
				noRateLimit[a.workflowID] = res.NoRateLimit
			}
		case "StartSubtask", "PrepareRun":
			// The sub-agent's first turn, and the planner's first call,
			// go without a permit when
			// the worker of the worktree or the run saw no limit in force.
			var res struct {
				NoRateLimit bool `json:"unpaced"`
			}
			if json.Unmarshal(a.result, &res) == nil {
				noRateLimit[a.workflowID] = res.NoRateLimit
			}
		case "LLMPermit":
			permits++
			permitted[a.workflowID] = true
			if a.queue != c.queue+"-llm" {
				c.t.Errorf("run %s: LLM permit on queue %s, not the shared %s-llm", id, a.queue, c.queue)
			}
		}
	}
	// A run that never met a rate limit takes no permit at all (the
	// planner's first call included): each call is checked above.
	if calls == 0 {
		c.t.Errorf("run %s: no model call (%d permits from the shared LLM queue)", id, permits)
	}
	c.t.Logf("run %s: %d model calls, %d permits, %d calls without one after an answer that saw no rate limit", id, calls, permits, callsWithoutPermit)
}

// checkDisks: each host's workspace.root holds the runs homed there and
// nothing of any other run.
func (c *cluster) checkDisks(homes map[string]string) {
	t := c.t
	for _, h := range c.hosts {
		entries, err := os.ReadDir(h.root)
		if err != nil {
			t.Fatal(err)
		}
		var have []string
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "cluster-run-") {
				have = append(have, e.Name())
			}
		}
		var want []string
		for id, home := range homes {
			if home == h.name {
				want = append(want, id)
			}
		}
		sort.Strings(want)
		if !slices.Equal(have, want) {
			t.Errorf("host %s: workspace.root holds %v, want exactly its runs %v", h.name, have, want)
		}
	}
}

// checkModel: every sub-agent request carried its task (the scripted model
// matched the marker in the conversation), none was refused as malformed,
// and 429s stayed rare although three hosts called at once. It returns
// the calls.
func (c *cluster) checkModel(ids []string) []modelCall {
	t := c.t
	for _, r := range c.scripted.Requests() {
		if r.Kind == scripted.KindAgent && r.Agent == "" {
			t.Errorf("a sub-agent request reached the model without its task (turn %d, status %d): the conversation was lost", r.Turn, r.Status)
		}
		if r.Status == http.StatusBadRequest {
			t.Errorf("the model refused a %s request as malformed (turn %d, agent %q)", r.Kind, r.Turn, r.Agent)
		}
	}
	calls := c.model.snapshot()
	// Every planner and sub-agent calls the model; without a shared
	// limit each would meet 429s on every retry.
	if callers, limited := len(ids)*(1+len(subtasks)), count429(calls); limited > callers {
		t.Errorf("%d 429s for %d model-calling workflows: the hosts did not slow down together", limited, callers)
	}
	return calls
}

func count429(calls []modelCall) int {
	n := 0
	for _, call := range calls {
		if call.status == http.StatusTooManyRequests {
			n++
		}
	}
	return n
}

// watchLLMLimit polls the shared LLM queue's rate limit until ctx ends,
// then sends the lowest one seen ("none" if none).
func (c *cluster) watchLLMLimit(ctx context.Context) <-chan string {
	out := make(chan string, 1)
	go func() {
		lowest, low := "none", float32(0)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				out <- lowest
				return
			case <-tick.C:
			}
			qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			resp, err := c.client.WorkflowService().DescribeTaskQueue(qctx, &workflowservice.DescribeTaskQueueRequest{
				Namespace: "default", TaskQueue: &taskqueuepb.TaskQueue{Name: c.queue + "-llm", Kind: enumspb.TASK_QUEUE_KIND_NORMAL},
				TaskQueueType: enumspb.TASK_QUEUE_TYPE_ACTIVITY, ReportConfig: true,
			})
			cancel()
			rl := resp.GetConfig().GetQueueRateLimit()
			if err == nil && rl.GetRateLimit() != nil && (lowest == "none" || rl.GetRateLimit().GetRequestsPerSecond() < low) {
				low = rl.GetRateLimit().GetRequestsPerSecond()
				lowest = fmt.Sprintf("%.2f req/s (%s)", low, rl.GetMetadata().GetReason())
			}
		}
	}()
	return out
}

// checkNoSecrets: the database password and the API key appear in no
// process's output, although the server logged at debug level; the server
// names its database with the password masked.
func (c *cluster) checkNoSecrets() {
	t := c.t
	srv := c.srvLogs.String()
	if strings.Contains(srv, c.pg.Password) {
		t.Error("the server's output contains the PostgreSQL password")
	}
	if !strings.Contains(srv, "state in embedded.db_url postgres://postgres:xxxxx@") {
		t.Errorf("the server does not say where its state is, password masked:\n%s", tail(srv, 2000))
	}
	for _, h := range c.hosts {
		if out := h.logs.String(); strings.Contains(out, apiKey) || strings.Contains(out, c.pg.Password) {
			t.Errorf("host %s's output contains a secret", h.name)
		}
	}
}

// report logs the figures of the run.
func (c *cluster) report(ids []string, homes map[string]string, calls []modelCall, wall time.Duration) {
	perHost := map[string]int{}
	for _, h := range homes {
		perHost[h]++
	}
	byAddr := map[string]string{}
	for _, h := range c.hosts {
		if h.ns != nil {
			byAddr[h.ns.addr] = h.name
		}
	}
	callsBy, limitedBy := map[string]int{}, map[string]int{}
	perSecond := map[int64]int{}
	for _, call := range calls {
		name := byAddr[call.from]
		if name == "" {
			name = call.from
		}
		callsBy[name]++
		switch call.status {
		case http.StatusTooManyRequests:
			limitedBy[name]++
		case http.StatusOK:
			perSecond[call.at.Unix()]++
		}
	}
	peak := 0
	for _, n := range perSecond {
		peak = max(peak, n)
	}
	c.t.Logf("cluster: %d runs on %d hosts (runs per host %v) in %s; %d model calls (by host %v), %d answered 429 (by host %v); peak %d answered calls in one second (provider limit %d/s)",
		len(ids), len(c.hosts), perHost, wall.Round(time.Millisecond), len(calls), callsBy, countValues(limitedBy), limitedBy, peak, providerRPS)
}

func countValues(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// dumpLogs shows the tail of every process's output.
func (c *cluster) dumpLogs() {
	c.t.Logf("server output:\n%s", tail(c.srvLogs.String(), 3000))
	for _, h := range c.hosts {
		c.t.Logf("host %s output:\n%s", h.name, tail(h.logs.String(), 4000))
	}
}

func fmtJSON(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}
