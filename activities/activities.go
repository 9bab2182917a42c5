package activities

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	openai "github.com/sashabaranov/go-openai"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"codeswarm/internal/fairslot"
	"codeswarm/internal/secret"
	"codeswarm/internal/transcript"
	"codeswarm/llm"
	"codeswarm/tools"
)

// Activities holds the worker-side collaborators. Secrets (the API key) live
// here, on the worker, and never in any activity input or result.
type Activities struct {
	LLM            *llm.Client
	Temporal       client.Client // for swarm_share (query/update on the parent)
	Transcripts    *transcript.Store
	WorkspaceRoot  string
	WorkspaceQueue string           // this host's workspace task queue
	Secrets        *secret.Scrubber // scrubs tool output, shared values and errors
	Environ        []string         // base environment for bash (already sanitized)
	// Sandbox confines bash and the verify command; nil uses the tools
	// package's default sandbox (never unconfined).
	Sandbox *tools.Sandbox
	// Pace adapts LLM calls to the provider's 429s; nil sends them without pacing.
	Pace LLMPace
	// HostLostAfter is how long a workspace queue may go unpolled before
	// WatchHost reports its host lost; 0 is DefaultHostLostAfter.
	HostLostAfter time.Duration
	// AutoMoveAfter is workspace.auto_move_after, handed to the runs this
	// worker prepares.
	AutoMoveAfter time.Duration
	// LLMSlots caps this worker's model calls in flight (llm.max_concurrent)
	// whichever of its queues runs them, and shares them between runs
	// (llm.fair_share); nil: no cap.
	LLMSlots *fairslot.Slots
	// MaxFileBytes caps the files the file tools load
	// (tools.max_file_bytes); 0 is tools.DefaultMaxFileBytes.
	MaxFileBytes int
	// ContextTokens is llm.context_tokens: the most tokens a sub-agent's
	// conversation may carry per model call (llm.FitBudget); 0: only the
	// model's context limit bounds it.
	ContextTokens int
	// Cache is the result cache (cache.enabled, cache.max_entries); nil:
	// off, every sub-agent and planner request runs.
	Cache *ResultCache

	// pool holds merged sub-agents' worktrees parked for the next ones.
	pool *worktreePool
}

// LLMPace paces this worker's LLM calls (internal/llmrate implements it).
type LLMPace interface {
	Wait(ctx context.Context) error                         // before a call
	Accepted()                                              // the provider answered
	Throttle(ctx context.Context, retryAfter time.Duration) // it answered 429
	Limited() bool                                          // model calls must take a permit (a rate limit is in force)
}

// paced reports whether the next model call of a conversation must take a
// permit from the shared LLM queue: without a pace, always.
func (a *Activities) paced() bool {
	return a.Pace == nil || a.Pace.Limited()
}

// sandboxMode is "on" or "off" for the result JSON.
func (a *Activities) sandboxMode() string {
	if a.Sandbox == nil {
		return "on"
	}
	return a.Sandbox.Mode()
}

// StateDir is where a run keeps journals next to its worktrees.
func (a *Activities) stateDir(runID string) string {
	return filepath.Join(a.WorkspaceRoot, runID, ".state")
}

// journalDir is where a sub-agent attempt's tool journal lives.
func (a *Activities) journalDir(runID, subtaskID string, attempt int) string {
	return filepath.Join(a.stateDir(runID), "journal", fmt.Sprintf("%s-a%d", subtaskID, attempt))
}

// WorktreeDir is where a subtask's worktree lives.
func WorktreeDir(root, runID, subtaskID string, attempt int) string {
	name := subtaskID
	if attempt > 1 {
		name = subtaskID + "-r" + strconv.Itoa(attempt)
	}
	return filepath.Join(root, runID, name)
}

func tref(r ConvRef) transcript.Ref {
	return transcript.Ref{RunID: r.RunID, SubtaskID: r.SubtaskID, Attempt: r.Attempt}
}

// ErrTypeRateLimit is the error type of a model call the provider answered
// 429: workflows that pace calls with permits retry it after a new permit.
const ErrTypeRateLimit = "llm." + string(llm.KindRateLimit)

// llmError turns a client error into a Temporal error: non-retryable kinds
// fail fast, a 429 retries after the server's Retry-After.
func llmError(err error) error {
	var e *llm.Error
	if !errors.As(err, &e) {
		return err // not a model failure (e.g. the transcript store): retry as is
	}
	typ := "llm." + string(e.Kind)
	if !e.Retryable() {
		return temporal.NewNonRetryableApplicationError(e.Error(), typ, nil)
	}
	opts := temporal.ApplicationErrorOptions{}
	if e.RetryAfter > 0 {
		opts.NextRetryDelay = e.RetryAfter
	}
	return temporal.NewApplicationErrorWithOptions(e.Error(), typ, opts)
}

