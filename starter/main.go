// Command codeswarm is the CLI: it starts, watches and inspects swarm runs,
// and runs the embedded Temporal server when no cluster is configured.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"codeswarm/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Execute(ctx, os.Args[1:], cli.IO{Out: os.Stdout, Err: os.Stderr})
	stop()
	os.Exit(code)
}
