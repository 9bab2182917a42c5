package e2e

import (
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
// host, each model call took a permit from the shared LLM queue, the other
// host's disk holds nothing of the run, and every run succeeds.
func TestSubAgentsWorkOnTheirHost(t *testing.T) {
	names := []string{"alpha", "beta", "gamma"}
	var agents []scripted.Agent
	for _, n := range names {
		agents = append(agents, faultAgent(n, hostAgentTurns(n)))
	}
	script := scripted.Script{Planner: []scripted.Reply{{Content: faultPlan(names...)}}, Agents: agents}
	srv, model, c := startStack(t, "", script)
	queue := testQueue(t)
	setCLIEnv(t, srv.FrontendAddress(), queue, model.URL(), t.TempDir())

	// Host a alone takes the first runs; once host b polls too, runs are
	// started until b is the home of two (the main queue gives a run to
	// whichever worker polls).
	a := startHost(t, "host-a")
	hosts := map[string]*workerHost{a.pid(): a}
	home := map[string]*workerHost{}
	startOn := func(id string) *workerHost {
		startDetached(t, faultRepo(t), id)
		h := awaitHome(t, c, id, hosts)
		home[id] = h
		return h
	}
	for i := range 2 {
		startOn(fmt.Sprintf("mh-a%d", i))
	}
	b := startHost(t, "host-b")
	hosts[b.pid()] = b
	onB := 0
	for i := 0; onB < 2 && i < 10; i++ {
		if startOn(fmt.Sprintf("mh-b%d", i)) == b {
			onB++
		}
	}
	if onB < 2 {
		t.Fatalf("host-b became the home of %d of %d runs started while it polled", onB, len(home)-2)
	}

	logs := func() string { return "host-a:\n" + tail(a.proc.logs.String(), 3000) + "\nhost-b:\n" + tail(b.proc.logs.String(), 3000) }
	for id, h := range home {
		res := awaitResult(t, c, id, logs)
		if !res.Success || len(res.SubtaskResults) != len(names) {
			t.Fatalf("run %s on %s failed:\n%s\n%s", id, h.name, fmtResult(res), logs())
		}
		for _, s := range res.SubtaskResults {
			if s.Merge != activities.MergeMerged {
				t.Errorf("%s %s: merge %q, want merged", id, s.ID, s.Merge)
			}
		}
		checkOnHost(t, c, queue, id, h, hosts)
	}
	checkModelRequests(t, model, len(home)*(1+len(names)*3))
	t.Logf("%d runs: %d on host-a, %d on host-b; %d model requests, all with their task", len(home), len(home)-onB, onB, len(model.Requests()))
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
// h's process; every model call came after a permit from llmQueue.
func checkActivities(t *testing.T, wfID string, hist *historypb.History, h *workerHost, hosts map[string]*workerHost, llmQueue string) {
	t.Helper()
	scheduled := map[int64]*historypb.ActivityTaskScheduledEventAttributes{}
	permits, calls := 0, 0
	for _, ev := range hist.GetEvents() {
		if s := ev.GetActivityTaskScheduledEventAttributes(); s != nil {
			scheduled[ev.GetEventId()] = s
			switch name := s.GetActivityType().GetName(); {
			case name == "LLMPermit":
				permits++
				if q := s.GetTaskQueue().GetName(); q != llmQueue {
					t.Errorf("%s: permit on queue %s, want %s", wfID, q, llmQueue)
				}
			case name == "Plan" || name == "AgentStep" || name == "Summarize":
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
	if permits != calls {
		t.Errorf("%s: %d LLM permits for %d model calls, want one each", wfID, permits, calls)
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
