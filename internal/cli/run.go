package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"

	"codeswarm/activities"
	"codeswarm/config"
	"codeswarm/control"
	"codeswarm/workflows"
)

type flagSource interface{ Flags() *pflag.FlagSet }

// runFlagKeys maps run's flags to config keys.
var runFlagKeys = map[string]string{
	"strategy":       "swarm.strategy",
	"max-subagents":  "swarm.max_subagents",
	"max-concurrent": "swarm.max_concurrent",
	"max-steps":      "swarm.max_steps_per_subagent",
	"timeout":        "swarm.subagent_timeout",
	"model":          "llm.model",
	"planner-model":  "llm.planner_model",
}

type runOpts struct {
	repo, task, taskFile, base, id string
	apply, detach, noWorker, json  bool
	// serveOthers puts the run on the shared task queue, where the
	// in-process worker also runs other runs' tasks.
	serveOthers bool
	// approvePlan holds the run after planning until approve or reject.
	approvePlan bool
	// noCache skips the result cache's lookups (SwarmInput.NoCache); what
	// completes is still stored.
	noCache bool
	// continueAsNewEvery is a hidden knob for tests and benchmarks.
	continueAsNewEvery int
	// parentCANAfter is a hidden knob for tests: the parent continues as
	// new once its history has this many events.
	parentCANAfter int
	// parentDrain is another: how long the parent drains its sub-agents
	// before it continues as new (negative: not at all).
	parentDrain time.Duration
}

func newRunCmd(g *globalOpts, stdio IO) *cobra.Command {
	o := &runOpts{}
	cmd := &cobra.Command{
		Use:   "run --repo PATH (--task TEXT | --task-file F)",
		Short: "Decompose a task and run it as a swarm of sub-agents",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, logger, err := loadConfig(g, cmd, runFlagKeys)
			if err != nil {
				return err
			}
			defer func() { _ = logger.Sync() }()
			return runSwarm(cmd.Context(), cfg, logger, o, stdio)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.repo, "repo", ".", "path of the git repository to refactor")
	f.StringVar(&o.task, "task", "", "the task, as text")
	f.StringVar(&o.taskFile, "task-file", "", "read the task from this file")
	f.StringVar(&o.base, "base", "HEAD", "base ref the run starts from")
	f.String("strategy", "automatic", "decomposition: automatic|by_domain|by_data|by_stage|none")
	f.StringVar(&o.id, "id", "", "workflow ID of the run (default swarm-<slug>-<random>); a running ID is attached to, an ended one is refused")
	f.Int("max-subagents", 0, "maximum number of subtasks")
	f.Int("max-concurrent", 0, "sub-agents running at once")
	f.Int("max-steps", 0, "maximum model steps per sub-agent")
	f.Duration("timeout", 0, "sub-agent timeout without progress")
	f.String("model", "", "model for sub-agents (and the planner unless --planner-model or llm.planner_model is set); overrides llm.model")
	f.String("planner-model", "", "model for the planner; overrides llm.planner_model")
	f.BoolVar(&o.apply, "apply", false, "fast-forward your checked-out branch to the result if it is safe")
	f.BoolVar(&o.detach, "detach", false, "print the workflow ID and return")
	f.BoolVar(&o.noWorker, "no-worker", false, "do not start an in-process worker: the run goes to temporal.task_queue for the workers serving it")
	f.BoolVar(&o.serveOthers, "serve-others", false, "run on the shared temporal.task_queue, where the in-process worker also works on other runs "+
		"(by default it serves only this run, on a queue of its own)")
	f.BoolVar(&o.json, "json", false, "print only the result JSON")
	f.BoolVar(&o.approvePlan, "approve-plan", false, "stop after planning until `codeswarm approve ID` (or `reject ID --reason TEXT`); `codeswarm plan ID` shows the plan")
	f.BoolVar(&o.noCache, "no-cache", false, "run every sub-agent and the planner even when the result cache holds their work (completed work is still stored)")
	f.IntVar(&o.continueAsNewEvery, "continue-as-new-every", 0, "continue sub-agents as new every N steps (testing)")
	_ = f.MarkHidden("continue-as-new-every")
	f.IntVar(&o.parentCANAfter, "parent-continue-as-new-after", 0, "continue the parent as new once its history has N events (testing)")
	_ = f.MarkHidden("parent-continue-as-new-after")
	f.DurationVar(&o.parentDrain, "parent-handover-drain", 0, "once the parent's continue-as-new is due, start no sub-agent for at most this long while its own end; negative: hand over at once (testing)")
	_ = f.MarkHidden("parent-handover-drain")
	return cmd
}

