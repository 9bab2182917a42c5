package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"

	"codeswarm/activities"
	"codeswarm/llm/scripted"
	"codeswarm/workflows"
)

// workerHost is one worker process with its own workspace.host and
// workspace.root: a host of the cluster that shares no disk with the others.
type workerHost struct {
	name string
	root string
	proc *workerProc
}

func startHost(t *testing.T, name string) *workerHost {
	t.Helper()
	root := filepath.Join(t.TempDir(), name)
	proc := startWorkerProcess(t, "CODESWARM_WORKSPACE_HOST="+name, "CODESWARM_WORKSPACE_ROOT="+root)
	return &workerHost{name: name, root: root, proc: proc}
}

func (w *workerHost) pid() string { return strconv.Itoa(w.proc.cmd.Process.Pid) }

// hostAgentTurns reads a file, writes name.txt, then finishes: three model
// turns whose requests each need the whole conversation so far.
func hostAgentTurns(name string) []scripted.Reply {
	return append([]scripted.Reply{{ToolCalls: []scripted.ToolCall{{Name: "read", Arguments: `{"path": "go.mod"}`}}}}, writeTurns(name)...)
}

// TestSubAgentsWorkOnTheirHost runs several swarms on two worker hosts that
// share one Temporal server and one model but no disk (issue 12): every
// model request of every sub-agent carries its task (no empty conversation
// from the other host's transcript store), every activity that touches a
// run's transcripts, journals or worktrees ran in the process of the run's
// host, permits came from the shared LLM queue, the other
// host's disk holds nothing of the run, and every run succeeds.
func TestSubAgentsWorkOnTheirHost(t *testing.T) {
	names := []string{"alpha", "beta", "gamma"}
	var agents []scripted.Agent
	for _, n := range names {
		agents = append(agents, faultAgent(n, hostAgentTurns(n)))
	}
	script := scripted.Script{Planner: []scripted.Reply{{Content: faultPlan(names...)}}, Agents: agents}
	srv, model, c := startStack(t, "", script)
	r := newTwoHosts(t, c, srv.FrontendAddress(), model.URL())
	r.startRuns(t, "mh")
	r.awaitAll(t, len(names))
	checkModelRequests(t, model, len(r.home)*(1+len(names)*3))
	t.Logf("%d runs: %d on host-a, %d on host-b; %d model requests, all with their task", len(r.home), len(r.home)-r.onB, r.onB, len(model.Requests()))
}

// TestLLMRateLimitHoldsAcrossHosts: runs on two hosts fan out at once
// against a provider that takes providerRPS requests per second and answers
// 429 beyond. Model calls run on each run's host, yet the adaptive limit on
// the shared LLM queue paces them all: every run merges every subtask, 429s
// stay under one per sub-agent, and the work still stays on each run's host.
func TestLLMRateLimitHoldsAcrossHosts(t *testing.T) {
	const perRun = 5
	var names []string
	var agents []scripted.Agent
	for i := range perRun {
		name := fmt.Sprintf("fan-%02d", i)
		names = append(names, name)
		agents = append(agents, faultAgent(name, writeTurns(name)))
	}
	script := scripted.Script{Planner: []scripted.Reply{{Content: faultPlan(names...)}}, Agents: agents}
	srv, model, c := startStack(t, "", script, scripted.WithRateLimit(providerRPS, providerRPS))
	t.Setenv("CODESWARM_SWARM_MAX_CONCURRENT", fmt.Sprint(perRun))
	r := newTwoHosts(t, c, srv.FrontendAddress(), model.URL())
	ctx, stop := context.WithCancel(context.Background())
	seen := watchAdaptiveLimit(ctx, t, &harness{t: t, client: c, queue: r.queue})
	start := time.Now()
	r.startRuns(t, "rl")
	r.awaitAll(t, perRun)
	elapsed := time.Since(start)
	stop()
	ok, limited := 0, 0
	for _, q := range model.Requests() {
		switch q.Status {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
			limited++
		}
	}
	lowest := <-seen
	agentsRun := len(r.home) * perRun
	t.Logf("%d runs (%d on host-b), %d sub-agents in %s: %d answered, %d answered 429 (provider limit %d req/s); LLM queue limit lowest %s",
		len(r.home), r.onB, agentsRun, elapsed.Round(time.Millisecond), ok, limited, providerRPS, lowest)
	if limited == 0 {
		t.Fatal("the provider never answered 429: the test did not exercise the controller")
	}
	if limited > agentsRun {
		t.Errorf("%d 429s for %d sub-agents on two hosts: the rate did not converge under the provider's", limited, agentsRun)
	}
	if !strings.Contains(lowest, "codeswarm adaptive") {
		t.Errorf("no worker set an adaptive rate limit on the LLM queue (seen: %q)", lowest)
	}
}

