// Package workflows holds codeswarm's deterministic orchestration: the parent
// SwarmWorkflow and one SubAgentWorkflow per subtask. It talks to the outside
// world only through activities.
package workflows

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"codeswarm/activities"

	"codeswarm/internal/textcut"
)

// a is the only bridge to activities: method values on a nil pointer name
// the registered activities.
var a *activities.Activities

// SwarmWorkflowName and SubAgentWorkflowName are the registered type names.
const (
	SwarmWorkflowName    = "SwarmWorkflow"
	SubAgentWorkflowName = "SubAgentWorkflow"
)

// RunQueue names the task queue of one run whose worker is a CLI's
// in-process one: that worker polls only it (and the queues named after
// it), so it never picks up another run's tasks, and a run whose CLI is
// gone waits for `codeswarm watch ID` instead of a stranger's worker.
func RunQueue(main, runID string) string { return main + "-run-" + runID }

// LLMQueue names the LLM task queue of a main task queue.
func LLMQueue(main string) string { return main + activities.LLMQueueSuffix }

// IntegrationBranch is the branch a run merges into.
func IntegrationBranch(prefix, runID string) string { return prefix + "/" + runID + "/integration" }

// SubtaskBranch is the branch of one attempt of a subtask.
func SubtaskBranch(prefix, runID, subtaskID string, attempt int) string {
	if attempt > 1 {
		return fmt.Sprintf("%s/%s/%s-r%d", prefix, runID, subtaskID, attempt)
	}
	return prefix + "/" + runID + "/" + subtaskID
}

// ChildWorkflowID derives a sub-agent's workflow ID from its parent's.
func ChildWorkflowID(parentID, subtaskID string, attempt int) string {
	if attempt > 1 {
		return fmt.Sprintf("%s.%s.r%d", parentID, subtaskID, attempt)
	}
	return parentID + "." + subtaskID
}

// MovedChildWorkflowID names a sub-agent restarted by the run's move-th move.
func MovedChildWorkflowID(parentID, subtaskID string, attempt, move int) string {
	return fmt.Sprintf("%s.m%d", ChildWorkflowID(parentID, subtaskID, attempt), move)
}

// MovedSubtaskBranch is the branch of a sub-agent restarted by a move.
func MovedSubtaskBranch(prefix, runID, subtaskID string, attempt, move int) string {
	return fmt.Sprintf("%s-m%d", SubtaskBranch(prefix, runID, subtaskID, attempt), move)
}

// Timeouts and retries of every activity family, in one place.
const (
	// heartbeatTimeout bounds how long a dead worker goes unnoticed: every
	// activity heartbeats every 5 s while it runs.
	heartbeatTimeout = 20 * time.Second
	gitTimeout       = 5 * time.Minute
	quickToolTimeout = 2 * time.Minute
	llmRetryWindow   = time.Hour
)

// llmOptions runs a model activity on queue: the run's workspace queue,
// where the conversation is (or, for a sub-agent started without an
// LLMQueue, the shared LLM queue: see agent.onHost).
func llmOptions(ctx workflow.Context, queue string, timeout time.Duration) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:              queue,
		StartToCloseTimeout:    timeout + 30*time.Second,
		ScheduleToCloseTimeout: llmRetryWindow,
		HeartbeatTimeout:       heartbeatTimeout,
		// 429s and 5xx retry until the window closes: backing off, not giving up.
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    2 * time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
		},
	})
}

// localLLMOptions are llmOptions for a model call run as a local activity
// on the host: the same timeouts and retries (policy), without a heartbeat,
// which a local activity has not; the workflow task it runs in stands for
// it (a restarted worker fails the task of a killed one at once).
func localLLMOptions(ctx workflow.Context, timeout time.Duration, summary string, policy *temporal.RetryPolicy) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		Summary:                activities.FirstLine(summary, summaryCap),
		StartToCloseTimeout:    timeout + 30*time.Second,
		ScheduleToCloseTimeout: llmRetryWindow,
		RetryPolicy:            policy,
	})
}

// permitTimeout bounds one permit attempt once a worker has it: the
// activity returns at once, so only a dead worker reaches it.
const permitTimeout = 10 * time.Second

// permitOptions runs LLMPermit on the shared LLM queue (llmQueue), whose
// server-side rate limit (llm.requests_per_second, the adaptive 429 cut)
// holds for every worker of the cluster: a permit waits in that queue until
// the limit lets it through. It may wait as long as a model call may retry.
// fairness is the run's fairness key ("" for none): on a queue with
// fairness on, the server hands out the waiting permits to the runs in turn
// instead of first come, first served.
func permitOptions(ctx workflow.Context, llmQueue, fairness string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:              llmQueue,
		StartToCloseTimeout:    permitTimeout,
		ScheduleToCloseTimeout: llmRetryWindow,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    100 * time.Millisecond,
			BackoffCoefficient: 2,
			MaximumInterval:    10 * time.Second,
		},
		Priority: temporal.Priority{FairnessKey: fairness},
	})
}

// maxFairnessKey is the server's limit on a fairness key, in bytes.
const maxFairnessKey = 64

