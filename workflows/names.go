// Package workflows holds codeswarm's deterministic orchestration: the parent
// SwarmWorkflow and one SubAgentWorkflow per subtask. It talks to the outside
// world only through activities.
package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"codeswarm/activities"
)

// a is the only bridge to activities: method values on a nil pointer name
// the registered activities.
var a *activities.Activities

// SwarmWorkflowName and SubAgentWorkflowName are the registered type names.
const (
	SwarmWorkflowName    = "SwarmWorkflow"
	SubAgentWorkflowName = "SubAgentWorkflow"
)

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

// Timeouts and retries of every activity family, in one place.
const (
	// heartbeatTimeout bounds how long a dead worker goes unnoticed: every
	// activity heartbeats every 5 s while it runs.
	heartbeatTimeout = 20 * time.Second
	gitTimeout       = 5 * time.Minute
	quickToolTimeout = 2 * time.Minute
	llmRetryWindow   = time.Hour
)

// llmOptions runs a model activity on queue: the shared LLM queue (runs
// started before workOnHostVersion) or the run's workspace queue, where the
// conversation is.
func llmOptions(ctx workflow.Context, queue string, timeout time.Duration) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:              queue,
		StartToCloseTimeout:    timeout + 30*time.Second,
		ScheduleToCloseTimeout: llmRetryWindow,
		HeartbeatTimeout:       heartbeatTimeout,
		// 429s and 5xx retry until the window closes: backing off, not giving up.
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
	})
}

// permitTimeout bounds one permit attempt once a worker has it: the
// activity returns at once, so only a dead worker reaches it.
const permitTimeout = 10 * time.Second

// permitOptions runs LLMPermit on the shared LLM queue (llmQueue), whose
// server-side rate limit (llm.requests_per_second, the adaptive 429 cut)
// holds for every worker of the cluster: a permit waits in that queue until
// the limit lets it through. It may wait as long as a model call may retry.
func permitOptions(ctx workflow.Context, llmQueue string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:              llmQueue,
		StartToCloseTimeout:    permitTimeout,
		ScheduleToCloseTimeout: llmRetryWindow,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: 100 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second},
	})
}

// callLLM runs one model activity with its permit: on the run's workspace
// queue after a permit from the shared LLM queue when onHost, else (runs
// started before workOnHostVersion) on the shared LLM queue itself.
func callLLM(ctx workflow.Context, onHost bool, llmQueue, wsQueue string, timeout time.Duration, activity, in, out any) error {
	if !onHost {
		return workflow.ExecuteActivity(llmOptions(ctx, llmQueue, timeout), activity, in).Get(ctx, out)
	}
	if err := workflow.ExecuteActivity(permitOptions(ctx, llmQueue), a.LLMPermit).Get(ctx, nil); err != nil {
		return fmt.Errorf("LLM permit: %w", err)
	}
	return workflow.ExecuteActivity(llmOptions(ctx, wsQueue, timeout), activity, in).Get(ctx, out)
}

// workOnHostChange versions where a run's sub-agents and model calls run:
// from workOnHostVersion each SubAgentWorkflow runs on its run's workspace
// queue and model activities run there too (after an LLMPermit from the
// shared LLM queue), so every activity that reads a transcript runs on the
// host whose disk holds it. Older histories keep the shared LLM queue.
const (
	workOnHostChange  = "work-on-host"
	workOnHostVersion = 1
)

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
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second, MaximumAttempts: int32(retries + 1)},
	})
}