// heartbeatEvery is how often long calls report liveness, so that a worker
// that dies mid-call is noticed within the heartbeat timeout, not after the
// call's own (much longer) timeout.
const heartbeatEvery = 5 * time.Second

// chat calls the model for run runID while heartbeating.
func (a *Activities) chat(ctx context.Context, runID string, req openai.ChatCompletionRequest) (openai.ChatCompletionResponse, error) {
	stop := keepAlive(ctx)
	defer stop()
	release, err := a.takeSlot(ctx, runID)
	if err != nil {
		return openai.ChatCompletionResponse{}, err
	}
	defer release()
	if a.Pace == nil {
		resp, err := a.LLM.Chat(ctx, req)
		return resp, endpointError(ctx, err)
	}
	if err := a.Pace.Wait(ctx); err != nil {
		return openai.ChatCompletionResponse{}, err
	}
	resp, err := a.LLM.Chat(ctx, req)
	var e *llm.Error
	switch {
	case err == nil:
		a.Pace.Accepted()
	case errors.As(err, &e) && e.Kind == llm.KindRateLimit:
		a.Pace.Throttle(ctx, e.RetryAfter)
	}
	return resp, endpointError(ctx, err)
}

// unreachableAttempts is how many times a model call tries an endpoint
// that refuses connections (or whose host does not resolve) before the run
// gives up: a few quick attempts meet a server that is starting, and an
// hour of retries only hid a wrong llm.base_url.
const unreachableAttempts = 3

// endpointError turns a model endpoint that no call can succeed with into
// a non-retryable failure whose message is one plain sentence: a rejected
// key or a wrong URL at once, an unreachable endpoint after
// unreachableAttempts. Other errors are returned as they are.
func endpointError(ctx context.Context, err error) error {
	var e *llm.Error
	if !errors.As(err, &e) {
		return err
	}
	switch e.Kind {
	case llm.KindAuth, llm.KindNotFound:
	case llm.KindUnreachable:
		if !activity.IsActivity(ctx) || activity.GetInfo(ctx).Attempt < unreachableAttempts {
			return err
		}
	default:
		return err
	}
	// No cause: llmError would classify it again, as retryable.
	return temporal.NewNonRetryableApplicationError(e.Sentence(), "llm."+string(e.Kind), nil)
}

// errNoSlot fails a model call that found every LLMSlots slot busy for as
// long as it could wait; the activity is retried, and no request was sent.
var errNoSlot = errors.New("every llm.max_concurrent slot of this worker stayed busy; the call is retried")

// takeSlot waits for one of LLMSlots for run runID (while they are all
// busy, runs take turns); release gives it back. It waits no longer than the
// activity's deadline leaves the request its whole timeout: a request cut
// off by the activity's timeout could be paid and then sent again.
func (a *Activities) takeSlot(ctx context.Context, runID string) (release func(), err error) {
	if a.LLMSlots == nil {
		return func() {}, nil
	}
	wait := ctx
	if deadline, ok := ctx.Deadline(); ok && a.LLM != nil && a.LLM.Timeout() > 0 {
		var cancel context.CancelFunc
		wait, cancel = context.WithDeadline(ctx, deadline.Add(-a.LLM.Timeout()))
		defer cancel()
	}
	release, err = a.LLMSlots.Acquire(wait, runID)
	switch {
	case err == nil:
		return release, nil
	case ctx.Err() != nil:
		return nil, ctx.Err()
	default:
		return nil, errNoSlot
	}
}

func keepAlive(ctx context.Context) func() {
	if !activity.IsActivity(ctx) {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(heartbeatEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				activity.RecordHeartbeat(ctx)
			case <-done:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() { close(done) }
}

// isLocalActivity reports whether ctx is a local activity's: it holds its
// workflow's task while it runs, so it must not wait long.
func isLocalActivity(ctx context.Context) bool {
	return activity.IsActivity(ctx) && activity.GetInfo(ctx).IsLocalActivity
}

// worktreeSteps serialises StartSubtask and CommitSubtask per worktree in
// this process. Run as local activities, an attempt may outlive its
// workflow task (a task that timed out is run again, and its local
// activities with it, while the first attempt's goroutine goes on); both
// steps are idempotent one after the other, not at the same time. A
// worktree's steps run only on its host, in its one worker process.
var worktreeSteps keyedMutex

// keyedMutex is a mutex per key, each dropped when nobody holds or waits
// for it.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyedLock
}

type keyedLock struct {
	sync.Mutex
	users int
}

// lock locks key and returns its unlock.
func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyedLock{}
	}
	l := k.locks[key]
	if l == nil {
		l = &keyedLock{}
		k.locks[key] = l
	}
	l.users++
	k.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		k.mu.Lock()
		if l.users--; l.users == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
