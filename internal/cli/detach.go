package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"codeswarm/activities"
	"codeswarm/workflows"
)

// ExitInterrupted is the exit code of a command left with Ctrl-C (128 +
// SIGINT, as shells report it): the run is left as it is.
const ExitInterrupted = 130

// leftRun is a command that stopped following a run before it ended: by
// `q` on the live screen (exit 0: the user chose to) or Ctrl-C (exit 130).
type leftRun struct {
	id   string
	quit bool // q, not Ctrl-C
}

func (e leftRun) Error() string { return "left run " + e.id }

// detachedErr is what a command that left a run prints, and its exit code.
type detachedErr struct {
	msg  string
	code int
}

func (e detachedErr) Error() string { return e.msg }

// detached says, in one line, what becomes of a run this process stops
// following: whether anything still works on it once this process (its
// worker, perhaps its embedded server) is gone.
func (e *env) detached(l leftRun) detachedErr {
	code := ExitInterrupted
	if l.quit {
		code = ExitOK
	}
	// ctx is likely cancelled (Ctrl-C): ask with a fresh, short one.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return detachedErr{msg: e.whatBecomesOf(ctx, l.id), code: code}
}

func (e *env) whatBecomesOf(ctx context.Context, id string) string {
	d, err := e.client.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return fmt.Sprintf("left run %s; `codeswarm watch %s` follows it again", id, id)
	}
	if d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return fmt.Sprintf("left run %s, which has ended (%s); `codeswarm result %s` shows it", id, runState(d.GetWorkflowExecutionInfo()), id)
	}
	queue := d.GetExecutionConfig().GetTaskQueue().GetName()
	if e.server != nil {
		return fmt.Sprintf("left run %s: it stops with this process's embedded Temporal server, which keeps its state; "+
			"`codeswarm watch %s` starts both again and the run goes on where it was", id, id)
	}
	if n := e.otherWorkers(ctx, queue); n > 0 {
		return fmt.Sprintf("left run %s: it goes on in Temporal, served by %d other worker%s; `codeswarm watch %s` follows it again", id, n, plural(n), id)
	}
	if e.workers != nil {
		return fmt.Sprintf("left run %s: it waits in Temporal with no worker (this process was its worker; its calls in flight are retried when one is back); "+
			"`codeswarm watch %s` starts one and follows it, `codeswarm cancel %s` stops it", id, id, id)
	}
	return fmt.Sprintf("left run %s: no worker serves its queue %s; `codeswarm watch %s` starts one and follows it", id, queue, id)
}

// otherWorkers counts the workers other than this process's that poll
// queue for workflow tasks (a worker that just stopped may still be
// listed for about a minute).
func (e *env) otherWorkers(ctx context.Context, queue string) int {
	resp, err := e.client.DescribeTaskQueue(ctx, queue, enumspb.TASK_QUEUE_TYPE_WORKFLOW)
	if err != nil {
		return 0
	}
	mine := ""
	if e.workers != nil {
		mine = activities.WorkerIdentity(e.workers.Queue)
	}
	n := 0
	for _, p := range resp.GetPollers() {
		if p.GetIdentity() != mine {
			n++
		}
	}
	return n
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// watchWorker starts this process's worker for the run watch follows: a
// running run needs one to go on, a closed one to answer the progress
// query (a worker replays it). Always on a run's own queue (another
// process's worker there serves the same run), and on the shared queue only
// when no worker polls it, since there this worker also runs other runs'
// tasks.
func (e *env) watchWorker(ctx context.Context, id string) error {
	d, err := e.client.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return nil // followAndReport says what there is to say
	}
	queue := d.GetExecutionConfig().GetTaskQueue().GetName()
	if !strings.HasPrefix(queue, workflows.RunQueue(e.cfg.Temporal.TaskQueue, "")) && workerServing(ctx, e.client, queue) {
		return nil
	}
	return e.startWorker(queue)
}
