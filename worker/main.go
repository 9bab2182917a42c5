// Command worker runs codeswarm's Temporal workers against a Temporal
// cluster (TEMPORAL_ADDRESS). It links only the SDK, never the server.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"codeswarm/config"
	"codeswarm/internal/swarmworker"
	"codeswarm/internal/tlog"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "codeswarm worker:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg, err := config.Load(config.LoadOptions{File: os.Getenv("CODESWARM_CONFIG")})
	if err != nil {
		return err
	}
	logger, err := config.NewLogger(cfg.Log, nil)
	if err != nil {
		return err
	}
	defer func() { _ = logger.Sync() }()
	addr := cfg.Temporal.Address
	if addr == "" {
		addr = fmt.Sprintf("127.0.0.1:%d", cfg.Embedded.Port)
	}
	c, err := client.Dial(client.Options{HostPort: addr, Namespace: cfg.Temporal.Namespace, Logger: tlog.New(logger)})
	if err != nil {
		return fmt.Errorf("dial temporal at %s: %w", addr, err)
	}
	defer c.Close()
	w, err := swarmworker.New(cfg, c, logger)
	if err != nil {
		return err
	}
	if err := w.Start(); err != nil {
		return err
	}
	defer w.Stop()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger.Info("worker running", zap.String("address", addr), zap.String("workspace_queue", w.Queue))
	<-ctx.Done()
	return nil
}
