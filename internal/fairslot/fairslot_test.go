package fairslot

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// waitFor polls until s has n waiters, so that a test queues callers in a
// known order.
func waitFor(t *testing.T, s *Slots, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.Waiting() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d waiters, want %d", s.Waiting(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func mustAcquire(t *testing.T, s *Slots, key string) func() {
	t.Helper()
	release, err := s.Acquire(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return release
}

func TestCapHoldsAndReleaseFreesOne(t *testing.T) {
	s := New(2, true)
	r1, r2 := mustAcquire(t, s, "a"), mustAcquire(t, s, "b")
	got := make(chan func())
	go func() { got <- mustAcquire(t, s, "c") }()
	waitFor(t, s, 1)
	select {
	case <-got:
		t.Fatal("a third caller got one of 2 slots")
	case <-time.After(50 * time.Millisecond):
	}
	r1()
	r1() // a second release must not free another slot
	r3 := <-got
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.Acquire(ctx, "d"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire with both slots held = %v, want deadline exceeded", err)
	}
	if s.Waiting() != 0 {
		t.Fatalf("a caller that gave up still waits (%d waiting)", s.Waiting())
	}
	r2()
	r3()
	mustAcquire(t, s, "e")()
}

// grantOrder holds the only slot, queues the callers in order (key per
// caller), releases it and returns the keys in the order they got it.
func grantOrder(t *testing.T, fair bool, keys ...string) []string {
	t.Helper()
	s := New(1, fair)
	hold := mustAcquire(t, s, "holder")
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	for i, k := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			release := mustAcquire(t, s, k)
			mu.Lock()
			order = append(order, k)
			mu.Unlock()
			release()
		}()
		waitFor(t, s, i+1)
	}
	hold()
	wg.Wait()
	return order
}

func TestNextSlotGoesToTheKeyWithFewestGrants(t *testing.T) {
	got := grantOrder(t, true, "a", "a", "a", "a", "b", "c")
	want := []string{"a", "b", "c", "a", "a", "a"}
	if !equal(got, want) {
		t.Errorf("fair grant order %v, want %v", got, want)
	}
	got = grantOrder(t, false, "a", "a", "a", "a", "b", "c")
	want = []string{"a", "a", "a", "a", "b", "c"}
	if !equal(got, want) {
		t.Errorf("first-come grant order %v, want %v", got, want)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// share runs, on one slot, 10 callers of key "big" and 1 of key "small",
// each taking the slot in a loop as a sub-agent calls its model, and
// returns small's share of the grants while both wanted the slot.
func share(t *testing.T, fair bool) float64 {
	t.Helper()
	const smallCalls = 20
	s := New(1, fair)
	var mu sync.Mutex
	var order []string
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	take := func(key string) bool {
		release, err := s.Acquire(ctx, key)
		if err != nil {
			return false
		}
		mu.Lock()
		order = append(order, key)
		mu.Unlock()
		time.Sleep(time.Millisecond) // the model answers
		release()
		return true
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			for take("big") {
			}
		})
	}
	waitFor(t, s, 9)
	for range smallCalls {
		take("small")
	}
	stop()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	last := 0
	for i, k := range order {
		if k == "small" {
			last = i
		}
	}
	return float64(smallCalls) / float64(last+1)
}

func TestSmallKeyGetsItsShareBesideABigOne(t *testing.T) {
	fair, fifo := share(t, true), share(t, false)
	t.Logf("small key's share of the slot: %.0f%% fair, %.0f%% first come, first served", 100*fair, 100*fifo)
	if fair < 0.45 {
		t.Errorf("small key got %.0f%% of the grants beside 10 big callers, want about half", 100*fair)
	}
	if fifo > 0.2 {
		t.Errorf("first come, first served gave the small key %.0f%%, want about 1/11: the comparison does not hold", 100*fifo)
	}
}

// TestBackloggedKeyIsNotStarved: keys that each wait one call at a time and
// come back at once do not shut out a key that always has calls waiting.
func TestBackloggedKeyIsNotStarved(t *testing.T) {
	const cyclers, grants = 5, 300
	s := New(1, true)
	var mu sync.Mutex
	count := map[string]int{}
	total := 0
	ctx, stop := context.WithCancel(context.Background())
	take := func(key string) bool {
		release, err := s.Acquire(ctx, key)
		if err != nil {
			return false
		}
		mu.Lock()
		count[key]++
		total++
		done := total >= grants
		mu.Unlock()
		time.Sleep(100 * time.Microsecond)
		release()
		if done {
			stop()
		}
		return !done
	}
	var wg sync.WaitGroup
	for range 3 { // the backlogged key: several calls waiting at once
		wg.Go(func() {
			for take("backlog") {
			}
		})
	}
	for i := range cyclers {
		wg.Go(func() {
			for take(fmt.Sprint("cycler-", i)) {
			}
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	// Fair: 1/6 each. Starved: next to nothing.
	if share := float64(count["backlog"]) / float64(total); share < 0.1 {
		t.Errorf("backlogged key got %.0f%% of %d grants beside %d keys waiting one call at a time, want about 1/%d: %v", 100*share, total, cyclers, cyclers+1, count)
	}
}

func TestCancelledWaiterLeavesNoTrace(t *testing.T) {
	s := New(1, true)
	hold := mustAcquire(t, s, "a")
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() {
		_, err := s.Acquire(ctx, "b")
		errc <- err
	}()
	waitFor(t, s, 1)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Acquire = %v", err)
	}
	hold()
	// The slot is free again: one caller gets it at once.
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	release, err := s.Acquire(ctx2, "c")
	if err != nil {
		t.Fatalf("slot not freed after the only waiter gave up: %v", err)
	}
	release()
}

// TestManyKeysUnderRace hammers the slots from many goroutines: the cap is
// never passed and every caller eventually gets a slot.
func TestManyKeysUnderRace(t *testing.T) {
	const slots = 3
	s := New(slots, true)
	var mu sync.Mutex
	inUse, peak := 0, 0
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			key := string(rune('a' + i%5))
			for range 25 {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%3)*time.Millisecond+time.Millisecond)
				release, err := s.Acquire(ctx, key)
				cancel()
				if err != nil {
					continue
				}
				mu.Lock()
				inUse++
				peak = max(peak, inUse)
				mu.Unlock()
				time.Sleep(50 * time.Microsecond)
				mu.Lock()
				inUse--
				mu.Unlock()
				release()
			}
		})
	}
	wg.Wait()
	if peak > slots {
		t.Errorf("%d callers held a slot at once, cap %d", peak, slots)
	}
	for range slots {
		mustAcquire(t, s, "z")
	}
	if s.Waiting() != 0 {
		t.Errorf("%d waiters left behind", s.Waiting())
	}
}
