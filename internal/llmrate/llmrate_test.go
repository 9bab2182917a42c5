package llmrate

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// fakeQueue is the server's view of the queue limit, with the controller's
// clock for update times.
type fakeQueue struct {
	now   func() time.Time
	limit QueueLimit
	sets  []float64 // every limit set; -1 for a removal
}

func (q *fakeQueue) Limit(context.Context) (QueueLimit, error) { return q.limit, nil }

func (q *fakeQueue) SetLimit(_ context.Context, rps float64, reason string) error {
	q.sets = append(q.sets, rps)
	if rps < 0 {
		q.limit = QueueLimit{}
		return nil
	}
	q.limit = QueueLimit{RPS: rps, Set: true, Reason: reason, Updated: q.now()}
	return nil
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTest(ceiling float64) (*Controller, *fakeQueue, *clock) {
	clk := &clock{t: time.Unix(1_000_000, 0)}
	q := &fakeQueue{now: clk.now}
	c := New(q, ceiling, zap.NewNop())
	c.now = clk.now
	return c, q, clk
}

// accept records n answers spread over the last window.
func accept(c *Controller, clk *clock, n int) {
	for range n {
		clk.advance(window / time.Duration(n+1))
		c.Accepted()
	}
}

func TestCutHalvesTheAcceptedRateThenRecoversAdditively(t *testing.T) {
	c, q, clk := newTest(0)
	accept(c, clk, 16) // 8 req/s accepted
	c.Throttle(context.Background(), 3*time.Second)
	if !q.limit.Set || q.limit.RPS != 4 || !strings.Contains(q.limit.Reason, "cut from 8.00") {
		t.Fatalf("after a 429 at 8 req/s the limit is %+v, want 4 req/s cut from 8", q.limit)
	}
	// A second 429 within raiseEvery does not cut again.
	clk.advance(100 * time.Millisecond)
	c.Throttle(context.Background(), time.Second)
	if len(q.sets) != 1 {
		t.Fatalf("limits set %v, want one cut for a burst of 429s", q.sets)
	}
	// No raise while 429s are recent.
	clk.advance(time.Second)
	c.Raise(context.Background())
	if len(q.sets) != 1 {
		t.Fatalf("raised %v within %s of a 429", q.sets, quietFor)
	}
	for range 20 {
		clk.advance(raiseEvery)
		c.Raise(context.Background())
	}
	want := []float64{4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, -1}
	if len(q.sets) != len(want) {
		t.Fatalf("limits set %v, want %v", q.sets, want)
	}
	for i := range want {
		if q.sets[i] != want[i] {
			t.Fatalf("limits set %v, want %v", q.sets, want)
		}
	}
}

func TestCutAgainHalvesTheCurrentLimit(t *testing.T) {
	c, q, clk := newTest(0)
	q.limit = QueueLimit{RPS: 6, Set: true, Reason: reason(10), Updated: clk.now()}
	clk.advance(2 * raiseEvery)
	c.Throttle(context.Background(), 0)
	if q.limit.RPS != 3 || cutFrom(q.limit.Reason, 0) != 10 {
		t.Errorf("limit %+v, want 3 req/s still recovering towards 2x10", q.limit)
	}
	for range 10 {
		clk.advance(2 * raiseEvery)
		c.Throttle(context.Background(), 0)
	}
	if q.limit.RPS != Floor {
		t.Errorf("limit %v after many 429s, want the floor %v", q.limit.RPS, Floor)
	}
}

func TestCeilingBoundsTheLimitAndEndsRecovery(t *testing.T) {
	c, q, clk := newTest(3)
	accept(c, clk, 40) // 20 req/s accepted, above the ceiling
	c.Throttle(context.Background(), 0)
	if q.limit.RPS != 1.5 {
		t.Fatalf("limit %v, want half the 3 req/s ceiling", q.limit.RPS)
	}
	clk.advance(quietFor)
	c.Raise(context.Background())
	clk.advance(raiseEvery)
	c.Raise(context.Background())
	if q.limit.Set {
		t.Errorf("limit %+v still set at the ceiling; want it removed (the workers' own limit applies)", q.limit)
	}
}

func TestOperatorLimitLeftAlone(t *testing.T) {
	c, q, clk := newTest(0)
	q.limit = QueueLimit{RPS: 1, Set: true, Reason: "maintenance", Updated: clk.now()}
	accept(c, clk, 10)
	c.Throttle(context.Background(), 0)
	clk.advance(time.Minute)
	c.Raise(context.Background())
	if len(q.sets) != 0 {
		t.Errorf("changed an operator's limit: %v", q.sets)
	}
}

func TestWaitHonoursRetryAfter(t *testing.T) {
	c, _, _ := newTest(0)
	c.now = time.Now
	c.Throttle(context.Background(), 300*time.Millisecond)
	start := time.Now()
	if err := c.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > 2*time.Second {
		t.Errorf("Wait returned after %s, want about the 300 ms Retry-After", d)
	}
	c.Throttle(context.Background(), time.Hour) // capped at maxPause
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.Wait(ctx); err == nil {
		t.Error("Wait returned while paused; want the context's error")
	}
	if c.Throttled() != 2 {
		t.Errorf("Throttled = %d, want 2", c.Throttled())
	}
}

// TestLimited: model calls need permits while a ceiling is configured, for
// quietFor after a 429, and while the server holds a limit on the queue (as
// this worker last saw it, whoever set it); not otherwise.
func TestLimited(t *testing.T) {
	if c, _, _ := newTest(5); !c.Limited() {
		t.Error("a ceiling (llm.requests_per_second) must always take permits")
	}
	c, q, clk := newTest(0)
	if c.Limited() {
		t.Fatal("no ceiling, no 429, no queue limit: limited")
	}
	accept(c, clk, 8)
	c.Throttle(context.Background(), time.Second)
	if !c.Limited() {
		t.Fatal("not limited right after a 429 and a cut")
	}
	// The limit recovers and is removed; each look updates Limited.
	for i := 0; i < 100 && q.limit.Set; i++ {
		clk.advance(raiseEvery)
		c.Raise(context.Background())
	}
	if q.limit.Set || c.Limited() {
		t.Fatalf("after recovery: queue limit %+v, Limited %v; want none, false", q.limit, c.Limited())
	}
	// Another worker (or an operator) sets a limit: the next look sees it.
	q.limit = QueueLimit{RPS: 3, Set: true, Reason: "operator", Updated: clk.now()}
	clk.advance(raiseEvery)
	c.Raise(context.Background())
	if !c.Limited() {
		t.Error("a limit another party set on the queue is not seen as limited")
	}
}

// TestLimitStaysWhileTasksWait: at twice the rate cut from, the limit is
// removed only when no task waits behind it; over a backlog it keeps rising
// (removing it would send the whole backlog to the provider at once).
func TestLimitStaysWhileTasksWait(t *testing.T) {
	c, q, clk := newTest(0)
	accept(c, clk, 8) // 4 req/s accepted
	c.Throttle(context.Background(), time.Second)
	from := cutFrom(q.limit.Reason, 0)
	q.limit.Backlog = 30
	for range 100 {
		clk.advance(raiseEvery)
		c.Raise(context.Background())
		q.limit.Backlog = 30 // SetLimit replaced the fake's view; tasks still wait
	}
	if !q.limit.Set || q.limit.RPS <= 2*from {
		t.Fatalf("with tasks waiting the limit is %+v, want still set and above %.2f", q.limit, 2*from)
	}
	q.limit.Backlog = 0
	clk.advance(raiseEvery)
	c.Raise(context.Background())
	if q.limit.Set {
		t.Errorf("backlog empty and the limit past twice the cut rate, yet still set: %+v", q.limit)
	}
}
