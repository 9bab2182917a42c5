package activities

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
)

// DefaultHostLostAfter is how long a workspace queue may go without a poll
// before its host counts as lost (workspace.host_lost_after). A live idle
// worker refreshes its poll time only when a long poll starts or ends, and
// a Temporal server ends long polls after matching.longPollExpirationInterval
// (1 minute by default): the bound must be above that.
const DefaultHostLostAfter = 90 * time.Second

// HostStatusInput names the workspace queue whose host is checked.
type HostStatusInput struct {
	Queue string `json:"queue"`
}

// WatchHostInput names the workspace queue to watch and what the run
// believes of its host now: the watch returns when that changes.
type WatchHostInput struct {
	Queue string `json:"queue"`
	Alive bool   `json:"alive"`
}

// HostStatus is whether a workspace queue's host polls it, from the
// server's poller information.
type HostStatus struct {
	Queue string `json:"queue"`
	Alive bool   `json:"alive"`
	// LastSeen is the latest poll of any of its workers; zero if none is
	// known to the server.
	LastSeen time.Time `json:"last_seen"`
	Pollers  int       `json:"pollers"`
	// Ended: the run ended the watch (EndHostWatch), nothing was checked.
	Ended bool `json:"ended,omitempty"`
}

// CheckHost reports at once whether the host of in.Queue is polling it (the
// move update checks its target with it).
func (a *Activities) CheckHost(ctx context.Context, in HostStatusInput) (HostStatus, error) {
	return a.hostStatus(ctx, in.Queue)
}

// WatchHost returns only when the liveness of in.Queue's host differs from
// in.Alive, heartbeating meanwhile: a healthy run's watch costs no history
// at all. It runs on the main queue, so any host's worker can watch the
// run's host; if the watching worker dies, its heartbeat timeout hands the
// watch to another.
func (a *Activities) WatchHost(ctx context.Context, in WatchHostInput) (HostStatus, error) {
	every := a.hostLostAfter() / 4
	every = min(max(every, 200*time.Millisecond), 5*time.Second)
	for {
		st, err := a.hostStatus(ctx, in.Queue)
		if ctx.Err() != nil {
			// Stopped while asking (the run ended, the worker stops): a
			// heartbeat now would only fail and log a warning.
			return HostStatus{}, watchStopped(ctx)
		}
		activity.RecordHeartbeat(ctx, st)
		if err == nil && st.Alive != in.Alive {
			return st, nil
		}
		if err != nil && activity.IsActivity(ctx) {
			activity.GetLogger(ctx).Warn("watch host: describe task queue", "queue", in.Queue, "error", err)
		}
		select {
		case <-ctx.Done():
			return HostStatus{}, watchStopped(ctx)
		case <-time.After(every):
		}
	}
}

// EndHostWatchInput names the WatchHost call a run ends.
type EndHostWatchInput struct {
	ActivityID string `json:"activity_id"`
}

// EndHostWatch completes the run's WatchHost call from the outside, as a
// run that ends or hands over does: the call's history then ends with its
// completion, instead of leaving it pending for good in the Web UI (a
// cancel would reach the watch only with its next heartbeat, seconds
// later). The watch itself stops at its next heartbeat, which finds the
// call gone. Already ended (NotFound) is success. A local activity of the
// parent: ActivityInfo names the run.
func (a *Activities) EndHostWatch(ctx context.Context, in EndHostWatchInput) error {
	if a.Temporal == nil {
		return nil
	}
	info := activity.GetInfo(ctx)
	err := a.Temporal.CompleteActivityByID(ctx, info.Namespace, info.WorkflowExecution.ID, info.WorkflowExecution.RunID,
		in.ActivityID, HostStatus{Ended: true}, nil)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return nil
	}
	return err
}

// watchStopped is how WatchHost ends when the run stops watching (it moved
// or ended) or the worker stops: expected, so benign (the SDK logs it at
// debug level, not as an error), and retried like any failure.
func watchStopped(ctx context.Context) error {
	return temporal.NewApplicationErrorWithOptions("host watch stopped: "+context.Cause(ctx).Error(), "host.watch_stopped",
		temporal.ApplicationErrorOptions{
			Category: temporal.ApplicationErrorCategoryBenign,
			Cause:    ctx.Err(),
		})
}

func (a *Activities) hostLostAfter() time.Duration {
	if a.HostLostAfter > 0 {
		return a.HostLostAfter
	}
	return DefaultHostLostAfter
}

