package gitops

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// source runs Source in the background and reports what it returned.
func source(p *WorktreePool, ctx context.Context, key string) <-chan sourceResult {
	ch := make(chan sourceResult, 1)
	go func() {
		parked, done, err := p.Source(ctx, key)
		ch <- sourceResult{parked, done, err}
	}()
	return ch
}

// idlePool is a pool that sees the CPUs idle, whatever the machine's
// load.
func idlePool(fresh int) *WorktreePool {
	p := NewWorktreePool(fresh)
	p.saturated = func() bool { return false }
	return p
}

type sourceResult struct {
	parked string
	done   func()
	err    error
}

func waiting(t *testing.T, ch <-chan sourceResult) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("Source returned %q, %v; want it to wait", r.parked, r.err)
	case <-time.After(50 * time.Millisecond):
	}
}

func got(t *testing.T, ch <-chan sourceResult) sourceResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("Source still waits")
	}
	return sourceResult{}
}

// TestWorktreePoolSource: a parked worktree of the key comes first; without
// one a start takes a fresh slot while one is free, and otherwise waits for
// a worktree to be parked or a fresh checkout to end, whichever is first.
func TestWorktreePoolSource(t *testing.T) {
	ctx := context.Background()
	p := idlePool(1)
	p.Put("run-a", "/pool/1")

	if r := got(t, source(p, ctx, "run-a")); r.parked != "/pool/1" || r.err != nil {
		t.Fatalf("Source = %q, %v; want the parked /pool/1", r.parked, r.err)
	}
	fresh := got(t, source(p, ctx, "run-a"))
	if fresh.parked != "" || fresh.err != nil {
		t.Fatalf("Source = %q, %v; want a fresh slot", fresh.parked, fresh.err)
	}

	// The only slot is taken: the next start waits, and a worktree parked
	// for another run does not serve it.
	w := source(p, ctx, "run-a")
	waiting(t, w)
	p.Put("run-b", "/pool/b")
	waiting(t, w)
	p.Put("run-a", "/pool/2")
	if r := got(t, w); r.parked != "/pool/2" {
		t.Fatalf("the waiting start got %q, want /pool/2, parked while it waited", r.parked)
	}

	// The slot frees: the waiting start takes it.
	w = source(p, ctx, "run-a")
	waiting(t, w)
	fresh.done()
	r := got(t, w)
	if r.parked != "" || r.err != nil {
		t.Fatalf("Source = %q, %v; want the freed slot", r.parked, r.err)
	}

	// Cancelled while waiting: the context's error, nothing held.
	cctx, cancel := context.WithCancel(ctx)
	w = source(p, cctx, "run-a")
	waiting(t, w)
	cancel()
	if r := got(t, w); !errors.Is(r.err, context.Canceled) {
		t.Fatalf("cancelled Source err = %v", r.err)
	}
	r.done()
	if r := got(t, source(p, ctx, "run-a")); r.parked != "" || r.err != nil {
		t.Fatalf("after the slot's release Source = %q, %v; want the slot", r.parked, r.err)
	}
	if left := p.Forget("run-b"); len(left) != 1 || left[0] != "/pool/b" || p.Len("run-b") != 0 {
		t.Errorf("Forget(run-b) = %v, Len %d", left, p.Len("run-b"))
	}
}

// warm gives key "run" of p a fresh checkout that took cost, then puts back
// and takes each of dirs, gap apart.
func warm(t *testing.T, p *WorktreePool, cost, gap time.Duration, dirs ...string) {
	t.Helper()
	first := got(t, source(p, context.Background(), "run"))
	if first.parked != "" {
		t.Fatalf("first Source = %q, want a fresh slot (nothing is known yet)", first.parked)
	}
	time.Sleep(cost)
	first.done()
	for _, dir := range dirs {
		time.Sleep(gap)
		p.Put("run", dir)
		if r := got(t, source(p, context.Background(), "run")); r.parked != dir {
			t.Fatalf("Source = %q, want %s", r.parked, dir)
		}
	}
}

// waitsFor checks that a start for "run" waits, and gets dir once it is put
// back.
func waitsFor(t *testing.T, p *WorktreePool, dir string) {
	t.Helper()
	w := source(p, context.Background(), "run")
	waiting(t, w)
	p.Put("run", dir)
	if r := got(t, w); r.parked != dir {
		t.Fatalf("the waiting start got %q, want %s", r.parked, dir)
	}
}

// TestWorktreePoolWaitsWhenParkedIsSooner: once worktrees come back faster
// than a fresh checkout takes, a start waits for the next one although a
// fresh slot is free; when none comes back for a while, it checks out
// afresh.
func TestWorktreePoolWaitsWhenParkedIsSooner(t *testing.T) {
	ctx := context.Background()
	p := idlePool(2)
	warm(t, p, 300*time.Millisecond, 0, "/pool/a", "/pool/b", "/pool/c")

	// Three came back within a few milliseconds: the next is expected
	// sooner than a fresh checkout, so the start waits for it.
	waitsFor(t, p, "/pool/d")

	// Nothing more comes back: the rate falls, and the start checks out
	// afresh.
	start := time.Now()
	r := got(t, source(p, ctx, "run"))
	if r.parked != "" || r.err != nil || time.Since(start) < 100*time.Millisecond {
		t.Fatalf("Source = %q, %v after %v; want a fresh slot once waiting no longer pays", r.parked, r.err, time.Since(start))
	}
	r.done()
}