// twoHosts is one Temporal server and model, two worker hosts (host-a,
// host-b) and the runs started on them, by home.
type twoHosts struct {
	c      client.Client
	queue  string
	a, b   *workerHost
	hosts  map[string]*workerHost // by process ID
	home   map[string]*workerHost // by run ID
	onB    int
	logsFn func() string
}

func newTwoHosts(t *testing.T, c client.Client, address, modelURL string) *twoHosts {
	t.Helper()
	queue := testQueue(t)
	setCLIEnv(t, address, queue, modelURL, t.TempDir())
	r := &twoHosts{c: c, queue: queue, hosts: map[string]*workerHost{}, home: map[string]*workerHost{}}
	r.logsFn = func() string {
		var b strings.Builder
		for _, h := range []*workerHost{r.a, r.b} {
			if h != nil {
				fmt.Fprintf(&b, "%s:\n%s\n", h.name, tail(h.proc.logs.String(), 3000))
			}
		}
		return b.String()
	}
	return r
}

// startRuns starts two runs with only host-a polling (so it is their home),
// then starts host-b and starts runs until host-b is the home of two (the
// main queue gives a run to whichever worker polls).
func (r *twoHosts) startRuns(t *testing.T, prefix string) {
	t.Helper()
	startOn := func(id string) *workerHost {
		startDetached(t, faultRepo(t), id)
		h := awaitHome(t, r.c, id, r.hosts)
		r.home[id] = h
		return h
	}
	r.a = startHost(t, "host-a")
	r.hosts[r.a.pid()] = r.a
	for i := range 2 {
		startOn(fmt.Sprintf("%s-a%d", prefix, i))
	}
	r.b = startHost(t, "host-b")
	r.hosts[r.b.pid()] = r.b
	for i := 0; r.onB < 2 && i < 10; i++ {
		if startOn(fmt.Sprintf("%s-b%d", prefix, i)) == r.b {
			r.onB++
		}
	}
	if r.onB < 2 {
		t.Fatalf("host-b became the home of %d of %d runs started while it polled", r.onB, len(r.home)-2)
	}
}

// awaitAll waits for every run, requires it to merge all its subtasks, and
// checks that its work stayed on its home (checkOnHost).
func (r *twoHosts) awaitAll(t *testing.T, subtasks int) {
	t.Helper()
	for id, h := range r.home {
		res := awaitResult(t, r.c, id, r.logsFn)
		if !res.Success || len(res.SubtaskResults) != subtasks {
			t.Fatalf("run %s on %s failed:\n%s\n%s", id, h.name, fmtResult(res), r.logsFn())
		}
		for _, s := range res.SubtaskResults {
			if s.Merge != activities.MergeMerged {
				t.Errorf("%s %s: merge %q, want merged", id, s.ID, s.Merge)
			}
		}
		checkOnHost(t, r.c, r.queue, id, h, r.hosts)
	}
}

