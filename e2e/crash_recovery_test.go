package e2e

import (
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"codeswarm/llm/scripted"
)

// fastRecoveryBound is half the heartbeat timeout (20 s), which bounded
// recovery from a kill before restarted workers failed their predecessor's
// activities.
const fastRecoveryBound = 10 * time.Second

// killInFlight waits until a sub-agent has asked the model, kills the worker
// with at least one model call in flight (see killWorker), and waits (at
// most bound) until the interrupted calls are sent again. It returns that
// recovery time.
func (r *crashRig) killInFlight(bound time.Duration) time.Duration {
	r.t.Helper()
	seen := len(r.model.Requests())
	waitFor(r.t, 2*time.Minute, func() bool {
		return slices.ContainsFunc(r.model.Requests()[seen:], func(q scripted.Request) bool { return q.Kind == scripted.KindAgent })
	})
	r.killWorker(1)
	k := r.kills[len(r.kills)-1]
	var took time.Duration
	waitFor(r.t, bound, func() bool {
		took = recoveryAfter(k, r.model.Requests())
		return took > 0
	})
	return took
}

// TestWorkerRestartRetriesAtOnce: a worker SIGKILLed during a model call and
// restarted fails the call it had in flight (from its in-flight journal), so
// the call is sent again within seconds, not after the heartbeat timeout;
// the run then finishes normally.
func TestWorkerRestartRetriesAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("kills worker processes")
	}
	r := newCrashRig(t, slowDemo(time.Second))
	repo := t.TempDir()
	if err := scripted.WriteDemoRepo(repo); err != nil {
		t.Fatal(err)
	}
	r.startWorker()
	r.startRun(repo, "restart-fast")
	took := r.killInFlight(fastRecoveryBound)
	t.Logf("interrupted model call sent again %s after the kill", took.Round(time.Millisecond))
	if res := r.await("restart-fast"); !res.Success {
		t.Fatalf("run failed after a restart: %s", res.Error)
	}
	r.reportKills(0)
}

// TestBenchCrashRecovery measures B6: from a worker's SIGKILL (and immediate
// restart) to the interrupted sub-agent's next model call, over several
// kills, for a model that answers in 1 s (its calls are activities) and in
// 300 ms (from the second call on they are local activities, and recovery
// fails their workflow task). Run it with CODESWARM_BENCH=1 go test
// -count=1 -run '^TestBenchCrashRecovery$' -v ./e2e/.
func TestBenchCrashRecovery(t *testing.T) {
	if os.Getenv("CODESWARM_BENCH") == "" {
		t.Skip("benchmark; set CODESWARM_BENCH=1")
	}
	for _, c := range []struct {
		name    string
		latency time.Duration
	}{{"activities", time.Second}, {"local", crashLatency}} {
		t.Run(c.name, func(t *testing.T) { benchRecovery(t, c.latency) })
	}
}

func benchRecovery(t *testing.T, latency time.Duration) {
	const kills = 5
	script := slowDemo(latency)
	// The planner answers as slowly: its speed decides whether the
	// sub-agents' first calls run locally (SubAgentInput.FastModel).
	for i := range script.Planner {
		script.Planner[i].Delay = scripted.Duration(latency)
	}
	r := newCrashRig(t, script)
	r.startWorker()
	var took []time.Duration
	tasks := 0
	for run := 0; len(took) < kills; run++ {
		repo := t.TempDir()
		if err := scripted.WriteDemoRepo(repo); err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("bench-recovery-%d", run)
		r.startRun(repo, id)
		for i := 0; i < 2 && len(took) < kills; i++ {
			took = append(took, r.killInFlight(time.Minute))
		}
		res := r.await(id)
		if !res.Success {
			t.Fatalf("run %s failed: %s", id, res.Error)
		}
		failed, _ := restartFailures(t, r.client, res)
		tasks += failed
	}
	slices.Sort(took)
	median := took[len(took)/2]
	t.Logf("B6 crash recovery, model answers in %s, over %d kills: median %s, min %s, max %s (all %v); workflow tasks failed by the restarted worker: %d",
		latency, len(took), median.Round(time.Millisecond), took[0].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond), took, tasks)
	if median >= 5*time.Second {
		t.Errorf("median recovery %s, target < 5 s", median)
	}
}
