package cli

import (
	"context"
	"errors"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
)

// pollerClient answers DescribeTaskQueue only.
type pollerClient struct {
	client.Client
	pollers int
	err     error
}

func (c pollerClient) DescribeTaskQueue(context.Context, string, enumspb.TaskQueueType) (*workflowservice.DescribeTaskQueueResponse, error) {
	if c.err != nil {
		return nil, c.err
	}
	resp := &workflowservice.DescribeTaskQueueResponse{}
	for range c.pollers {
		resp.Pollers = append(resp.Pollers, &taskqueuepb.PollerInfo{Identity: "w"})
	}
	return resp, nil
}

func TestWorkerServing(t *testing.T) {
	tests := []struct {
		name  string
		c     pollerClient
		queue string
		want  bool
	}{
		{"no poller", pollerClient{}, "q", false},
		{"a poller", pollerClient{pollers: 1}, "q", true},
		{"cannot ask", pollerClient{err: errors.New("unavailable")}, "q", true},
		{"no queue", pollerClient{}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := workerServing(context.Background(), tt.c, tt.queue); got != tt.want {
				t.Errorf("workerServing = %v, want %v", got, tt.want)
			}
		})
	}
	if got, want := noWorkerLine("r1", false), "no worker is running: start one with `codeswarm dev` or `codeswarm watch r1`"; got != want {
		t.Errorf("noWorkerLine = %q, want %q", got, want)
	}
	if got, want := noWorkerLine("r1", true), "no worker is running: start one with `codeswarm watch r1`"; got != want {
		t.Errorf("noWorkerLine of a run's own queue = %q, want %q", got, want)
	}
}
