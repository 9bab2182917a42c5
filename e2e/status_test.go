package e2e

import (
	"strings"
	"testing"

	"codeswarm/llm/scripted"
)

// TestStatusWithoutWorker: a run started with --no-worker while no worker
// is up; status says so in one plain line, not with a gRPC error.
func TestStatusWithoutWorker(t *testing.T) {
	h := newHarness(t, scripted.DemoScript())
	const id = "swarm-status-no-worker"
	if code, out := h.run("run", "--repo", faultRepo(t), "--task", scripted.DemoTask, "--id", id, "--detach", "--no-worker"); code != 0 {
		t.Fatalf("run --detach exited %d:\n%s\n%s", code, out, tail(h.logs.String(), 2000))
	}
	code, out := h.run("status", id)
	if code != 0 {
		t.Fatalf("status exited %d:\n%s", code, out)
	}
	mustContain(t, "status", out, "no worker is running: start one with `codeswarm dev` or `codeswarm watch "+id+"`")
	if strings.Contains(out, "rpc error") || strings.Contains(out, "progress not available") {
		t.Errorf("status shows an RPC error:\n%s", out)
	}
}
