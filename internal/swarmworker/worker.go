// Package swarmworker builds the Temporal workers of codeswarm: the main queue
// (parent workflows and host-independent activities), the LLM queue (rate
// limited across every worker by the server: it hands out the permits to
// call the model) and this host's workspace queue (the sub-agent workflows
// of the runs homed here, their model calls, tools, worktrees and merges,
// which need this host's disk).
package swarmworker

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.uber.org/zap"

	"codeswarm/activities"
	"codeswarm/config"
	"codeswarm/internal/fairslot"
	"codeswarm/internal/llmrate"
	"codeswarm/internal/secret"
	"codeswarm/internal/transcript"
	"codeswarm/llm"
	"codeswarm/tools"
	"codeswarm/workflows"
)

// Workers are the three workers of one process.
type Workers struct {
	list    []worker.Worker
	Queue   string // the workspace queue of this host
	sandbox *tools.Sandbox
	journal *journal
	client  client.Client
	logger  *zap.Logger
	pace    *llmrate.Controller
	stopRun context.CancelFunc
	// version is this build in its worker deployment (worker.deployment);
	// UseVersioning false: unversioned workers.
	version worker.DeploymentOptions
}

// New creates (but does not start) the workers for cfg on client c.
// tracker is the one c was dialed with (ConnectionOptions); nil leaves a
// killed worker's local activities to their workflow task's timeout.
func New(cfg *config.Config, c client.Client, tracker *TaskTracker, logger *zap.Logger) (*Workers, error) {
	root := config.ExpandHome(cfg.Workspace.Root)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("workspace.root %q: %w", root, err)
	}
	wsQueue := WorkspaceQueue(cfg.Temporal.TaskQueue, cfg.Workspace.Host)
	sandbox := newSandbox(cfg, root, logger)
	scrubber := secret.New(cfg.Secrets()...)
	j, err := openJournal(root, tracker)
	if err != nil {
		return nil, err
	}
	j.namespace = cfg.Temporal.Namespace
	pace := llmrate.New(&llmrate.TemporalQueue{
		Client:    c,
		Namespace: cfg.Temporal.Namespace,
		Name:      workflows.LLMQueue(cfg.Temporal.TaskQueue),
		Identity:  "codeswarm-worker@" + wsQueue,
	}, cfg.LLM.RequestsPerSecond, logger.Named("llmrate"))
	acts := &activities.Activities{
		LLM:            llm.New(llmOptions(cfg.LLM, scrubber)),
		Temporal:       c,
		Transcripts:    transcript.New(root),
		WorkspaceRoot:  root,
		WorkspaceQueue: wsQueue,
		Secrets:        scrubber,
		Environ:        tools.SanitizeEnv(os.Environ(), cfg.Secrets()...),
		Sandbox:        sandbox,
		Pace:           pace,
		HostLostAfter:  cfg.Workspace.HostLostAfter,
		AutoMoveAfter:  cfg.Workspace.AutoMoveAfter,
		// Every model call of this process takes one, on whichever queue
		// it runs: the LLM worker's own cap covers only that queue. Runs
		// take turns at them, so a small run is not queued behind a big one.
		LLMSlots:      fairslot.New(cfg.LLM.MaxConcurrent, cfg.LLM.FairShare),
		MaxFileBytes:  cfg.Tools.MaxFileBytes,
		ContextTokens: cfg.LLM.ContextTokens,
	}
	if cfg.Cache.Enabled {
		acts.Cache = activities.NewResultCache(root, cfg.Cache.MaxEntries)
	}
	// Every worker runs activities, so every one scrubs their errors and
	// journals the attempts it runs (a restarted worker fails them at once).
	intercept := []interceptor.WorkerInterceptor{activities.ScrubErrors(scrubber), &journalInterceptor{j: j}}
	id := activities.WorkerIdentity(wsQueue)
	version, err := deploymentOptions(cfg.Worker)
	if err != nil {
		j.Close()
		return nil, err
	}
	main := worker.New(c, cfg.Temporal.TaskQueue, worker.Options{
		Interceptors:      intercept,
		Identity:          id,
		DeploymentOptions: version,
	})
	main.RegisterWorkflowWithOptions(workflows.SwarmWorkflow, workflow.RegisterOptions{Name: workflows.SwarmWorkflowName})
	main.RegisterWorkflowWithOptions(workflows.SubAgentWorkflow, workflow.RegisterOptions{Name: workflows.SubAgentWorkflowName})
	main.RegisterActivity(acts)

	llmWorker := worker.New(c, workflows.LLMQueue(cfg.Temporal.TaskQueue), worker.Options{
		MaxConcurrentActivityExecutionSize: cfg.LLM.MaxConcurrent,
		TaskQueueActivitiesPerSecond:       cfg.LLM.RequestsPerSecond,
		Interceptors:                       intercept,
		Identity:                           id,
		DeploymentOptions:                  version,
	})
	llmWorker.RegisterActivity(acts)

	// Cancellation reaches an activity only in a heartbeat's response, and
	// the SDK throttles heartbeats to 80% of the heartbeat timeout (0.8 ×
	// 20 s = 16 s): a cancelled run's bash would run on that long. Sending every heartbeat
	// the tools record (every 5 s) bounds it.
	// The workspace worker also runs the sub-agent workflows of the runs
	// whose host this is: their model and tool activities read this
	// host's transcripts and worktrees, and being on the workflow's own
	// queue they are dispatched eagerly (in the workflow task's response).
	ws := worker.New(c, wsQueue, worker.Options{
		MaxHeartbeatThrottleInterval: time.Second,
		Interceptors:                 intercept,
		Identity:                     id,
		DeploymentOptions:            version,
	})
	ws.RegisterWorkflowWithOptions(workflows.SubAgentWorkflow, workflow.RegisterOptions{Name: workflows.SubAgentWorkflowName})
	ws.RegisterActivity(acts)
	logger.Debug("workers created", zap.String("task_queue", cfg.Temporal.TaskQueue), zap.String("workspace_queue", wsQueue))
	return &Workers{
		list:    []worker.Worker{main, llmWorker, ws},
		Queue:   wsQueue,
		sandbox: sandbox,
		journal: j,
		client:  c,
		logger:  logger,
		pace:    pace,
		version: version,
	}, nil
}

