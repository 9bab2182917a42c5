package swarmworker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestStartWithRetryRecoversFromASlowServer(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	calls := 0
	want := &Workers{}
	w, err := startWithRetry(context.Background(), zap.New(core), time.Minute, func() (*Workers, error) {
		calls++
		if calls < 3 {
			return nil, errors.New("start worker: failed reaching server: context deadline exceeded")
		}
		return want, nil
	})
	if err != nil || w != want {
		t.Fatalf("startWithRetry = %v, %v; want the workers of the third try", w, err)
	}
	if calls != 3 || logs.Len() != 2 {
		t.Errorf("%d tries and %d warnings, want 3 tries and a warning for each of the 2 failures", calls, logs.Len())
	}
}

func TestStartWithRetryGivesUpAfterItsWindow(t *testing.T) {
	calls := 0
	_, err := startWithRetry(context.Background(), zap.NewNop(), 2500*time.Millisecond, func() (*Workers, error) {
		calls++
		return nil, errors.New("namespace codeswarm-typo is not found")
	})
	// Waits 1 s and 2 s: the third wait (3 s) would end past the window.
	if err == nil || calls != 2 || !strings.Contains(err.Error(), "namespace codeswarm-typo is not found") || !strings.Contains(err.Error(), "gave up after 2 attempts") {
		t.Fatalf("after %d tries: %v; want the last error and how many tries it took", calls, err)
	}
}

func TestStartWithRetryStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	_, err := startWithRetry(ctx, zap.NewNop(), time.Hour, func() (*Workers, error) {
		calls++
		cancel()
		return nil, errors.New("unavailable")
	})
	if err == nil || calls != 1 {
		t.Fatalf("after %d tries: %v; want one try and its error once the context ends", calls, err)
	}
}