func runSwarm(ctx context.Context, cfg *config.Config, logger *zap.Logger, o *runOpts, stdio IO) error {
	// The run's input (git's version, the repository, the base commit, the
	// dirty check: several git processes) and the connection (a dial, or
	// the embedded server's start) do not depend on each other, so they run
	// side by side and the run starts after the slower of the two, not
	// after both. A bad input cancels the connection and is what is
	// reported, as when the input was checked first.
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type input struct {
		in  workflows.SwarmInput
		id  string
		err error
	}
	inputs := make(chan input, 1)
	// What the input's check prints (the note on a dirty tree) waits in a
	// buffer until both are done: the connection may log to the same
	// stream meanwhile.
	var held bytes.Buffer
	go func() {
		in, id, err := runInput(ctx, cfg, o, IO{Out: &held, Err: &held})
		if err != nil {
			cancel()
		}
		inputs <- input{in, id, err}
	}()
	e, cerr := connect(cctx, cfg, logger, connectOpts{})
	r := <-inputs
	_, _ = held.WriteTo(stdio.Err)
	if r.err != nil {
		if cerr == nil {
			e.close()
		}
		return r.err
	}
	if cerr != nil {
		return cerr
	}
	defer e.close()
	return startAndFollow(ctx, e, r.id, r.in, o, stdio)
}

// startAndFollow starts the run (or attaches to it) and, unless detached,
// follows it to the end on an existing connection. Unless o.noWorker or
// o.detach (a worker that returns at once is no use), it starts this
// process's worker on the run's queue: a queue of the run's own
// (workflows.RunQueue) unless o.serveOthers, or, when attaching, the queue
// the run was started on. A detached run goes to temporal.task_queue, for
// the workers that serve it.
func startAndFollow(ctx context.Context, e *env, id string, in workflows.SwarmInput, o *runOpts, stdio IO) error {
	// Which search attributes the namespace has is asked beside the run
	// ID's check: two round trips to the server at the same time.
	visibility := make(chan workflows.Visibility, 1)
	go func() { visibility <- e.visibility(ctx) }()
	queue, err := checkRunID(ctx, e, id, in.RepoPath)
	in.Visibility = <-visibility
	if err != nil {
		return err
	}
	worker := !o.noWorker && !o.detach
	if queue == "" {
		queue = e.cfg.Temporal.TaskQueue
		if worker && !o.serveOthers {
			queue = workflows.RunQueue(queue, id)
		}
	}
	if worker {
		if err := e.startWorker(queue); err != nil {
			return err
		}
	}
	run, err := startRun(ctx, e, id, queue, in)
	if err != nil {
		return err
	}
	if !o.json {
		printStart(stdio, e, run.GetID())
	}
	if o.detach {
		fmt.Fprintln(stdio.Out, run.GetID())
		if e.server != nil && !o.json {
			fmt.Fprintln(stdio.Err, "note: the embedded server stops with this process; run `codeswarm dev` to let the run continue")
		}
		return nil
	}
	return awaitAndReport(ctx, e, run.GetID(), o.json, stdio)
}

// startRun starts the workflow; in.Visibility says which search attributes
// the namespace has (env.visibility).
func startRun(ctx context.Context, e *env, id, queue string, in workflows.SwarmInput) (client.WorkflowRun, error) {
	opts := client.StartWorkflowOptions{
		ID: id, TaskQueue: queue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		// checkRunID refused a closed run's ID; this closes the race with a
		// run that ends between that check and this start.
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		// started: when the run began; its Temporal start time is its
		// current run's, which a continue-as-new moves on (runStarted).
		Memo: map[string]any{"task": activities.FirstLine(in.Task, 200), "repo": in.RepoPath,
			memoStarted: time.Now().UTC().Format(time.RFC3339)},
		// What the Web UI shows of the run before anything else; user
		// metadata goes through the data converter, so it is encrypted
		// with codec.key like the input.
		StaticSummary: activities.FirstLine(in.Task, 200),
		StaticDetails: fmt.Sprintf("**Repository** %s · **base** %s · **strategy** %s · **model** %s\n\n**Task**\n\n%s\n",
			in.RepoPath, in.BaseRef, in.Strategy, in.Model, in.Task),
	}
	if in.Visibility.SearchAttributes {
		// Set at start too, so the run is found by state and repository
		// before its first workflow task.
		sa := []temporal.SearchAttributeUpdate{control.SAStatusKey.ValueSet(control.RunStateRunning)}
		if !in.Visibility.Private {
			sa = append(sa, control.SARepoKey.ValueSet(in.RepoPath))
		}
		opts.TypedSearchAttributes = temporal.NewSearchAttributes(sa...)
	}
	run, err := e.client.ExecuteWorkflow(ctx, opts, workflows.SwarmWorkflowName, in)
	if err != nil {
		return nil, fmt.Errorf("start workflow %s: %w", id, err)
	}
	return run, nil
}

