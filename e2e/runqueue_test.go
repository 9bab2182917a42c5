package e2e

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"codeswarm/activities"
	"codeswarm/internal/cli"
	"codeswarm/llm/scripted"
	"codeswarm/workflows"
)

// TestCLIWorkerServesOnlyItsRun leaves one run with Ctrl-C while its
// sub-agents work, runs a second one to the end in another CLI, and checks
// that the second CLI's worker never touched the first run (every task of
// each run was taken by that run's own worker), that the left run waited,
// and that `watch` then finished it. It also checks what leaving says and
// its exit code.
func TestCLIWorkerServesOnlyItsRun(t *testing.T) {
	h := newHarness(t, slowDemo(300*time.Millisecond))
	const left, other = "e2e-queue-left", "e2e-queue-other"

	// The first run, left with Ctrl-C once its sub-agents are calling the model.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb bytes.Buffer
	exited := make(chan int, 1)
	go func() {
		exited <- cli.Execute(ctx, []string{"run", "--repo", faultRepo(t), "--task", scripted.DemoTask, "--id", left}, cli.IO{Out: &out, Err: &errb})
	}()
	waitFor(t, time.Minute, func() bool { return h.model.Count(scripted.KindAgent) >= 2 })
	cancel()
	select {
	case code := <-exited:
		if code != cli.ExitInterrupted {
			t.Fatalf("Ctrl-C exit %d, want %d\n%s", code, cli.ExitInterrupted, tail(errb.String(), 3000))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after Ctrl-C")
	}
	mustContain(t, "what leaving says", errb.String(),
		"left run "+left+": it waits in Temporal with no worker (this process was its worker; its calls in flight are retried when one is back); `codeswarm watch "+left+"` starts one")
	queue := runQueue(t, h.client, left)
	if want := workflows.RunQueue(h.queue, left); queue != want {
		t.Fatalf("run %s is on queue %q, want its own %q", left, queue, want)
	}

	// The second run, to the end, in another CLI with its own worker.
	code, res := h.runJSON("run", "--repo", faultRepo(t), "--task", scripted.DemoTask, "--id", other)
	if code != 0 || !res.Success {
		t.Fatalf("second run failed (exit %d): %s\n%s", code, res.Error, tail(h.logs.String(), 3000))
	}
	if d := describe(t, h.client, left); d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Fatalf("the left run is %s after the other run, want still running", d.GetWorkflowExecutionInfo().GetStatus())
	}

	// watch starts a worker on the left run's queue and follows it to the end.
	if code, out := h.run("watch", left, "--plain"); code != 0 {
		t.Fatalf("watch %s: exit %d\n%s\n%s", left, code, out, tail(h.logs.String(), 3000))
	}
	for _, id := range []string{left, other} {
		own := "@" + workflows.RunQueue(h.queue, id) + activities.WorkspaceQueueInfix
		takers := taskTakers(t, h, id)
		if len(takers) == 0 {
			t.Fatalf("no task of %s was taken", id)
		}
		for who, n := range takers {
			if !strings.Contains(who, own) {
				t.Errorf("%d tasks of %s (or its sub-agents) were taken by %s, not by a worker of its own queue", n, id, who)
			}
		}
		t.Logf("%s: tasks taken by %v", id, takers)
	}
}

// runQueue is the task queue a run was started on.
func runQueue(t *testing.T, c client.Client, id string) string {
	t.Helper()
	return describe(t, c, id).GetExecutionConfig().GetTaskQueue().GetName()
}

func describe(t *testing.T, c client.Client, id string) *workflowservice.DescribeWorkflowExecutionResponse {
	t.Helper()
	d, err := c.DescribeWorkflowExecution(context.Background(), id, "")
	if err != nil {
		t.Fatalf("describe %s: %v", id, err)
	}
	return d
}

// taskTakers counts, by worker identity, the workflow and activity tasks
// recorded as started in the histories of a run and its sub-agents.
func taskTakers(t *testing.T, h *harness, id string) map[string]int {
	t.Helper()
	takers := map[string]int{}
	for _, wid := range workflowIDs(t, h) {
		if !strings.HasPrefix(wid, id) {
			continue
		}
		it := h.client.GetWorkflowHistory(context.Background(), wid, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				t.Fatalf("history of %s: %v", wid, err)
			}
			if a := ev.GetWorkflowTaskStartedEventAttributes(); a != nil {
				takers[a.GetIdentity()]++
			}
			if a := ev.GetActivityTaskStartedEventAttributes(); a != nil {
				takers[a.GetIdentity()]++
			}
		}
	}
	return takers
}