// runFairnessKey is the fairness key of this workflow's permits: its run,
// which is the root of its chain (the SwarmWorkflow; a sub-agent is its
// child), so every sub-agent of one run shares one key.
func runFairnessKey(ctx workflow.Context) string {
	info := workflow.GetInfo(ctx)
	run := info.WorkflowExecution.ID
	if info.RootWorkflowExecution != nil && info.RootWorkflowExecution.ID != "" {
		run = info.RootWorkflowExecution.ID
	}
	return fairnessKey(run)
}

// fairnessKey is the fairness key of run ID id: the ID itself, or, for an
// ID over the server's 64-byte limit, its head and a hash of the whole, so
// that two long IDs with one head stay apart.
func fairnessKey(id string) string {
	if len(id) <= maxFairnessKey {
		return id
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(id)) // never fails
	sum := strconv.FormatUint(h.Sum64(), 16)
	return textcut.Prefix(id, maxFairnessKey-len(sum)-1) + "~" + sum
}

// readOnlyToolOptions runs a read-only tool call as a local activity, in the
// sub-agent's own workflow worker: that worker is on the run's host (the
// worktree and the transcript are there), and a local activity needs no
// dispatch and no workflow task of its own. A retry reads again, and once
// the transcript holds the result it is returned as is.
func readOnlyToolOptions(ctx workflow.Context, retries int, summary string) workflow.Context {
	return localWorkspaceOptions(ctx, quickToolTimeout, retries, summary)
}

// localWorkspaceOptions runs a host activity as a local activity with the
// retries of workspaceOptions.
func localWorkspaceOptions(ctx workflow.Context, timeout time.Duration, retries int, summary string) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		Summary:             activities.FirstLine(summary, summaryCap),
		StartToCloseTimeout: timeout,
		RetryPolicy:         workspaceRetries(retries),
	})
}

// llmCall is where one model activity runs and whether it needs a permit.
type llmCall struct {
	onHost   bool   // on wsQueue, else on llmQueue itself
	permit   bool   // on the host: take a permit from llmQueue first
	llmQueue string // the shared, rate-limited LLM queue
	wsQueue  string // the run's workspace queue
	timeout  time.Duration
	summary  string // the activity's one-line summary in the Web UI
	// local: the model call runs as a local activity (on the host only).
	local bool
}

// callLLM runs one model activity: on the run's workspace queue, after a
// permit from the shared LLM queue unless the last answer said no rate limit
// was in force; off the host (a sub-agent started without an LLMQueue), on
// the shared LLM queue itself. On the host, a call the provider answered 429 is not retried
// by Temporal but called again here after a new permit (the activity itself
// waits out the Retry-After), so that retries too are paced by the cluster's
// limit; other failures retry as before, until the retry window closes.
func callLLM(ctx workflow.Context, c llmCall, activity, in, out any) error {
	if !c.onHost {
		return workflow.ExecuteActivity(summarized(llmOptions(ctx, c.llmQueue, c.timeout), c.summary), activity, in).Get(ctx, out)
	}
	start := workflow.Now(ctx)
	actx := summarized(llmOptions(ctx, c.wsQueue, c.timeout), c.summary)
	policy := workflow.GetActivityOptions(actx).RetryPolicy
	policy.NonRetryableErrorTypes = []string{activities.ErrTypeRateLimit}
	actx = workflow.WithRetryPolicy(actx, *policy)
	if c.local {
		actx = localLLMOptions(ctx, c.timeout, c.summary, policy)
	}
	for permit := c.permit; ; permit = true {
		if permit {
			pctx := summarized(permitOptions(ctx, c.llmQueue, runFairnessKey(ctx)), "LLM permit")
			if err := workflow.ExecuteActivity(pctx, a.LLMPermit).Get(ctx, nil); err != nil {
				return fmt.Errorf("LLM permit: %w", err)
			}
		}
		var err error
		if c.local {
			err = workflow.ExecuteLocalActivity(actx, activity, in).Get(ctx, out)
		} else {
			err = workflow.ExecuteActivity(actx, activity, in).Get(ctx, out)
		}
		if !rateLimited(err) || workflow.Now(ctx).Sub(start) >= llmRetryWindow {
			return err
		}
	}
}

// rateLimited reports whether err is a model call answered 429.
func rateLimited(err error) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.Type() == activities.ErrTypeRateLimit
}

// workspaceOptions runs a tool or git activity on queue with retries retries
// (swarm.max_retries): MaximumAttempts is retries+1, so 0 is one attempt and
// never Temporal's "0 = unlimited".
func workspaceOptions(ctx workflow.Context, queue string, timeout time.Duration, retries int) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           queue,
		StartToCloseTimeout: timeout,
		HeartbeatTimeout:    heartbeatTimeout,
		// A cancelled run waits for bash to be killed before it commits the
		// worktree, so nothing the command writes afterwards is left out.
		WaitForCancellation: true,
		RetryPolicy:         workspaceRetries(retries),
	})
}

// workspaceRetries is the retry policy of tool and git activities: retries
// retries (swarm.max_retries), so MaximumAttempts is retries+1 and 0 is one
// attempt, never Temporal's "0 = unlimited".
func workspaceRetries(retries int) *temporal.RetryPolicy {
	return &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    30 * time.Second,
		MaximumAttempts:    int32(retries + 1),
	}
}
