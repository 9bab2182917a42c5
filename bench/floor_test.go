package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// Temporal's floor: the Temporal work of a run shaped like codeswarm's, with
// every activity a no-op. A sub-agent is one activity (StartSubtask's
// place), its model calls and tool calls as local activities back to back
// (a call sleeps the model's latency), one activity (CommitSubtask's
// place), with codeswarm's sub-agent workflow task timeout; the parent runs
// two activities (PrepareRun, Plan: the planner's call sleeps the model's
// latency too), starts the sub-agents up to the concurrency, runs one merge
// activity for every batch of ends it wakes to, and a last activity
// (FinishRun). No git, no files, no model server, no transcript, journal,
// search attribute or memo. What codeswarm takes beyond this floor plus
// the in-process loop's own work is codeswarm's; the floor alone is what
// any design with this shape pays the embedded server and the SDK.

// floorQueue is the task queue of the floor's worker.
const floorQueue = "floor"

// floorShape is one run of the floor.
type floorShape struct {
	Agents, Calls, Concurrency int
	Latency                    time.Duration // each model call's
}

// floorParent is the run.
func floorParent(ctx workflow.Context, sh floorShape) error {
	ao := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	if err := workflow.ExecuteActivity(ao, floorNoop).Get(ctx, nil); err != nil {
		return err
	}
	if err := workflow.ExecuteActivity(ao, floorCall, sh.Latency).Get(ctx, nil); err != nil {
		return err
	}
	id := workflow.GetInfo(ctx).WorkflowExecution.ID
	sel := workflow.NewSelector(ctx)
	next, running, ended, unmerged := 0, 0, 0, 0
	var failed error
	for ended < sh.Agents {
		for running < sh.Concurrency && next < sh.Agents {
			cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
				WorkflowID:          fmt.Sprintf("%s.%04d", id, next),
				WorkflowTaskTimeout: 2 * time.Second, // as workflows.subAgentTaskTimeout
			})
			sel.AddFuture(workflow.ExecuteChildWorkflow(cctx, floorChild, sh), func(f workflow.Future) {
				if err := f.Get(ctx, nil); err != nil && failed == nil {
					failed = err
				}
				running--
				ended++
				unmerged++
			})
			next++
			running++
		}
		sel.Select(ctx)
		for sel.HasPending() {
			sel.Select(ctx)
		}
		if failed != nil {
			return failed
		}
		if unmerged > 0 {
			if err := workflow.ExecuteActivity(ao, floorNoop).Get(ctx, nil); err != nil {
				return err
			}
			unmerged = 0
		}
	}
	return workflow.ExecuteActivity(ao, floorNoop).Get(ctx, nil)
}

// floorChild is a sub-agent: calls model calls, a tool call after each but
// the last.
func floorChild(ctx workflow.Context, sh floorShape) error {
	ao := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	if err := workflow.ExecuteActivity(ao, floorNoop).Get(ctx, nil); err != nil {
		return err
	}
	lo := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: time.Minute})
	for i := range sh.Calls {
		if err := workflow.ExecuteLocalActivity(lo, floorCall, sh.Latency).Get(ctx, nil); err != nil {
			return err
		}
		if i < sh.Calls-1 {
			if err := workflow.ExecuteLocalActivity(lo, floorNoop).Get(ctx, nil); err != nil {
				return err
			}
		}
	}
	return workflow.ExecuteActivity(ao, floorNoop).Get(ctx, nil)
}

func floorNoop(context.Context) error { return nil }

// floorCall stands for a model call of latency d.
func floorCall(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startFloor starts the floor's worker on the stack's server.
func (s *stack) startFloor() {
	w := worker.New(s.client, floorQueue, worker.Options{})
	w.RegisterWorkflow(floorParent)
	w.RegisterWorkflow(floorChild)
	w.RegisterActivity(floorNoop)
	w.RegisterActivity(floorCall)
	if err := w.Start(); err != nil {
		s.t.Fatalf("floor worker: %v", err)
	}
	s.t.Cleanup(w.Stop)
}

// runFloor runs sh once and returns its wall time (from the start request
// to the result) and the process's CPU time meanwhile.
func (s *stack) runFloor(sh floorShape) (wall, cpu time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	c0, t0 := cpuTime(), time.Now()
	run, err := s.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: fmt.Sprintf("floor-%d", time.Now().UnixNano()), TaskQueue: floorQueue,
	}, floorParent, sh)
	if err == nil {
		err = run.Get(ctx, nil)
	}
	if err != nil {
		s.t.Fatalf("floor run: %v", err)
	}
	return time.Since(t0), cpuTime() - c0
}

