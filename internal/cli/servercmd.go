package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"codeswarm/config"
	"codeswarm/gitops"
	"codeswarm/llm/scripted"
)

func newServerCmd(g *globalOpts, stdio IO) *cobra.Command {
	return &cobra.Command{
		Use:   "server",
		Short: "Run the embedded Temporal server and Web UI (no worker)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serve(cmd, g, stdio, false)
		},
	}
}

func newDevCmd(g *globalOpts, stdio IO) *cobra.Command {
	return &cobra.Command{
		Use:   "dev",
		Short: "Run the embedded Temporal server, Web UI and a worker",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serve(cmd, g, stdio, true)
		},
	}
}

func serve(cmd *cobra.Command, g *globalOpts, stdio IO, worker bool) error {
	cfg, logger, err := loadConfig(g, cmd, nil)
	if err != nil {
		return err
	}
	cfg.Temporal.Address = ""
	e, err := connect(cmd.Context(), cfg, logger, connectOpts{worker: worker, forceServer: true})
	if err != nil {
		return err
	}
	defer e.close()
	fmt.Fprintf(stdio.Out, "Temporal server: %s (namespace %s, state in %s)\n", e.server.FrontendAddress(), cfg.Temporal.Namespace, stateKey(cfg))
	if e.uiURL != "" {
		fmt.Fprintf(stdio.Out, "Web UI: %s\n", e.uiURL)
	}
	if u := e.codecURL(); u != "" {
		fmt.Fprintf(stdio.Out, "payloads are encrypted; codec endpoint for the Web UI: %s\n", u)
	}
	if worker {
		fmt.Fprintf(stdio.Out, "worker: task queue %s (workspace queue %s)\n", cfg.Temporal.TaskQueue, e.workers.Queue)
	}
	fmt.Fprintln(stdio.Out, "press Ctrl-C to stop")
	<-cmd.Context().Done()
	return nil
}

type demoOpts struct {
	dir  string
	keep bool
	json bool
}

func newDemoCmd(g *globalOpts, stdio IO) *cobra.Command {
	o := &demoOpts{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a small two-stage refactor on a generated repository against a scripted model (offline, no API key)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, logger, err := loadConfig(g, cmd, nil)
			if err != nil {
				return err
			}
			return runDemo(cmd.Context(), cfg, logger, o, stdio)
		},
	}
	cmd.Flags().StringVar(&o.dir, "dir", "", "where to generate the demo repository (default: a new temp dir)")
	cmd.Flags().BoolVar(&o.keep, "keep", false, "keep the server and Web UI running after the run, until Ctrl-C")
	cmd.Flags().BoolVar(&o.json, "json", false, "print only the result JSON")
	return cmd
}

func runDemo(ctx context.Context, cfg *config.Config, logger *zap.Logger, o *demoOpts, stdio IO) error {
	dir := o.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "codeswarm-demo-*")
		if err != nil {
			return err
		}
		dir = d
	}
	if err := scripted.WriteDemoRepo(dir); err != nil {
		return fmt.Errorf("demo repository: %w", err)
	}
	srv, err := scripted.Start(scripted.DemoScript())
	if err != nil {
		return fmt.Errorf("scripted model server: %w", err)
	}
	defer srv.Close()
	// The demo's own queue keeps other workers (with real model settings) away.
	cfg.LLM.BaseURL, cfg.LLM.APIKey, cfg.LLM.Model, cfg.LLM.PlannerModel = srv.URL(), "demo-key-not-secret", "scripted-demo", "scripted-demo"
	cfg.Temporal.TaskQueue = "codeswarm-demo"
	if !o.json {
		fmt.Fprintf(stdio.Out, "demo repository: %s\nscripted model: %s\n", dir, srv.URL())
	}
	// Every demo repository has the same tree: without noCache the second
	// demo would be answered by the result cache and show no sub-agent at
	// work.
	ro := &runOpts{repo: dir, task: scripted.DemoTask, base: "HEAD", json: o.json, noCache: true}
	in, id, err := runInput(ctx, cfg, ro, stdio)
	if err != nil {
		return err
	}
	e, err := connect(ctx, cfg, logger, connectOpts{})
	if err != nil {
		return err
	}
	defer e.close()
	err = startAndFollow(ctx, e, id, in, ro, stdio)
	if err == nil && !o.json {
		showLog(stdio, dir)
	}
	if o.keep {
		fmt.Fprintf(stdio.Out, "keeping the server up (Web UI %s); press Ctrl-C to stop\n", e.uiURL)
		<-ctx.Done()
	}
	return err
}

func showLog(stdio IO, dir string) {
	out, err := gitops.Run(context.Background(), dir, "log", "--oneline", "--graph", "--all", "-n", "12")
	if err == nil {
		fmt.Fprintf(stdio.Out, "\ngit log of the demo repository:\n%s", out)
	}
}
