// Package fairslot caps how much work runs at once and shares the cap fairly
// between keys (codeswarm's runs): when every slot is busy, the next free
// slot goes to the waiting key that has had the fewest slots, not to the
// longest waiter. A run with 100 callers waiting then gets no more turns
// than a run with 1.
package fairslot

import (
	"context"
	"sync"
)

// Slots is a counting semaphore whose waiters are served fairly across keys
// (stride scheduling with equal weights, as Temporal's matching fairness
// does) and first come, first served within one key. Its methods are safe
// for concurrent use.
type Slots struct {
	fair bool

	mu      sync.Mutex
	free    int
	waiting map[string]*queue // keys with waiters
	// idle remembers keys that stopped waiting while ahead of vtime: one
	// that comes back at once (a sub-agent's next call) resumes its pass
	// rather than starting at vtime, or keys that always wait one call at a
	// time could starve a key that always has calls waiting.
	idle    map[string]queue
	vtime   uint64 // the pass of the last grant
	grants  uint64 // grants so far, to order ties
	arrived uint64 // keys that began to wait so far, likewise
}

// queue is one key's waiters. pass counts the key's grants, starting from
// the virtual time when the key began to wait, so a key that comes back
// after a pause is not owed the turns it did not ask for.
type queue struct {
	pass, lastGrant, since uint64
	waiters                []*waiter // oldest first
}

// waiter is one blocked Acquire; ready is closed once it holds a slot.
type waiter struct {
	ready   chan struct{}
	granted bool // under Slots.mu
}

// New returns n slots (at least 1). With fair false every caller waits in
// one line, first come, first served, whatever its key.
func New(n int, fair bool) *Slots {
	return &Slots{
		fair:    fair,
		free:    max(n, 1),
		waiting: map[string]*queue{},
		idle:    map[string]queue{},
	}
}

// Acquire waits for a slot for key, or for ctx to end (then it returns
// ctx.Err() and holds nothing). release gives the slot back; calling it
// again does nothing.
func (s *Slots) Acquire(ctx context.Context, key string) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !s.fair {
		key = ""
	}
	s.mu.Lock()
	if s.free > 0 {
		s.free--
		s.mu.Unlock()
		return s.releaser(), nil
	}
	w := &waiter{ready: make(chan struct{})}
	q := s.waiting[key]
	if q == nil {
		s.arrived++
		q = &queue{pass: s.vtime, since: s.arrived}
		if was, ok := s.idle[key]; ok {
			q.pass, q.lastGrant = max(was.pass, s.vtime), was.lastGrant
			delete(s.idle, key)
		}
		s.waiting[key] = q
	}
	q.waiters = append(q.waiters, w)
	s.mu.Unlock()

	select {
	case <-w.ready:
		return s.releaser(), nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	granted := w.granted
	if !granted {
		s.remove(key, w)
	}
	s.mu.Unlock()
	if granted {
		// The slot came as ctx ended: pass it on rather than keep it.
		s.release()
	}
	return nil, ctx.Err()
}

// releaser returns a release func that works once, so that a caller's
// double release cannot raise the cap.
func (s *Slots) releaser() func() {
	var once sync.Once
	return func() { once.Do(s.release) }
}

// release hands the slot to the oldest waiter of the key with the lowest
// pass (ties: the key served least recently, then the one waiting longest);
// with no waiter it frees it.
func (s *Slots) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	key, q := s.next()
	if q == nil {
		s.free++
		return
	}
	w := q.waiters[0]
	q.waiters = q.waiters[1:]
	s.vtime = q.pass
	s.grants++
	q.pass++
	q.lastGrant = s.grants
	if len(q.waiters) == 0 {
		delete(s.waiting, key)
		s.idle[key] = queue{pass: q.pass, lastGrant: q.lastGrant}
	}
	s.forget()
	w.granted = true
	close(w.ready)
}

// forget drops the idle keys that vtime has caught up with: they would
// start at vtime anyway. Called under s.mu.
func (s *Slots) forget() {
	for k, q := range s.idle {
		if q.pass <= s.vtime {
			delete(s.idle, k)
		}
	}
}

// next picks the key to serve; nil when nobody waits. Called under s.mu.
func (s *Slots) next() (string, *queue) {
	var bestKey string
	var best *queue
	for k, q := range s.waiting {
		if best == nil || before(q, best) {
			bestKey, best = k, q
		}
	}
	return bestKey, best
}

// before reports whether q is served before r.
func before(q, r *queue) bool {
	if q.pass != r.pass {
		return q.pass < r.pass
	}
	if q.lastGrant != r.lastGrant {
		return q.lastGrant < r.lastGrant
	}
	return q.since < r.since
}

// remove takes a waiter that gave up out of its key's queue, and the key
// out of the waiting ones when it has no waiter left. Called under s.mu.
func (s *Slots) remove(key string, w *waiter) {
	q := s.waiting[key]
	for i, x := range q.waiters {
		if x == w {
			q.waiters = append(q.waiters[:i:i], q.waiters[i+1:]...)
			break
		}
	}
	if len(q.waiters) == 0 {
		delete(s.waiting, key)
		if q.pass > s.vtime {
			s.idle[key] = queue{pass: q.pass, lastGrant: q.lastGrant}
		}
	}
}

// Waiting reports how many callers wait for a slot.
func (s *Slots) Waiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, q := range s.waiting {
		n += len(q.waiters)
	}
	return n
}
