package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"

	"codeswarm/llm/scripted"
	"codeswarm/workflows"
)

// providerRPS is the scripted provider's account limit in the fan-out test.
const providerRPS = 2

// TestLLMRateAdaptsToProvider: 20 sub-agents at once, with default LLM
// settings (no per-second throttle), against a provider that takes 2
// requests per second and answers 429 with Retry-After beyond. The workers
// cut the LLM queue's rate limit on the server when 429s come and raise it
// again while none do: the run finishes with every subtask merged, the
// provider is asked at about its rate, and 429s stay a bounded fraction of
// the calls.
func TestLLMRateAdaptsToProvider(t *testing.T) {
	const n = 20
	var names []string
	var agents []scripted.Agent
	for i := range n {
		name := fmt.Sprintf("fan-%02d", i)
		names = append(names, name)
		agents = append(agents, faultAgent(name, writeTurns(name)))
	}
	script := scripted.Script{Planner: []scripted.Reply{{Content: faultPlan(names...)}}, Agents: agents}
	srv, model, c := startStack(t, "", script, scripted.WithRateLimit(providerRPS, providerRPS))
	h := &harness{t: t, server: srv, model: model, client: c, queue: testQueue(t), root: t.TempDir(), logs: &bytes.Buffer{}}
	setCLIEnv(t, srv.FrontendAddress(), h.queue, model.URL(), h.root)
	t.Setenv("CODESWARM_SWARM_MAX_CONCURRENT", fmt.Sprint(n))
	t.Setenv("CODESWARM_SWARM_MAX_SUBAGENTS", fmt.Sprint(n))

	ctx, stop := context.WithCancel(context.Background())
	seen := watchAdaptiveLimit(ctx, t, h)
	start := time.Now()
	// On the shared queue: its LLM queue's limit is the one every worker
	// of a cluster shares (a CLI's own run has an LLM queue of its own).
	code, res := h.runJSON("run", "--repo", faultRepo(t), "--task", "fan out", "--id", "e2e-rate", "--serve-others")
	elapsed := time.Since(start)
	stop()
	requireSuccess(t, h, code, res, n)

	reqs := model.Requests()
	ok, limited := 0, 0
	for _, r := range reqs {
		switch r.Status {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
			limited++
		}
	}
	lowest := <-seen
	t.Logf("%d subtasks in %s: %d answered, %d answered 429 (provider limit %d req/s); LLM queue limit lowest %s, now %s",
		n, elapsed.Round(time.Millisecond), ok, limited, providerRPS, lowest, queueLimit(t, h))
	if limited == 0 {
		t.Fatal("the provider never answered 429: the test did not exercise the controller")
	}
	// Without control every sub-agent would hammer the provider on each
	// retry; with it there is less than one 429 per sub-agent.
	if limited > n {
		t.Errorf("%d 429s for %d answers of %d sub-agents: the rate did not converge under the provider's", limited, ok, n)
	}
	if !strings.Contains(lowest, "codeswarm adaptive") {
		t.Errorf("no worker set an adaptive rate limit on the LLM queue (seen: %q)", lowest)
	}
}

// watchAdaptiveLimit polls the LLM queue's rate limit until ctx ends and
// then sends the lowest one it saw ("none" if none).
func watchAdaptiveLimit(ctx context.Context, t *testing.T, h *harness) <-chan string {
	out := make(chan string, 1)
	go func() {
		lowest, low := "none", float32(0)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				out <- lowest
				return
			case <-tick.C:
			}
			rl := describeLimit(ctx, h)
			if r := rl.GetRateLimit(); r != nil && (lowest == "none" || r.GetRequestsPerSecond() < low) {
				low = r.GetRequestsPerSecond()
				lowest = fmt.Sprintf("%.2f req/s (%s)", low, rl.GetMetadata().GetReason())
			}
		}
	}()
	return out
}

func describeLimit(ctx context.Context, h *harness) *taskqueuepb.RateLimitConfig {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := h.client.WorkflowService().DescribeTaskQueue(ctx, &workflowservice.DescribeTaskQueueRequest{
		Namespace: "default", TaskQueue: &taskqueuepb.TaskQueue{Name: workflows.LLMQueue(h.queue), Kind: enumspb.TASK_QUEUE_KIND_NORMAL},
		TaskQueueType: enumspb.TASK_QUEUE_TYPE_ACTIVITY, ReportConfig: true,
	})
	if err != nil {
		return nil
	}
	return resp.GetConfig().GetQueueRateLimit()
}

// queueLimit describes the LLM queue's API-set rate limit, for the log.
func queueLimit(t *testing.T, h *harness) string {
	t.Helper()
	rl := describeLimit(context.Background(), h)
	if rl.GetRateLimit() == nil {
		return "none"
	}
	return fmt.Sprintf("%.2f req/s (%s)", rl.GetRateLimit().GetRequestsPerSecond(), rl.GetMetadata().GetReason())
}
