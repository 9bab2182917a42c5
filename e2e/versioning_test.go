package e2e

import (
	"context"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"codeswarm/llm/scripted"
)

// TestWorkerVersioningPinsRuns: with worker.deployment set, the first
// build of a deployment becomes its current version, and a run and its
// sub-agents are pinned to that build and finish on it.
func TestWorkerVersioningPinsRuns(t *testing.T) {
	h := newHarness(t, scripted.DemoScript())
	t.Setenv("CODESWARM_WORKER_DEPLOYMENT", "codeswarm-e2e")
	t.Setenv("CODESWARM_WORKER_BUILD_ID", "build-1")
	const id = "swarm-versioned"
	code, res := h.runJSON("run", "--repo", faultRepo(t), "--task", scripted.DemoTask, "--id", id)
	if code != 0 || !res.Success {
		t.Fatalf("versioned run exited %d: %s\n%s", code, fmtResult(res), tail(h.logs.String(), 3000))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	runs := []string{id}
	it := h.client.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetChildWorkflowExecutionStartedEventAttributes(); a != nil {
			runs = append(runs, a.GetWorkflowExecution().GetWorkflowId())
		}
	}
	if len(runs) < 2 {
		t.Fatalf("the run started no sub-agent: %v", runs)
	}
	for _, wf := range runs {
		desc, err := h.client.DescribeWorkflowExecution(ctx, wf, "")
		if err != nil {
			t.Fatal(err)
		}
		vi := desc.GetWorkflowExecutionInfo().GetVersioningInfo()
		if vi.GetBehavior() != enumspb.VERSIONING_BEHAVIOR_PINNED || vi.GetDeploymentVersion().GetBuildId() != "build-1" ||
			vi.GetDeploymentVersion().GetDeploymentName() != "codeswarm-e2e" {
			t.Errorf("%s: versioning %v, want pinned to codeswarm-e2e build-1", wf, vi)
		}
	}
	d, err := h.client.WorkerDeploymentClient().GetHandle("codeswarm-e2e").Describe(ctx, client.WorkerDeploymentDescribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cur := d.Info.RoutingConfig.CurrentVersion; cur == nil || cur.BuildID != "build-1" {
		t.Errorf("deployment's current version %v, want build-1", cur)
	}
}
