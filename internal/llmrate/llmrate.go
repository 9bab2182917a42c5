// Package llmrate adapts the LLM request rate of the whole cluster to what
// the provider accepts. By default nothing throttles LLM calls (besides each
// worker's llm.max_concurrent); when the provider answers 429:
//
//   - the worker that saw it holds back its own calls until Retry-After has
//     passed (the retried activity also waits for it, via NextRetryDelay);
//   - it halves the rate limit of the LLM task queue on the Temporal server
//     (UpdateTaskQueueConfig), starting from the rate the provider just
//     accepted, so every worker's sub-agents slow down together: the server
//     dispatches LLM activities no faster than that, whoever polls;
//   - while no 429 comes, any worker raises that limit each second by an
//     eighth of the rate it was cut from (additive increase), and removes it
//     once it is twice that rate and no task waits in the queue (over a
//     backlog it keeps rising: removing it would send the whole backlog to
//     the provider at once), or at llm.requests_per_second.
//
// llm.requests_per_second, when set, stays a hard ceiling: it is the
// workers' own queue rate limit, and the adaptive limit never exceeds it.
package llmrate

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Tunables of the controller.
const (
	// Floor is the lowest rate the controller sets: a provider that
	// rejects even this keeps the runs slow, not stopped.
	Floor = 0.5
	// window is how far back the rate the provider accepted is measured.
	window = 2 * time.Second
	// stepShare is the additive increase per raise, as a share of the rate
	// the limit was cut from: recovering from half that rate to all of it
	// takes stepShare/2 raises, whatever the provider's account allows, so
	// a 2 req/s account is not overshot by whole requests per second.
	stepShare = 8
	// minStep bounds the increase below, for limits cut from almost nothing.
	minStep = 0.1
	// raiseEvery is how often the limit may rise; also how long after any
	// change of the limit (by any worker) before it rises.
	raiseEvery = time.Second
	// quietFor is how long a worker must have seen no 429 to raise.
	quietFor = 2 * time.Second
	// maxPause bounds how long a Retry-After holds a worker's calls back.
	maxPause = time.Minute
	// defaultPause is the hold-back after a 429 without Retry-After.
	defaultPause = time.Second
	// reasonPrefix marks limits set by this controller; a limit an operator
	// set (any other reason) is left alone.
	reasonPrefix = "codeswarm adaptive"
)

// QueueLimit is the task queue's rate limit as the server holds it.
type QueueLimit struct {
	RPS     float64 // 0 when no limit is set through the API
	Set     bool
	Reason  string
	Updated time.Time
	// Backlog is about how many tasks wait in the queue (the server's
	// approximate backlog count).
	Backlog int64
}

// Queue reads and sets the LLM task queue's rate limit on the server.
type Queue interface {
	Limit(ctx context.Context) (QueueLimit, error)
	// SetLimit sets the limit; rps < 0 removes it.
	SetLimit(ctx context.Context, rps float64, reason string) error
}

// Controller is one worker's part of the cluster's rate control. Safe for
// concurrent use.
type Controller struct {
	queue   Queue // nil: this worker only holds back its own calls
	ceiling float64
	logger  *zap.Logger
	now     func() time.Time

	mu          sync.Mutex
	pausedUntil time.Time
	lastCut     time.Time
	last429     time.Time
	accepted    []time.Time // answers the provider accepted, within window
	throttled   atomic.Int64
	// queueLimited: the server held a rate limit on the LLM queue when this
	// worker last looked (every raiseEvery, see Run), or this worker set one.
	queueLimited atomic.Bool
}

// New builds a controller for the LLM queue; ceiling is
// llm.requests_per_second (0: none).
func New(queue Queue, ceiling float64, logger *zap.Logger) *Controller {
	return &Controller{queue: queue, ceiling: ceiling, logger: logger, now: time.Now}
}

// Throttled is how many 429s this worker has seen.
func (c *Controller) Throttled() int64 { return c.throttled.Load() }

