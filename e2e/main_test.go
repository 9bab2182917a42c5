package e2e

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"

	"codeswarm/config"
	"codeswarm/internal/cli"
	"codeswarm/internal/swarmworker"
)

// The test binary doubles as the codeswarm CLI and as a standalone worker,
// so tests can run them as separate processes (and kill them) without
// building binaries.
const (
	cliEnv    = "CODESWARM_E2E_AS_CLI"    // args joined by \x1f
	workerEnv = "CODESWARM_E2E_AS_WORKER" // any value; config from CODESWARM_* env
)

func TestMain(m *testing.M) {
	if args := os.Getenv(cliEnv); args != "" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := cli.Execute(ctx, strings.Split(args, "\x1f"), cli.IO{Out: os.Stdout, Err: os.Stderr})
		stop()
		os.Exit(code)
	}
	if os.Getenv(workerEnv) != "" {
		os.Exit(runWorker())
	}
	os.Exit(m.Run())
}

func runWorker() int {
	cfg, err := config.Load(config.LoadOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	logger, err := config.NewLogger(cfg.Log, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := swarmworker.Run(ctx, cfg, logger); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
