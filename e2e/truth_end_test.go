package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"codeswarm/activities"
	"codeswarm/internal/cli"
	"codeswarm/llm/scripted"
	"codeswarm/workflows"
)

// endlessTurns scripts an agent that lists files, slowly, for n turns.
func endlessTurns(n int, delay time.Duration) []scripted.Reply {
	turns := make([]scripted.Reply, n)
	for i := range turns {
		turns[i] = scripted.Reply{Delay: scripted.Duration(delay), ToolCalls: []scripted.ToolCall{{Name: "list", Arguments: `{"path": "."}`}}}
	}
	return turns
}

// agentCalls counts the model requests of the agent whose marker is match.
func agentCalls(m *scripted.Server, match string) int {
	n := 0
	for _, r := range m.Requests() {
		if r.Kind == scripted.KindAgent && r.Agent == match {
			n++
		}
	}
	return n
}

// TestTerminateEndsSubAgents: `temporal workflow terminate` of a run (what a
// Temporal user does) stops its sub-agents from paying for more model calls
// and ends their workflows; the CLI that waited says so in one line and
// exits 3; status and list agree that the run is terminated.
func TestTerminateEndsSubAgents(t *testing.T) {
	const id = "e2e-terminate"
	names := []string{"one", "two"}
	agents := make([]scripted.Agent, 0, len(names))
	for _, n := range names {
		agents = append(agents, scripted.Agent{Match: faultMarker(n), Turns: endlessTurns(200, 150*time.Millisecond)})
	}
	h := newHarness(t, scripted.Script{Planner: []scripted.Reply{{Content: faultPlan(names...)}}, Agents: agents})
	fastSwarmEnv(t)
	repo := faultRepo(t)
	startLongLivedWorker(t)

	type ran struct {
		code     int
		out, err string
	}
	done := make(chan ran, 1)
	ctx, stop := context.WithTimeout(context.Background(), 3*time.Minute)
	defer stop()
	go func() {
		var out, errb bytes.Buffer
		code := cli.Execute(ctx, []string{"run", "--repo", repo, "--task", "terminate scenario", "--id", id, "--no-worker"}, cli.IO{Out: &out, Err: &errb})
		done <- ran{code, out.String(), errb.String()}
	}()
	waitFor(t, 60*time.Second, func() bool {
		return agentCalls(h.model, faultMarker("one")) >= 3 && agentCalls(h.model, faultMarker("two")) >= 3
	})
	if err := h.client.TerminateWorkflow(ctx, id, "", "e2e: a user terminates the run"); err != nil {
		t.Fatal(err)
	}
	at := map[string]int{}
	for _, n := range names {
		at[n] = agentCalls(h.model, faultMarker(n))
	}

	t.Run("the waiting CLI says terminated and exits 3", func(t *testing.T) {
		var r ran
		select {
		case r = <-done:
		case <-time.After(60 * time.Second):
			t.Fatal("the CLI did not return after the terminate")
		}
		if r.code != cli.ExitCancelled || !strings.Contains(r.err, "was terminated") || strings.Contains(r.err, "rpc error") {
			t.Errorf("exit %d, stderr %q; want exit %d and one plain line", r.code, r.err, cli.ExitCancelled)
		}
	})

	t.Run("sub-agents stop paying and end", func(t *testing.T) {
		for i, n := range names {
			child := workflows.ChildWorkflowID(id, fmt.Sprintf("%02d-%s", i+1, n), 1)
			waitFor(t, 30*time.Second, func() bool {
				d, err := h.client.DescribeWorkflowExecution(ctx, child, "")
				return err == nil && d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
			})
		}
		settled := map[string]int{}
		for _, n := range names {
			settled[n] = agentCalls(h.model, faultMarker(n))
		}
		time.Sleep(2 * time.Second)
		for _, n := range names {
			now := agentCalls(h.model, faultMarker(n))
			t.Logf("%s: %d model calls at the terminate, %d after", n, at[n], now)
			if now != settled[n] {
				t.Errorf("%s made %d more model calls after its workflow closed", n, now-settled[n])
			}
			// One call in flight, and the calls within the 1 s the run is
			// taken to be open, at about 6 calls a second.
			if now-at[n] > 8 {
				t.Errorf("%s made %d model calls after the terminate, want at most 8", n, now-at[n])
			}
		}
	})

	t.Run("status and list say terminated", func(t *testing.T) {
		_, status := h.run("status", id)
		mustContain(t, "status", status, "terminated")
		waitFor(t, 20*time.Second, func() bool {
			_, running := h.run("list", "--status", "running")
			_, terminated := h.run("list", "--status", "terminated")
			return !strings.Contains(running, id) && strings.Contains(terminated, id)
		})
	})
}

// TestTerminatedSubAgentIsReported: terminating one sub-agent's workflow
// (as a Temporal user might) fails that subtask with a plain reason, and
// the result lists its worktree as kept; the rest of the run goes on.
func TestTerminatedSubAgentIsReported(t *testing.T) {
	const id = "e2e-terminate-child"
	h := newHarness(t, scripted.Script{
		Planner: []scripted.Reply{{Content: faultPlan("endless", "fine")}},
		Agents: []scripted.Agent{
			{Match: faultMarker("endless"), Turns: append([]scripted.Reply{writeTurns("endless")[0]}, endlessTurns(300, 100*time.Millisecond)...)},
			faultAgent("fine", writeTurns("fine")),
		},
	})
	fastSwarmEnv(t)
	repo := faultRepo(t)
	type ran struct {
		code int
		res  activities.SwarmResult
	}
	done := make(chan ran, 1)
	go func() {
		code, res := h.runJSON("run", "--repo", repo, "--task", "terminate one sub-agent", "--id", id)
		done <- ran{code, res}
	}()
	child := workflows.ChildWorkflowID(id, "01-endless", 1)
	waitFor(t, 60*time.Second, func() bool { return agentCalls(h.model, faultMarker("endless")) >= 4 })
	if err := h.client.TerminateWorkflow(context.Background(), child, "", "e2e: a user terminates one sub-agent"); err != nil {
		t.Fatal(err)
	}
	var r ran
	select {
	case r = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the run did not end after one sub-agent was terminated")
	}
	subs := byID(r.res)
	e, f := subs["01-endless"], subs["02-fine"]
	if r.code != 1 || e.Success || !strings.Contains(e.Error, "was terminated") || e.Worktree == "" {
		t.Fatalf("exit %d; endless: success %v, error %q, worktree %q; want a failed subtask saying it was terminated, with its worktree", r.code, e.Success, e.Error, e.Worktree)
	}
	if !slices.Contains(r.res.KeptWorktrees, e.Worktree) {
		t.Errorf("kept_worktrees %v lacks %s", r.res.KeptWorktrees, e.Worktree)
	}
	if _, err := os.Stat(filepath.Join(e.Worktree, "endless.txt")); err != nil {
		t.Errorf("the terminated sub-agent's work is not in its worktree: %v", err)
	}
	if !f.Success || f.Merge != activities.MergeMerged {
		t.Errorf("fine: success %v merge %q; the rest of the run must go on", f.Success, f.Merge)
	}
}
