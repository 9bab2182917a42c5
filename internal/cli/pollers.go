package cli

import (
	"context"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
)

// workerServing reports whether a worker polls queue for workflow tasks
// (the server remembers a poller for about a minute after it stops). An
// error to ask counts as serving: only a sure "no" changes what we say.
func workerServing(ctx context.Context, c client.Client, queue string) bool {
	if queue == "" {
		return true
	}
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := c.DescribeTaskQueue(qctx, queue, enumspb.TASK_QUEUE_TYPE_WORKFLOW)
	return err != nil || len(resp.GetPollers()) > 0
}

// noWorkerLine is what status says of a running run no worker serves,
// instead of the gRPC error of a query nobody answers. A run on a queue of
// its own (a CLI's run) is served only by `watch`; one on the shared queue
// by any worker.
func noWorkerLine(id string, ownQueue bool) string {
	if ownQueue {
		return fmt.Sprintf("no worker is running: start one with `codeswarm watch %s`", id)
	}
	return fmt.Sprintf("no worker is running: start one with `codeswarm dev` or `codeswarm watch %s`", id)
}
