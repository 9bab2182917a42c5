package workflows_test

import (
	"sync"
	"testing"

	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// TestPermitsCarryTheRunAsFairnessKey: every LLMPermit of a run, the
// planner's and each sub-agent's, is scheduled with the run's ID as its
// fairness key, so a server with fairness on the LLM queue hands out
// permits to runs in turn; the model calls themselves carry none. (The test
// environment does not pass priorities on to activities: the scheduling
// options are read where the workflow schedules them.)
func TestPermitsCarryTheRunAsFairnessKey(t *testing.T) {
	w := newWorld(subtask("01-a", 0), subtask("02-b", 0))
	env := newEnv(t, w)
	rec := &fairnessRecorder{keys: map[string]map[string]int{}}
	env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{rec}})
	if res := runSwarm(t, env, swarmInput()); !res.Success {
		t.Fatalf("run failed: %s", res.Error)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if got := rec.keys["LLMPermit"]; len(got) != 1 || got[testRunID] < 3 {
		t.Errorf("LLMPermit fairness keys %v, want only %q on the planner's and both sub-agents' permits", got, testRunID)
	}
	if got := rec.keys["AgentStep"]; len(got) != 1 || got[""] == 0 {
		t.Errorf("AgentStep fairness keys %v, want none", got)
	}
}

// fairnessRecorder counts the fairness keys activities are scheduled with,
// by activity type.
type fairnessRecorder struct {
	interceptor.WorkerInterceptorBase
	mu   sync.Mutex
	keys map[string]map[string]int
}

func (r *fairnessRecorder) InterceptWorkflow(_ workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	return &fairnessInbound{WorkflowInboundInterceptorBase: interceptor.WorkflowInboundInterceptorBase{Next: next}, r: r}
}

type fairnessInbound struct {
	interceptor.WorkflowInboundInterceptorBase
	r *fairnessRecorder
}

func (i *fairnessInbound) Init(out interceptor.WorkflowOutboundInterceptor) error {
	return i.Next.Init(&fairnessOutbound{WorkflowOutboundInterceptorBase: interceptor.WorkflowOutboundInterceptorBase{Next: out}, r: i.r})
}

type fairnessOutbound struct {
	interceptor.WorkflowOutboundInterceptorBase
	r *fairnessRecorder
}

func (o *fairnessOutbound) ExecuteActivity(ctx workflow.Context, activityType string, args ...any) workflow.Future {
	key := workflow.GetActivityOptions(ctx).Priority.FairnessKey
	o.r.mu.Lock()
	if o.r.keys[activityType] == nil {
		o.r.keys[activityType] = map[string]int{}
	}
	o.r.keys[activityType][key]++
	o.r.mu.Unlock()
	return o.Next.ExecuteActivity(ctx, activityType, args...)
}

// ExecuteLocalActivity counts a local activity (a model call on the host)
// as scheduled without a fairness key: it never waits in a queue.
func (o *fairnessOutbound) ExecuteLocalActivity(ctx workflow.Context, activityType string, args ...any) workflow.Future {
	o.r.mu.Lock()
	if o.r.keys[activityType] == nil {
		o.r.keys[activityType] = map[string]int{}
	}
	o.r.keys[activityType][""]++
	o.r.mu.Unlock()
	return o.Next.ExecuteLocalActivity(ctx, activityType, args...)
}
