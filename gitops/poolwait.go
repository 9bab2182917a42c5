package gitops

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// WorktreePool keeps parked worktrees (ParkWorktree), a list per key (a
// run), for the next worktree of the same key, and bounds the fresh
// checkouts in flight. A new worktree is best made from a parked one: that
// checks out only the files that differ (20 ms for a 10,000-file
// repository against 2.2 s for all of them, BENCHMARKS.md), and every
// fresh checkout takes CPU from the sub-agents at work. Source hands out a
// parked worktree when there is one. Otherwise it compares two waits: for
// the next parked worktree (the key's worktrees come back at a measured
// rate, and the starts already waiting for one go first) and for a fresh
// checkout (its measured duration). It waits for a parked one when that is
// expected sooner; else it takes a slot for a fresh checkout when one is
// free, or waits for a slot or a parked worktree, whichever comes first.
// In a wide run of quick sub-agents most starts wait a moment for a
// worktree coming back; when sub-agents take minutes, as with a real
// model, every start checks out afresh at once.
//
// On a machine whose CPUs are saturated a fresh checkout adds no sub-agent
// that could run: it only takes CPU from the ones at work (two cores, a
// run of quick sub-agents: a few worktrees coming back keep the CPUs
// busy). There a start waits for a parked worktree as long as the key's
// worktrees keep coming back, and the pool grows only while the CPUs have
// time to spare.
type WorktreePool struct {
	mu    sync.Mutex
	ready map[string][]string
	stats map[string]*poolStats
	fresh chan struct{} // a token per fresh checkout in flight
	// changed is closed (and replaced) when a worktree is put back or a
	// fresh checkout ends: what a waiting Source waits for.
	changed chan struct{}
	// saturated reports whether the CPUs are all but fully busy
	// (cpuSaturation.busy; tests replace it).
	saturated func() bool
}

// poolStats is what a key's Sources weigh: how fast its worktrees come
// back and how long a fresh checkout takes.
type poolStats struct {
	puts      [putWindow]time.Time // the latest Puts, a ring
	n         int                  // Puts recorded, up to putWindow
	next      int                  // where the next Put goes in the ring
	freshCost time.Duration        // moving average of a fresh checkout's duration
	waiting   int                  // Sources waiting for a parked worktree
}

// putWindow is how many of the latest Puts the return rate is taken over.
const putWindow = 32

// NewWorktreePool returns an empty pool that allows fresh fresh checkouts
// at a time (at least one).
func NewWorktreePool(fresh int) *WorktreePool {
	p := &WorktreePool{
		ready:   map[string][]string{},
		stats:   map[string]*poolStats{},
		fresh:   make(chan struct{}, max(fresh, 1)),
		changed: make(chan struct{}),
	}
	p.saturated = new(cpuSaturation).busy
	return p
}

// Put adds the parked worktree at dir to key's list.
func (p *WorktreePool) Put(key, dir string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ready[key] = append(p.ready[key], dir)
	st := p.statsLocked(key)
	st.puts[st.next] = time.Now()
	st.next = (st.next + 1) % putWindow
	st.n = min(st.n+1, putWindow)
	p.notifyLocked()
}

// Source decides where key's next worktree comes from: a parked worktree
// (parked != "", taken off the list: Put it back if it was not used), or a
// fresh checkout (parked ""), for which it holds a slot until done is
// called. done must be called either way; err is the context's.
func (p *WorktreePool) Source(ctx context.Context, key string) (parked string, done func(), err error) {
	parked, done, _, err = p.source(ctx, key, nil, 0)
	return parked, done, err
}

// SourceQuick is Source for a caller that must not wait long: a local
// activity, which holds its workflow task while it runs. It gives up (ok
// false, nothing taken) when neither a parked worktree nor a fresh slot
// comes within wait, and it takes no fresh slot when a fresh checkout of
// key is known to take longer than maxFresh, or at all when maxFresh < 0:
// the caller then starts the worktree where a wait costs nothing (an
// activity) and calls Source.
func (p *WorktreePool) SourceQuick(ctx context.Context, key string, wait, maxFresh time.Duration) (parked string, done func(), ok bool, err error) {
	t := time.NewTimer(wait)
	defer t.Stop()
	return p.source(ctx, key, t.C, maxFresh)
}

