package activities

import (
	"context"
	"errors"
	"time"

	openai "github.com/sashabaranov/go-openai"
	"go.temporal.io/sdk/activity"
	"path/filepath"
	"strconv"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

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
	// Pace adapts LLM calls to the provider's 429s; nil sends them unpaced.
	Pace LLMPace
	// LLMSlots caps this worker's model calls in flight (llm.max_concurrent)
	// whichever of its queues runs them; nil: no cap.
	LLMSlots chan struct{}
}

// LLMPace paces this worker's LLM calls (internal/llmrate implements it).
type LLMPace interface {
	Wait(ctx context.Context) error                         // before a call
	Accepted()                                              // the provider answered
	Throttle(ctx context.Context, retryAfter time.Duration) // it answered 429
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

// chat calls the model while heartbeating.
func (a *Activities) chat(ctx context.Context, req openai.ChatCompletionRequest) (openai.ChatCompletionResponse, error) {
	stop := keepAlive(ctx)
	defer stop()
	release, err := a.takeSlot(ctx)
	if err != nil {
		return openai.ChatCompletionResponse{}, err
	}
	defer release()
	if a.Pace == nil {
		return a.LLM.Chat(ctx, req)
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
	return resp, err
}

// takeSlot waits for one of LLMSlots; release gives it back.
func (a *Activities) takeSlot(ctx context.Context) (release func(), err error) {
	if a.LLMSlots == nil {
		return func() {}, nil
	}
	select {
	case a.LLMSlots <- struct{}{}:
		return func() { <-a.LLMSlots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
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
