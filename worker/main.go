// Command worker runs codeswarm's Temporal workers against a Temporal
// cluster (TEMPORAL_ADDRESS). It links only the SDK, never the server.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"codeswarm/config"
	"codeswarm/internal/secret"
	"codeswarm/internal/swarmworker"
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
	logger, err := config.NewLogger(cfg.Log, secret.Writer(os.Stderr, secret.New(cfg.Secrets()...)))
	if err != nil {
		return err
	}
	defer func() { _ = logger.Sync() }()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return swarmworker.Run(ctx, cfg, logger)
}
