package swarmworker

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"codeswarm/config"
	"codeswarm/internal/codec"
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
	c, err := client.DialContext(ctx, client.Options{HostPort: addr, Namespace: cfg.Temporal.Namespace, DataConverter: dc,
		FailureConverter: codec.FailureConverter(cfg.Codec.Key, dc), Logger: tlog.New(logger.Named("sdk"))})
	if err != nil {
		return fmt.Errorf("dial temporal at %s: %w", addr, err)
	}
	defer c.Close()
	w, err := New(cfg, c, logger)
	if err != nil {
		return err
	}
	if err := w.Start(); err != nil {
		return err
	}
	defer w.Stop()
	logger.Info("worker running", zap.String("address", addr), zap.String("task_queue", cfg.Temporal.TaskQueue), zap.String("workspace_queue", w.Queue))
	<-ctx.Done()
	return nil
}
