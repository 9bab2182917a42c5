package swarmworker

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"codeswarm/config"
	"codeswarm/internal/codec"
	"codeswarm/internal/searchattr"
	"codeswarm/internal/tlog"
)

// Run connects to Temporal (temporal.address, or the default local port) and
// runs the workers until ctx is done. It never starts a server.
func Run(ctx context.Context, cfg *config.Config, logger *zap.Logger) error {
	addr := cfg.Temporal.Address
	if addr == "" {
		addr = fmt.Sprintf("127.0.0.1:%d", cfg.Embedded.Port)
	}
	dc, err := codec.DataConverter(cfg.Codec.Key)
	if err != nil {
		return err
	}
	tracker := NewTaskTracker()
	c, err := client.DialContext(ctx, client.Options{
		HostPort:          addr,
		Namespace:         cfg.Temporal.Namespace,
		DataConverter:     dc,
		FailureConverter:  codec.FailureConverter(cfg.Codec.Key, dc),
		Logger:            tlog.New(logger.Named("sdk")),
		ConnectionOptions: ConnectionOptions(addr, tracker),
	})
	if err != nil {
		return fmt.Errorf("dial temporal at %s: %w", addr, err)
	}
	defer c.Close()
	ensureSearchAttributes(ctx, c, cfg.Temporal.Namespace, logger)
	w, err := startWithRetry(ctx, logger, startRetryWindow, func() (*Workers, error) {
		w, err := New(cfg, c, tracker, logger)
		if err != nil {
			return nil, err
		}
		if err := w.Start(); err != nil {
			w.sandbox.Close()
			return nil, err
		}
		return w, nil
	})
	if err != nil {
		return err
	}
	defer w.Stop()
	logger.Info("worker running", zap.String("address", addr), zap.String("task_queue", cfg.Temporal.TaskQueue), zap.String("workspace_queue", w.Queue))
	<-ctx.Done()
	return nil
}

// ensureSearchAttributes registers the runs' search attributes on the
// cluster; without permission runs go on without them, and the log says how
// an operator adds them.
func ensureSearchAttributes(ctx context.Context, c client.Client, namespace string, logger *zap.Logger) {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := searchattr.Ensure(sctx, c, namespace); err != nil {
		logger.Warn("runs will have no search attributes; an operator can add them with: "+searchattr.Hint(namespace), zap.Error(err))
	}
}

// startRetryWindow is how long a worker keeps trying to start against a
// server that does not answer yet (a cluster still starting, a namespace its
// setup job has not created yet) before it gives up.
const startRetryWindow = 2 * time.Minute

// startWithRetry calls start until it succeeds, ctx ends or window has
// passed, waiting 1 s, 2 s, … up to 10 s between tries and logging each
// failure, so a worker that comes up before its server neither dies at once
// nor waits silently.
func startWithRetry(ctx context.Context, logger *zap.Logger, window time.Duration, start func() (*Workers, error)) (*Workers, error) {
	deadline := time.Now().Add(window)
	for attempt := 1; ; attempt++ {
		w, err := start()
		if err == nil {
			return w, nil
		}
		delay := min(time.Duration(attempt)*time.Second, 10*time.Second)
		if ctx.Err() != nil || time.Now().Add(delay).After(deadline) {
			return nil, fmt.Errorf("%w (gave up after %d attempts in %s)", err, attempt, window)
		}
		logger.Warn("worker could not start; trying again", zap.Error(err), zap.Int("attempt", attempt), zap.Duration("in", delay))
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(delay):
		}
	}
}