func printStart(stdio IO, e *env, id string) {
	fmt.Fprintf(stdio.Out, "run %s started\n", id)
	if u := e.workflowURL(id); u != "" {
		fmt.Fprintf(stdio.Out, "Web UI: %s\n", u)
	}
}

// followMode is how a command follows a run: only the JSON at the end,
// plain event lines (with tool calls when verbose), or the live screen.
type followMode struct {
	json, verbose, live bool
}

// awaitAndReport follows the run's events until it ends, then prints the
// summary (or only the JSON) and turns failure into the exit code.
func awaitAndReport(ctx context.Context, e *env, id string, asJSON bool, stdio IO) error {
	return followAndReport(ctx, e, id, followMode{json: asJSON}, stdio)
}

func followAndReport(ctx context.Context, e *env, id string, mode followMode, stdio IO) error {
	var res activities.SwarmResult
	var err error
	if mode.live && !mode.json {
		res, err = watchLive(ctx, e.client, id, stdio.Out, mode.verbose, e.cfg.Watch.SlowCallAfter)
	} else {
		events := eventPrinter{}
		if !mode.json {
			events.out = stdio.Out
		}
		if mode.verbose {
			events.tools = newToolTracker()
		}
		res, err = follow(ctx, e.client, id, &events)
	}
	var left leftRun
	if errors.As(err, &left) {
		return e.detached(left)
	}
	if err != nil {
		return err
	}
	asJSON := mode.json
	if asJSON {
		return printJSON(stdio, res)
	}
	printSummary(stdio, res)
	return resultErr(res)
}

func printJSON(stdio IO, res activities.SwarmResult) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintln(stdio.Out, string(b))
	return resultErr(res)
}

// outcome is a run's result, or why it could not be read.
type outcome struct {
	res activities.SwarmResult
	err error
}

// awaitResult waits for the run's result in the background.
func awaitResult(ctx context.Context, c client.Client, id string) <-chan outcome {
	done := make(chan outcome, 1)
	go func() {
		res, err := activities.RunResult(ctx, c, id)
		done <- outcome{res, err}
	}()
	return done
}

// noResult explains a run that ended without a result (Temporal ended it).
func noResult(id string, err error) error {
	var term *temporal.TerminatedError
	var timeout *temporal.TimeoutError
	switch {
	case errors.As(err, &term):
		return stoppedRun{fmt.Sprintf("run %s was terminated, so it has no result: its sub-agents stop before their next model call, their work committed on their branches; "+
			"`codeswarm status %s` shows what was done, `codeswarm clean %s` removes its worktrees", id, id, id)}
	case errors.As(err, &timeout):
		return fmt.Errorf("run %s timed out (its workflow execution timeout) and has no result; `codeswarm status %s` shows what was done", id, id)
	}
	return fmt.Errorf("run %s: %w", id, err)
}

// interrupted is the error of a follow ended by Ctrl-C (or q on the live
// screen); followAndReport turns it into what becomes of the run.
func interrupted(id string, quit bool) error { return leftRun{id: id, quit: quit} }

// follow polls the progress query and waits for the result.
func follow(ctx context.Context, c client.Client, id string, p *eventPrinter) (activities.SwarmResult, error) {
	done := awaitResult(ctx, c, id)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case o := <-done:
			if o.err != nil && ctx.Err() != nil {
				// Ctrl-C ended the wait too: both cases were ready, and
				// the user left the run rather than it ending.
				return activities.SwarmResult{}, interrupted(id, false)
			}
			p.poll(ctx, c, id)
			if o.err != nil {
				return activities.SwarmResult{}, noResult(id, o.err)
			}
			return o.res, nil
		case <-tick.C:
			p.poll(ctx, c, id)
		case <-ctx.Done():
			return activities.SwarmResult{}, interrupted(id, false)
		}
	}
}