// source is Source, given up when giveUp fires (ok false), and with no
// fresh checkout when maxFresh > 0 and key's fresh checkouts take longer,
// or when maxFresh < 0.
func (p *WorktreePool) source(ctx context.Context, key string, giveUp <-chan time.Time, maxFresh time.Duration) (parked string, done func(), ok bool, err error) {
	for {
		p.mu.Lock()
		if list := p.ready[key]; len(list) > 0 {
			parked = list[len(list)-1]
			p.ready[key] = list[:len(list)-1]
			p.mu.Unlock()
			return parked, func() {}, true, nil
		}
		st := p.statsLocked(key)
		var recheck <-chan time.Time
		now := time.Now()
		noFresh := maxFresh < 0 || (maxFresh > 0 && st.freshCost > maxFresh)
		parkFirst := noFresh || st.parkedSooner(now) || (st.coming(now) && p.saturated())
		if parkFirst && !noFresh {
			// Look again after a fresh checkout's time: if nothing came
			// back by then, the rate has fallen and a fresh one wins.
			recheck = time.After(st.freshCost)
			st.waiting++
		}
		wake := p.changed
		p.mu.Unlock()
		if !parkFirst {
			select {
			case p.fresh <- struct{}{}:
				return "", p.freshDone(key, time.Now()), true, nil
			default:
			}
		}
		gaveUp := false
		select {
		case <-wake:
		case <-recheck:
		case <-giveUp:
			gaveUp = true
		case <-ctx.Done():
		}
		if recheck != nil {
			p.mu.Lock()
			st.waiting--
			p.mu.Unlock()
		}
		if ctx.Err() != nil {
			return "", nil, false, fmt.Errorf("wait for a worktree: %w", ctx.Err())
		}
		if gaveUp {
			return "", nil, false, nil
		}
	}
}

// parkedSooner: a parked worktree is expected back before a fresh checkout
// would be done, for a start queued behind the ones already waiting.
func (st *poolStats) parkedSooner(now time.Time) bool {
	if st.n < 2 || st.freshCost <= 0 {
		return false
	}
	oldest := st.puts[(st.next-st.n+putWindow)%putWindow]
	span := now.Sub(oldest)
	if span <= 0 {
		return true
	}
	rate := float64(st.n) / span.Seconds() // worktrees back per second
	return float64(st.waiting+1)/rate < st.freshCost.Seconds()
}

// coming: the key's worktrees come back, the latest within the span of a
// fresh checkout, so waiting for the next one does not wait on nothing.
func (st *poolStats) coming(now time.Time) bool {
	if st.n < 2 || st.freshCost <= 0 {
		return false
	}
	latest := st.puts[(st.next-1+putWindow)%putWindow]
	return now.Sub(latest) < st.freshCost
}

// freshDone is the done of a fresh checkout begun at start: it frees the
// slot and feeds the checkout's duration into the key's average.
func (p *WorktreePool) freshDone(key string, start time.Time) func() {
	return func() {
		d := time.Since(start)
		<-p.fresh
		p.mu.Lock()
		defer p.mu.Unlock()
		st := p.statsLocked(key)
		if st.freshCost == 0 {
			st.freshCost = d
		} else {
			st.freshCost = (3*st.freshCost + d) / 4
		}
		p.notifyLocked()
	}
}

// Len is how many parked worktrees key's list holds.
func (p *WorktreePool) Len(key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.ready[key])
}

// Forget drops key's list and figures and returns the list.
func (p *WorktreePool) Forget(key string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	list := p.ready[key]
	delete(p.ready, key)
	delete(p.stats, key)
	return list
}

func (p *WorktreePool) statsLocked(key string) *poolStats {
	st := p.stats[key]
	if st == nil {
		st = &poolStats{}
		p.stats[key] = st
	}
	return st
}

// notifyLocked wakes every waiting Source; p.mu is held.
func (p *WorktreePool) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}