// hostStatus reads the activity pollers of queue. A host counts as alive
// when one of its workers polled within hostLostAfter: a killed worker's
// entry stays in the server's poller list for minutes with its last time.
func (a *Activities) hostStatus(ctx context.Context, queue string) (HostStatus, error) {
	if a.Temporal == nil {
		return HostStatus{}, temporal.NewNonRetryableApplicationError("no Temporal client on this worker", "host.noclient", nil)
	}
	resp, err := a.Temporal.DescribeTaskQueue(ctx, queue, enumspb.TASK_QUEUE_TYPE_ACTIVITY)
	if err != nil {
		return HostStatus{Queue: queue}, fmt.Errorf("describe task queue %s: %w", queue, err)
	}
	st := HostStatus{Queue: queue, Pollers: len(resp.GetPollers())}
	for _, p := range resp.GetPollers() {
		if t := p.GetLastAccessTime().AsTime(); p.GetLastAccessTime() != nil && t.After(st.LastSeen) {
			st.LastSeen = t
		}
	}
	st.Alive = !st.LastSeen.IsZero() && time.Since(st.LastSeen) <= a.hostLostAfter()
	return st, nil
}

// hasSearchAttribute reports whether the run's namespace knows name, so a
// workflow upserts it only where that cannot fail its workflow task.
func (a *Activities) hasSearchAttribute(ctx context.Context, name string) bool {
	if a.Temporal == nil || !activity.IsActivity(ctx) {
		return false
	}
	resp, err := a.Temporal.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: activity.GetInfo(ctx).Namespace})
	if err != nil {
		return false
	}
	_, ok := resp.GetCustomAttributes()[name]
	return ok
}

// HostOfQueue is the host name in a workspace queue's name
// (<main>-ws-<host>), or the queue itself if it is not one of main's.
func HostOfQueue(main, queue string) string {
	if host, ok := strings.CutPrefix(queue, main+WorkspaceQueueInfix); ok {
		return host
	}
	return queue
}

// HostQueue names host's workspace queue under main.
func HostQueue(main, host string) string { return main + WorkspaceQueueInfix + host }

// TerminateChildInput names a sub-agent workflow left behind on a lost host.
type TerminateChildInput struct {
	WorkflowID string `json:"workflow_id"`
	Reason     string `json:"reason"`
}

// TerminateChild ends a sub-agent whose host is gone. Cancelling it would
// not do: its clean-up commits on the dead host's queue and would wait
// forever. A workflow that already closed is left as it is.
func (a *Activities) TerminateChild(ctx context.Context, in TerminateChildInput) error {
	err := a.Temporal.TerminateWorkflow(ctx, in.WorkflowID, "", in.Reason)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("terminate %s: %w", in.WorkflowID, err)
	}
	return nil
}

// WorkerIdentity is what this process's workers tell the server: the SDK's
// default (pid@hostname@) followed by the workspace queue, so `codeswarm
// workers` finds every host's queue from the main queue's pollers.
func WorkerIdentity(wsQueue string) string {
	h, err := os.Hostname()
	if err != nil {
		h = "localhost"
	}
	return fmt.Sprintf("%d@%s@%s", os.Getpid(), h, wsQueue)
}

// QueueOfIdentity is the workspace queue in a WorkerIdentity, or "".
func QueueOfIdentity(identity string) string {
	parts := strings.SplitN(identity, "@", 3)
	if len(parts) < 3 {
		return ""
	}
	return parts[2]
}

// AliveHostsInput names a run's main task queue.
type AliveHostsInput struct {
	Main string `json:"main"`
}

// AliveHostsResult lists the workspace hosts whose queues are polled now.
type AliveHostsResult struct {
	Hosts []string `json:"hosts"`
}

// AliveHosts finds the workspace hosts of main from its pollers' identities
// (WorkerIdentity) and keeps those whose own queue is polled.
func (a *Activities) AliveHosts(ctx context.Context, in AliveHostsInput) (AliveHostsResult, error) {
	var queues []string
	for _, typ := range []enumspb.TaskQueueType{enumspb.TASK_QUEUE_TYPE_WORKFLOW, enumspb.TASK_QUEUE_TYPE_ACTIVITY} {
		resp, err := a.Temporal.DescribeTaskQueue(ctx, in.Main, typ)
		if err != nil {
			return AliveHostsResult{}, fmt.Errorf("describe task queue %s: %w", in.Main, err)
		}
		for _, p := range resp.GetPollers() {
			if q := QueueOfIdentity(p.GetIdentity()); strings.HasPrefix(q, in.Main+WorkspaceQueueInfix) {
				queues = append(queues, q)
			}
		}
	}
	slices.Sort(queues)
	out := AliveHostsResult{Hosts: []string{}}
	for _, q := range slices.Compact(queues) {
		st, err := a.hostStatus(ctx, q)
		if err != nil {
			return AliveHostsResult{}, err
		}
		if st.Alive {
			out.Hosts = append(out.Hosts, HostOfQueue(in.Main, q))
		}
	}
	return out, nil
}
