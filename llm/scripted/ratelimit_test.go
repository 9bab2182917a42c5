package scripted_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"codeswarm/llm"
	"codeswarm/llm/scripted"
)

// TestRateLimit: beyond its burst the provider answers 429 with the wait
// until the next token, and serves again once that wait is over.
func TestRateLimit(t *testing.T) {
	srv := start(t, scripted.Script{}, scripted.WithRateLimit(5, 2))
	c := client(srv)
	for range 2 {
		content(t, c, agentRequest("[r]", 0))
	}
	_, err := c.Chat(context.Background(), agentRequest("[r]", 0))
	var e *llm.Error
	if !errors.As(err, &e) || e.Kind != llm.KindRateLimit || e.RetryAfter <= 0 || e.RetryAfter > 200*time.Millisecond {
		t.Fatalf("third call at once: %v; want a 429 with a retry-after of at most 200 ms", err)
	}
	time.Sleep(e.RetryAfter)
	content(t, c, agentRequest("[r]", 0))
	var statuses []int
	for _, r := range srv.Requests() {
		statuses = append(statuses, r.Status)
	}
	if len(statuses) != 4 || statuses[2] != 429 || statuses[3] != 200 {
		t.Errorf("statuses %v, want [200 200 429 200]", statuses)
	}
}