// Limited reports whether the cluster's model calls must take a permit from
// the LLM queue (so that its rate limit paces them): when
// llm.requests_per_second is set, while the server holds a rate limit on the
// queue (set by any worker after a 429, or by an operator) as this worker
// last saw it, and for quietFor after a 429 this worker saw. Otherwise no
// limit is in force and a permit would only cost a round trip.
func (c *Controller) Limited() bool {
	if c.ceiling > 0 || c.queueLimited.Load() {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.last429.IsZero() && c.now().Sub(c.last429) < quietFor
}

// Wait holds a call back while a Retry-After is running on this worker.
func (c *Controller) Wait(ctx context.Context) error {
	for {
		c.mu.Lock()
		d := c.pausedUntil.Sub(c.now())
		c.mu.Unlock()
		if d <= 0 {
			return nil
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Accepted records an answer the provider gave.
func (c *Controller) Accepted() {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.accepted = append(c.trimmed(now), now)
}

func (c *Controller) trimmed(now time.Time) []time.Time {
	i := 0
	for i < len(c.accepted) && now.Sub(c.accepted[i]) > window {
		i++
	}
	return c.accepted[i:]
}

// Throttle records a 429: it holds this worker's calls back for retryAfter
// and, at most once per raiseEvery, halves the cluster's rate limit.
func (c *Controller) Throttle(ctx context.Context, retryAfter time.Duration) {
	c.throttled.Add(1)
	if retryAfter <= 0 {
		retryAfter = defaultPause
	}
	c.mu.Lock()
	now := c.now()
	c.last429 = now
	if until := now.Add(min(retryAfter, maxPause)); until.After(c.pausedUntil) {
		c.pausedUntil = until
	}
	cut := c.queue != nil && now.Sub(c.lastCut) >= raiseEvery
	if cut {
		c.lastCut = now
	}
	accepted := float64(len(c.trimmed(now))) / window.Seconds()
	c.mu.Unlock()
	if cut {
		c.cut(ctx, accepted)
	}
}

// cut halves the queue's limit, or, when none is set, sets half the rate
// the provider accepted from this worker (a lower bound of the cluster's).
func (c *Controller) cut(ctx context.Context, accepted float64) {
	cur, err := c.queue.Limit(ctx)
	if err != nil {
		c.logger.Warn("read LLM queue rate limit", zap.Error(err))
		return
	}
	c.queueLimited.Store(cur.Set)
	if cur.Set && !strings.HasPrefix(cur.Reason, reasonPrefix) {
		return // an operator's limit
	}
	base, from := accepted, accepted
	if cur.Set {
		base, from = cur.RPS, cutFrom(cur.Reason, cur.RPS)
	}
	if c.ceiling > 0 {
		base = min(base, c.ceiling)
	}
	rps := max(Floor, base/2)
	if cur.Set && rps >= cur.RPS {
		return
	}
	// Recovery ends at twice the rate cut from; never below what this cut
	// halved, so a limit cut from nothing measured still recovers gradually.
	c.set(ctx, rps, max(from, base, 2*rps), "cut")
}

// Raise adds an eighth of the rate cut from to a limit this controller's kind set, when no 429 came
// lately, and removes it once it is twice the rate that was cut and no task
// waits in the queue (or at the ceiling). It reports whether an adaptive limit is (still) set. Run calls
// it every raiseEvery.
func (c *Controller) Raise(ctx context.Context) bool {
	c.mu.Lock()
	quiet := c.now().Sub(c.last429) >= quietFor
	c.mu.Unlock()
	if c.queue == nil || !quiet {
		return true
	}
	cur, err := c.queue.Limit(ctx)
	if err != nil {
		return false
	}
	c.queueLimited.Store(cur.Set)
	if !cur.Set || !strings.HasPrefix(cur.Reason, reasonPrefix) {
		return false
	}
	if c.now().Sub(cur.Updated) < raiseEvery {
		return true
	}
	from := cutFrom(cur.Reason, cur.RPS)
	rps := cur.RPS + max(minStep, from/stepShare)
	switch {
	// Removing the limit over a backlog would send all of it to the
	// provider at once (and earn a 429 for nearly each): the limit keeps
	// rising instead, until nothing waits behind it or a 429 cuts it.
	case rps >= 2*from && cur.Backlog == 0, c.ceiling > 0 && rps >= c.ceiling:
		if err := c.queue.SetLimit(ctx, -1, ""); err != nil {
			c.logger.Warn("remove LLM queue rate limit", zap.Error(err))
			return true
		}
		c.queueLimited.Store(false)
		c.logger.Info("LLM rate limit removed: the provider accepted the recovered rate", zap.Float64("rps", cur.RPS))
		return false
	default:
		c.set(ctx, rps, from, "raise")
		return true
	}
}

func (c *Controller) set(ctx context.Context, rps, from float64, why string) {
	if err := c.queue.SetLimit(ctx, rps, reason(from)); err != nil {
		c.logger.Warn("set LLM queue rate limit", zap.Float64("rps", rps), zap.Error(err))
		return
	}
	c.queueLimited.Store(true)
	c.logger.Info("LLM queue rate limit "+why, zap.Float64("rps", rps))
}

// Run looks at the LLM queue's rate limit every raiseEvery until ctx ends:
// it raises an adaptive limit that is due (Raise), and keeps Limited
// current, so that within about a second of any worker's cut every worker's
// sub-agents take permits again. That is one DescribeTaskQueue per second
// per worker.
func (c *Controller) Run(ctx context.Context) {
	if c.queue == nil {
		return
	}
	t := time.NewTicker(raiseEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.Raise(ctx)
	}
}

// reason records, with the limit, the rate it was first cut from, so that
// any worker knows when recovery is complete.
func reason(from float64) string {
	return fmt.Sprintf("%s: cut from %.2f req/s after a 429", reasonPrefix, from)
}

func cutFrom(reason string, fallback float64) float64 {
	var from float64
	if _, err := fmt.Sscanf(reason, reasonPrefix+": cut from %f", &from); err != nil || from <= 0 {
		return fallback
	}
	return from
}