// newSandbox builds the bash sandbox, which checks once that it works here,
// and says at start-up how model-run commands are confined: nothing runs
// unconfined without a log line saying so.
func newSandbox(cfg *config.Config, root string, logger *zap.Logger) *tools.Sandbox {
	sb := tools.NewSandbox(tools.SandboxConfig{
		Off:            cfg.Tools.Sandbox == "off",
		Network:        cfg.Tools.Bash.Network == "on",
		EnvPassthrough: cfg.Tools.Bash.EnvPassthrough,
		MemoryMaxBytes: cfg.Tools.Bash.MemoryMaxBytes,
		TmpMaxBytes:    cfg.Tools.Bash.TmpMaxBytes,
		// The worker's state: every run's worktrees, transcripts and
		// journals, the embedded server's database, the config file.
		Hide:          []string{root, filepath.Dir(cfg.Embedded.DBPath), cfg.File},
		ReadOnlyPaths: cfg.Tools.Bash.ReadOnlyPaths,
		WorkspaceRoot: root,
	})
	switch {
	case sb.Mode() == "off":
		logger.Warn("sandbox: " + sb.Describe())
	case sb.Err() != nil:
		logger.Error("sandbox: bash is refused", zap.Error(sb.Err()))
	default:
		logger.Info("sandbox: " + sb.Describe())
	}
	return sb
}

// Start fails the activities a killed predecessor left running (so they
// retry now, not after their heartbeat timeout) and starts every worker; on
// error the started ones are stopped.
func (w *Workers) Start() error {
	w.journal.recover(context.Background(), w.client, w.logger)
	ctx, cancel := context.WithCancel(context.Background())
	w.stopRun = cancel
	go w.pace.Run(ctx)
	for i, wk := range w.list {
		if err := wk.Start(); err != nil {
			for _, started := range w.list[:i] {
				started.Stop()
			}
			w.journal.Close()
			cancel()
			return fmt.Errorf("start worker: %w", err)
		}
	}
	if w.version.UseVersioning {
		if err := ensureCurrent(ctx, w.client, w.version.Version, w.logger); err != nil {
			w.Stop()
			return err
		}
	}
	return nil
}

// Stop stops every worker, removes the sandbox's cgroup and releases the
// in-flight journal.
func (w *Workers) Stop() {
	for _, wk := range w.list {
		wk.Stop()
	}
	w.sandbox.Close()
	w.journal.Close()
	if w.stopRun != nil {
		w.stopRun()
	}
}

var unsafeQueueChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// WorkspaceQueue names this host's workspace queue. Worktrees live on one
// host's disk, so every activity that touches them goes to that host. host
// is workspace.host; "" names the queue after the machine's hostname.
func WorkspaceQueue(main, host string) string {
	if host == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "localhost"
		}
		host = h
	}
	return main + activities.WorkspaceQueueInfix + strings.Trim(unsafeQueueChars.ReplaceAllString(host, "-"), "-")
}

// llmOptions builds the model client's options from the llm.* keys.
func llmOptions(c config.LLMConfig, scrubber *secret.Scrubber) llm.Options {
	temperature := float32(c.Temperature)
	return llm.Options{
		BaseURL: c.BaseURL,
		APIKey:  c.APIKey,
		Timeout: c.Timeout,
		Secrets: scrubber,
		Sampling: llm.Sampling{
			Temperature: &temperature,
			MaxTokens:   c.MaxTokens,
			Reasoning:   c.Reasoning,
		},
	}
}
