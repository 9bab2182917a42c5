package llmrate

import (
	"context"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
)

// TemporalQueue is an activity task queue's rate limit on a Temporal server
// (v1.28+), read with DescribeTaskQueue and set with UpdateTaskQueueConfig.
// A limit set this way overrides the one workers set when they poll.
type TemporalQueue struct {
	Client    client.Client
	Namespace string
	Name      string
	Identity  string
}

// Limit reads the limit set through the API, if any.
func (q *TemporalQueue) Limit(ctx context.Context) (QueueLimit, error) {
	resp, err := q.Client.WorkflowService().DescribeTaskQueue(ctx, &workflowservice.DescribeTaskQueueRequest{
		Namespace:     q.Namespace,
		TaskQueue:     &taskqueuepb.TaskQueue{Name: q.Name, Kind: enumspb.TASK_QUEUE_KIND_NORMAL},
		TaskQueueType: enumspb.TASK_QUEUE_TYPE_ACTIVITY,
		ReportConfig:  true,
		ReportStats:   true,
	})
	if err != nil {
		return QueueLimit{}, fmt.Errorf("describe task queue %s: %w", q.Name, err)
	}
	rl := resp.GetConfig().GetQueueRateLimit()
	if rl.GetRateLimit() == nil {
		return QueueLimit{}, nil
	}
	return QueueLimit{
		RPS:     float64(rl.GetRateLimit().GetRequestsPerSecond()),
		Set:     true,
		Reason:  rl.GetMetadata().GetReason(),
		Updated: rl.GetMetadata().GetUpdateTime().AsTime(),
		Backlog: resp.GetStats().GetApproximateBacklogCount(),
	}, nil
}

// SetLimit sets the queue's limit, or removes it when rps < 0.
func (q *TemporalQueue) SetLimit(ctx context.Context, rps float64, reason string) error {
	update := &workflowservice.UpdateTaskQueueConfigRequest_RateLimitUpdate{Reason: reason}
	if rps >= 0 {
		update.RateLimit = &taskqueuepb.RateLimit{RequestsPerSecond: float32(rps)}
	}
	_, err := q.Client.WorkflowService().UpdateTaskQueueConfig(ctx, &workflowservice.UpdateTaskQueueConfigRequest{
		Namespace:            q.Namespace,
		Identity:             q.Identity,
		TaskQueue:            q.Name,
		TaskQueueType:        enumspb.TASK_QUEUE_TYPE_ACTIVITY,
		UpdateQueueRateLimit: update,
	})
	if err != nil {
		return fmt.Errorf("update task queue %s config: %w", q.Name, err)
	}
	return nil
}