// cpuTime is the CPU time (user + system) of this process and of its
// waited-for children (git).
func cpuTime() time.Duration {
	self, kids := cpuTimes()
	return self + kids
}

// cpuTimes is cpuTime in two: this process's, its children's.
func cpuTimes() (self, kids time.Duration) {
	var s, k syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &s)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &k)
	sum := func(r syscall.Rusage) time.Duration {
		return time.Duration(r.Utime.Nano() + r.Stime.Nano())
	}
	return sum(s), sum(k)
}

// benchFloor: B1, B2 and B3's shapes on the floor, each run side by side
// with codeswarm and the in-process loop, with their CPU times: codeswarm's
// best possible figure is about the in-process loop's plus the floor's.
func benchFloor(t *testing.T) {
	for _, c := range []struct {
		name  string
		w     workload
		conc  int
		flags []string
	}{
		{"B1 shape (1 × 201 calls, 0 ms)", workload{agents: independent(1, 201)}, 1, nil},
		{"B2 shape (100 × 15 calls, 0 ms)", workload{agents: independent(100, 15)}, 100, []string{"--max-concurrent", "100"}},
		{"B3 shape (10 × 15 calls, 200 ms)", workload{agents: independent(10, 15), latency: 200 * time.Millisecond}, 10, []string{"--max-concurrent", "10"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			calls := c.w.agents[0].calls
			settings := swarmSettings(len(c.w.agents), calls, c.conc)
			if len(c.w.agents) == 1 {
				settings = oneAgentSettings(calls) // as B1
			}
			s := startStack(t, c.w, settings)
			s.startFloor()
			sh := floorShape{Agents: len(c.w.agents), Calls: calls, Concurrency: c.conc, Latency: c.w.latency}
			var fw, fc, cw, cc, bw, bc []time.Duration
			for i := range runs(t) {
				stop := contenderProfile(t, c.name, "floor", i)
				w, cpu := s.runFloor(sh)
				stop()
				fw, fc = append(fw, w), append(fc, cpu)
				s0, k0 := cpuTimes()
				stop = contenderProfile(t, c.name, "codeswarm", i)
				d, _ := s.runCodeswarm(c.w, c.flags...)
				stop()
				s1, k1 := cpuTimes()
				cw, cc = append(cw, d), append(cc, s1+k1-s0-k0)
				stop = contenderProfile(t, c.name, "inprocess", i)
				bw = append(bw, s.runBaseline(c.w, c.conc))
				stop()
				s2, k2 := cpuTimes()
				bc = append(bc, s2+k2-s1-k1)
				t.Logf("run %d: floor %s (CPU %s), codeswarm %s (CPU %s: process %s, git %s), in-process %s (CPU %s: process %s, git %s)",
					i+1, secs(fw[i]), secs(fc[i]), secs(cw[i]), secs(cc[i]), secs(s1-s0), secs(k1-k0),
					secs(bw[i]), secs(bc[i]), secs(s2-s1), secs(k2-k1))
			}
			f, cs, b := median(fw), median(cw), median(bw)
			row(t, "Floor, "+c.name,
				fmt.Sprintf("%s (CPU %s)", secs(cs), secs(median(cc))),
				fmt.Sprintf("%s (CPU %s)", secs(b), secs(median(bc))),
				fmt.Sprintf("%.2fx", cs.Seconds()/b.Seconds()),
				fmt.Sprintf("Temporal's floor: **%s** (CPU %s); floor CPU / in-process CPU %.2f", secs(f), secs(median(fc)), median(fc).Seconds()/median(bc).Seconds()))
		})
	}
}

// contenderProfile writes a CPU profile of one contender's run when
// CODESWARM_BENCH_PROFILE_DIR names a directory: DIR/<shape>-<contender>-<run>.pprof.
// The contenders run one after the other on the same server, so each
// profile holds that contender's share of the server's work too, which a
// profile of the whole test (-test.cpuprofile) mixes up. Not with
// -test.cpuprofile: a process has one CPU profile at a time.
func contenderProfile(t *testing.T, shape, contender string, run int) (stop func()) {
	dir := os.Getenv("CODESWARM_BENCH_PROFILE_DIR")
	if dir == "" {
		return func() {}
	}
	name := strings.Fields(shape)[0] // "B1", "B2", "B3"
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%s-%d.pprof", name, contender, run+1)))
	if err != nil {
		t.Fatalf("profile: %v", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		t.Fatalf("profile: %v", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}
}