// TestWorktreePoolWaitsWhileCPUsAreSaturated: with the CPUs saturated a
// start waits for a worktree coming back although a fresh checkout would
// be sooner for it, and checks out afresh once none has come back for a
// fresh checkout's time, or once the CPUs have time to spare.
func TestWorktreePoolWaitsWhileCPUsAreSaturated(t *testing.T) {
	ctx := context.Background()
	p := NewWorktreePool(2)
	var busy atomic.Bool
	p.saturated = busy.Load
	busy.Store(true)
	// Two came back, slowly: by the rate a fresh checkout is sooner.
	warm(t, p, 200*time.Millisecond, 500*time.Millisecond, "/pool/a", "/pool/b")
	if p.stats["run"].parkedSooner(time.Now()) {
		t.Fatal("the test's rate already favours waiting; it would not test saturation")
	}
	waitsFor(t, p, "/pool/c")

	// None comes back: after a fresh checkout's time it checks out afresh.
	start := time.Now()
	r := got(t, source(p, ctx, "run"))
	if r.parked != "" || time.Since(start) < 100*time.Millisecond {
		t.Fatalf("Source = %q after %v; want a fresh slot once nothing came back for a while", r.parked, time.Since(start))
	}
	r.done()

	// Time to spare: a fresh checkout at once.
	p.Put("run", "/pool/d")
	p.Put("run", "/pool/e")
	got(t, source(p, ctx, "run"))
	got(t, source(p, ctx, "run"))
	busy.Store(false)
	if r := got(t, source(p, ctx, "run")); r.parked != "" {
		t.Fatalf("Source = %q; want a fresh slot with the CPUs idle", r.parked)
	} else {
		r.done()
	}
}

// TestProcStat: the CPU counters are read, idle no more than the total.
func TestProcStat(t *testing.T) {
	idle, all, ok := procStat()
	if _, err := os.Stat("/proc/stat"); err != nil {
		t.Skip("no /proc/stat here")
	}
	if !ok || all == 0 || idle > all {
		t.Fatalf("procStat = %d idle of %d, %v", idle, all, ok)
	}
}

// TestWorktreePoolSourceQuick: a start that must not wait long takes a
// parked worktree or a free slot at once, waits no longer than it was
// given for one to come, gives up holding nothing, and takes no fresh slot
// when the key's fresh checkouts are known to take longer than allowed.
func TestWorktreePoolSourceQuick(t *testing.T) {
	ctx := context.Background()
	p := idlePool(1)
	quick := func(wait, maxFresh time.Duration) (string, func(), bool, time.Duration) {
		t.Helper()
		start := time.Now()
		parked, done, ok, err := p.SourceQuick(ctx, "run", wait, maxFresh)
		if err != nil {
			t.Fatalf("SourceQuick: %v", err)
		}
		return parked, done, ok, time.Since(start)
	}

	// Nothing known yet: a free slot is taken at once.
	parked, slot, ok, _ := quick(time.Second, 100*time.Millisecond)
	if !ok || parked != "" {
		t.Fatalf("SourceQuick = %q, ok %v; want the free slot", parked, ok)
	}
	// The slot is held: it gives up after its wait, holding nothing.
	if parked, _, ok, took := quick(150*time.Millisecond, 0); ok || took < 150*time.Millisecond || took > 5*time.Second {
		t.Fatalf("SourceQuick with no slot = %q, ok %v after %v; want it to give up after 150ms", parked, ok, took)
	}
	// A worktree put back while it waits serves it.
	go func() { time.Sleep(50 * time.Millisecond); p.Put("run", "/pool/a") }()
	if parked, _, ok, _ := quick(5*time.Second, 0); !ok || parked != "/pool/a" {
		t.Fatalf("SourceQuick = %q, ok %v; want /pool/a, put back while it waited", parked, ok)
	}
	time.Sleep(120 * time.Millisecond)
	slot() // that fresh checkout took ~170 ms

	// Fresh checkouts take longer than allowed: no slot, although one is
	// free, and a plain Source still takes it.
	if parked, _, ok, took := quick(100*time.Millisecond, 50*time.Millisecond); ok || took < 100*time.Millisecond {
		t.Fatalf("SourceQuick = %q, ok %v after %v; want no fresh slot for a checkout known to take ~170ms", parked, ok, took)
	}
	if parked, _, ok, _ := quick(100*time.Millisecond, time.Second); !ok || parked != "" {
		t.Fatalf("SourceQuick = %q, ok %v; want the free slot when fresh checkouts are quick enough", parked, ok)
	}
}

// SourceQuick with maxFresh < 0 takes no fresh slot at all, only a parked
// worktree.
func TestWorktreePoolSourceQuickParkedOnly(t *testing.T) {
	p := idlePool(2)
	if _, _, ok, err := p.SourceQuick(context.Background(), "run", 100*time.Millisecond, -1); ok || err != nil {
		t.Fatalf("SourceQuick(parked only) with free slots = ok %v, %v; want it to give up", ok, err)
	}
	p.Put("run", "/pool/a")
	if parked, _, ok, err := p.SourceQuick(context.Background(), "run", 100*time.Millisecond, -1); !ok || parked != "/pool/a" || err != nil {
		t.Fatalf("SourceQuick(parked only) = %q, ok %v, %v; want /pool/a", parked, ok, err)
	}
}
