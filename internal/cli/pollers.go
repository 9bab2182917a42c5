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

// noWorkerLine is what status and watch say of a running run no worker
// serves, instead of the gRPC error of a query nobody answers.
func noWorkerLine(id string) string {
	return fmt.Sprintf("no worker is running: start one with `codeswarm dev` or `codeswarm watch %s`", id)
}
