package workflows_test

import (
	"slices"
	"sync"

	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/workflow"
)

// commandRecorder is a worker interceptor that records what workflows ask
// for: the fairness keys activities are scheduled with, by activity type (a
// local activity counts as scheduled without one: it never waits in a
// queue), and the change IDs GetVersion is asked for. (The test
// environment does not pass priorities on to activities: the scheduling
// options are read where the workflow schedules them.)
type commandRecorder struct {
	interceptor.WorkerInterceptorBase
	mu   sync.Mutex
	keys map[string]map[string]int
	ids  []string
}

func newCommandRecorder() *commandRecorder {
	return &commandRecorder{keys: map[string]map[string]int{}}
}

func (r *commandRecorder) scheduled(activityType, key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.keys[activityType] == nil {
		r.keys[activityType] = map[string]int{}
	}
	r.keys[activityType][key]++
}

// changes are the change IDs asked so far.
func (r *commandRecorder) changes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ids)
}

func (r *commandRecorder) InterceptWorkflow(_ workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	return &recorderInbound{WorkflowInboundInterceptorBase: interceptor.WorkflowInboundInterceptorBase{Next: next}, r: r}
}

type recorderInbound struct {
	interceptor.WorkflowInboundInterceptorBase
	r *commandRecorder
}

func (i *recorderInbound) Init(out interceptor.WorkflowOutboundInterceptor) error {
	return i.Next.Init(&recorderOutbound{WorkflowOutboundInterceptorBase: interceptor.WorkflowOutboundInterceptorBase{Next: out}, r: i.r})
}

type recorderOutbound struct {
	interceptor.WorkflowOutboundInterceptorBase
	r *commandRecorder
}

func (o *recorderOutbound) ExecuteActivity(ctx workflow.Context, activityType string, args ...any) workflow.Future {
	o.r.scheduled(activityType, workflow.GetActivityOptions(ctx).Priority.FairnessKey)
	return o.Next.ExecuteActivity(ctx, activityType, args...)
}

func (o *recorderOutbound) ExecuteLocalActivity(ctx workflow.Context, activityType string, args ...any) workflow.Future {
	o.r.scheduled(activityType, "")
	return o.Next.ExecuteLocalActivity(ctx, activityType, args...)
}

func (o *recorderOutbound) GetVersion(ctx workflow.Context, changeID string, minSupported, maxSupported workflow.Version) workflow.Version {
	o.r.mu.Lock()
	o.r.ids = append(o.r.ids, changeID)
	o.r.mu.Unlock()
	return o.Next.GetVersion(ctx, changeID, minSupported, maxSupported)
}