// awaitHome waits until run id's PrepareRun has started and returns the host
// whose process ran it: the run's home.
func awaitHome(t *testing.T, c client.Client, id string, hosts map[string]*workerHost) *workerHost {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		for _, ev := range history(t, c, id, "").GetEvents() {
			if ev.GetEventType() != enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED {
				continue
			}
			if h := hosts[identityPID(ev.GetActivityTaskStartedEventAttributes().GetIdentity())]; h != nil {
				return h
			}
			t.Fatalf("run %s: PrepareRun started by unknown worker %q", id, ev.GetActivityTaskStartedEventAttributes().GetIdentity())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("run %s was not prepared within a minute", id)
	return nil
}

// identityPID is the process ID in an SDK worker identity ("pid@host@queue").
func identityPID(identity string) string {
	pid, _, _ := strings.Cut(identity, "@")
	return pid
}

// hostActivities read or write a run's transcripts, journals or worktrees.
var hostActivities = map[string]bool{
	"Plan": true, "AgentStep": true, "Summarize": true, "StartSubtask": true, "ExecTool": true,
	"CommitSubtask": true, "MergeSubtask": true, "Verify": true, "FinishRun": true,
}

// checkOnHost asserts that run id and its sub-agents did their host work in
// the process of h, took their permits on the shared LLM queue, and left
// nothing on the other hosts' disks.
func checkOnHost(t *testing.T, c client.Client, queue, id string, h *workerHost, hosts map[string]*workerHost) {
	t.Helper()
	wsQueue := queue + activities.WorkspaceQueueInfix + h.name
	parent := history(t, c, id, "")
	checkActivities(t, id, parent, h, hosts, workflows.LLMQueue(queue))
	children := 0
	for _, ev := range parent.GetEvents() {
		started := ev.GetChildWorkflowExecutionStartedEventAttributes()
		if started == nil {
			continue
		}
		children++
		we := started.GetWorkflowExecution()
		child := history(t, c, we.GetWorkflowId(), we.GetRunId())
		if q := child.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes().GetTaskQueue().GetName(); q != wsQueue {
			t.Errorf("%s runs on queue %s, want its host's %s", we.GetWorkflowId(), q, wsQueue)
		}
		checkActivities(t, we.GetWorkflowId(), child, h, hosts, workflows.LLMQueue(queue))
		// Its workflow tasks (and so the read-only tools it runs as local
		// activities) ran on the host too.
		for _, ev := range child.GetEvents() {
			if st := ev.GetWorkflowTaskStartedEventAttributes(); st != nil && hosts[identityPID(st.GetIdentity())] != h {
				t.Errorf("%s: workflow task ran in worker %q, not on the run's host %s (pid %s)", we.GetWorkflowId(), st.GetIdentity(), h.name, h.pid())
			}
		}
	}
	if children == 0 {
		t.Errorf("run %s started no sub-agent", id)
	}
	if _, err := os.Stat(filepath.Join(h.root, id, "transcripts")); err != nil {
		t.Errorf("run %s: no transcripts on its host %s: %v", id, h.name, err)
	}
	for _, other := range hosts {
		if other == h {
			continue
		}
		if _, err := os.Stat(filepath.Join(other.root, id)); !os.IsNotExist(err) {
			t.Errorf("run %s (home %s) left %s on %s's disk (stat: %v)", id, h.name, filepath.Join(other.root, id), other.name, err)
		}
	}
}

// checkActivities: every host activity of one workflow's history started in
// h's process; permits came from llmQueue.
func checkActivities(t *testing.T, wfID string, hist *historypb.History, h *workerHost, hosts map[string]*workerHost, llmQueue string) {
	t.Helper()
	scheduled := map[int64]*historypb.ActivityTaskScheduledEventAttributes{}
	permits, calls, always := 0, 0, 0
	for _, ev := range hist.GetEvents() {
		if localActivityType(ev) == "AgentStep" {
			calls++ // a model call run as a local activity, in h's workflow task
		}
		if s := ev.GetActivityTaskScheduledEventAttributes(); s != nil {
			scheduled[ev.GetEventId()] = s
			switch name := s.GetActivityType().GetName(); {
			case name == "LLMPermit":
				permits++
				if q := s.GetTaskQueue().GetName(); q != llmQueue {
					t.Errorf("%s: permit on queue %s, want %s", wfID, q, llmQueue)
				}
			case name == "Summarize":
				calls++
				always++
			case name == "Plan" || name == "AgentStep":
				calls++
			}
		}
		st := ev.GetActivityTaskStartedEventAttributes()
		if st == nil {
			continue
		}
		name := scheduled[st.GetScheduledEventId()].GetActivityType().GetName()
		if !hostActivities[name] {
			continue
		}
		if by := hosts[identityPID(st.GetIdentity())]; by != h {
			t.Errorf("%s: %s (attempt %d) ran in worker %q, not on the run's host %s (pid %s)", wfID, name, st.GetAttempt(), st.GetIdentity(), h.name, h.pid())
		}
	}
	// Summarize always takes a permit; the planner's first call and a
	// sub-agent's turns, the first included, only while a rate limit is in force (none is here, but a
	// worker may not have looked yet).
	if permits < always || permits > calls {
		t.Errorf("%s: %d LLM permits for %d model calls (%d Summarize), want at least one per Summarize and at most one each", wfID, permits, calls, always)
	}
}

// checkModelRequests: every request was a planner or sub-agent request the
// model recognised (a sub-agent's request carries its task marker, so it was
// built from the whole conversation) and answered 200.
func checkModelRequests(t *testing.T, model *scripted.Server, want int) {
	t.Helper()
	reqs := model.Requests()
	for i, r := range reqs {
		if r.Status != http.StatusOK || (r.Kind != scripted.KindPlanner && (r.Kind != scripted.KindAgent || r.Agent == "")) {
			t.Errorf("model request %d: kind %q agent %q turn %d answered %d:\n%s", i, r.Kind, r.Agent, r.Turn, r.Status, tail(string(r.Body), 600))
		}
	}
	if len(reqs) != want {
		t.Errorf("%d model requests, want %d (a planner call and three turns per sub-agent, none paid twice)", len(reqs), want)
	}
}
