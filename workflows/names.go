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

func llmOptions(ctx workflow.Context, timeout time.Duration) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:              LLMQueue(workflow.GetInfo(ctx).TaskQueueName),
		StartToCloseTimeout:    timeout + 30*time.Second,
		ScheduleToCloseTimeout: llmRetryWindow,
		HeartbeatTimeout:       heartbeatTimeout,
		// 429s and 5xx retry until the window closes: backing off, not giving up.
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
	})
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
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second, MaximumAttempts: int32(retries + 1)},
	})
}
