package e2e

import (
	"context"
	"testing"
	"time"

	"codeswarm/activities"
	"codeswarm/control"
	"codeswarm/llm/scripted"

	"go.temporal.io/sdk/converter"
)

// omitUsage makes every scripted answer come without a "usage" object, as
// some third-party servers send them.
func omitUsage(s scripted.Script) scripted.Script {
	for i := range s.Planner {
		s.Planner[i].OmitUsage = true
	}
	for i := range s.Agents {
		for j := range s.Agents[i].Turns {
			s.Agents[i].Turns[j].OmitUsage = true
		}
	}
	if s.Summary == nil {
		s.Summary = &scripted.Reply{Content: "Summary."}
	}
	s.Summary.OmitUsage = true
	return s
}

// TestTokenCapBindsWithoutUsage: the server sends no usage, so the tokens
// are estimated from characters; a small swarm.max_tokens still pauses the
// run on its budget, and the finished result says the usage was estimated.
func TestTokenCapBindsWithoutUsage(t *testing.T) {
	const id = "e2e-cap-no-usage"
	h := newHarness(t, omitUsage(slowDemo(50*time.Millisecond)))
	fastSwarmEnv(t)
	repo := faultRepo(t)
	startLongLivedWorker(t)
	t.Setenv("CODESWARM_SWARM_MAX_TOKENS", "3000")
	t.Setenv("CODESWARM_LLM_MAX_TOKENS", "500")
	code, out, errb := steerCLI("run", "--repo", repo, "--task", scripted.DemoTask, "--id", id, "--no-worker", "--detach")
	if code != 0 {
		t.Fatalf("run: exit %d %s %s", code, out, errb)
	}
	var p control.Progress
	deadline := time.Now().Add(90 * time.Second)
	for p = runState(h.client, id); p.State != control.RunStateBudgetPaused; p = runState(h.client, id) {
		if time.Now().After(deadline) || p.Phase == "done" {
			t.Fatalf("the run did not stop at its token cap without usage: state %q (%q), budget %+v, phase %s", p.State, p.StateReason, p.Budget, p.Phase)
		}
		time.Sleep(100 * time.Millisecond)
	}
	mustContain(t, "state reason", p.StateReason, "token cap 3,000 reached")
	expectOK(t, "resumed", "resume", id, "--add-tokens", "1000000")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := activities.RunResult(ctx, h.client, id)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Stats.UsageEstimated || res.Stats.PromptTokens == 0 || res.Stats.CompletionTokens == 0 {
		t.Errorf("stats: usage_estimated %v, %d+%d tokens; want estimated, non-zero", res.Stats.UsageEstimated, res.Stats.PromptTokens, res.Stats.CompletionTokens)
	}
	for _, r := range res.SubtaskResults {
		if !r.UsageEstimated || r.PromptTokens == 0 {
			t.Errorf("%s: usage_estimated %v, %d prompt tokens", r.ID, r.UsageEstimated, r.PromptTokens)
		}
	}
}

// TestLongPlanContinued: the planner's answer is cut by the token limit
// (finish_reason "length") and finished in a second part; the run has every
// subtask of the joined plan.
func TestLongPlanContinued(t *testing.T) {
	names := []string{"one", "two", "three"}
	plan := faultPlan(names...)
	cut := len(plan) / 2
	agents := []scripted.Agent{}
	for _, n := range names {
		agents = append(agents, faultAgent(n, writeTurns(n)))
	}
	agents = append(agents, scripted.Agent{Match: "[fault:single]", Turns: writeTurns("single")})
	h := newHarness(t, scripted.Script{Planner: []scripted.Reply{
		{Content: plan[:cut], FinishReason: "length"},
		{Content: plan[cut:]},
	}, Agents: agents})
	fastSwarmEnv(t)
	code, res := h.runJSON("run", "--repo", faultRepo(t), "--task", "[fault:single] do it all")
	requireSuccess(t, h, code, res, len(names))
	if res.PlanNote != "" {
		t.Errorf("plan_note %q, want none", res.PlanNote)
	}
	if n := h.model.Count(scripted.KindPlanner); n != 2 {
		t.Errorf("planner requests: %d, want 2 (the cut answer and its continuation)", n)
	}
}

// TestPlanCutOffFallbackIsVisible: every planner answer is cut; the run
// falls back to one subtask and says why (cut off) in plan_note. (The
// plan_fallback event and WARN log are not asserted here: the run's worker
// is gone once runJSON returns.)
func TestPlanCutOffFallbackIsVisible(t *testing.T) {
	const id = "e2e-plan-cut"
	h := newHarness(t, scripted.Script{Planner: []scripted.Reply{
		{Content: `{"subtasks":[{"name":"a","instruction":"x`, FinishReason: "length"},
	}, Agents: []scripted.Agent{{Match: "[fault:single]", Turns: writeTurns("single")}}})
	fastSwarmEnv(t)
	code, res := h.runJSON("run", "--repo", faultRepo(t), "--task", "[fault:single] do it all", "--id", id)
	requireSuccess(t, h, code, res, 1)
	if _, ok := byID(res)["01-main"]; !ok {
		t.Errorf("no fallback subtask 01-main in %s", fmtResult(res))
	}
	mustContain(t, "plan_note", res.PlanNote, "ran the task as a single subtask")
	mustContain(t, "plan_note", res.PlanNote, "cut off")
	// Two attempts (plan, repair), each continued 4 times.
	if n := h.model.Count(scripted.KindPlanner); n != 10 {
		t.Errorf("planner requests: %d, want 10", n)
	}
}

// TestPlannerCostListed: the run's CodeswarmCostUSD search attribute (what
// list and watch show) counts the planner's cost, not only the sub-agents'.
func TestPlannerCostListed(t *testing.T) {
	const id = "e2e-planner-cost"
	t.Setenv("CODESWARM_LLM_PRICES", "scripted=1/2")
	script := scripted.Script{Planner: []scripted.Reply{
		// An expensive plan: 1M prompt tokens at $1/M is $1.
		{Content: faultPlan("one"), PromptTokens: 1_000_000, CompletionTokens: 10},
	}, Agents: []scripted.Agent{faultAgent("one", writeTurns("one"))}}
	h := newHarness(t, script)
	fastSwarmEnv(t)
	code, res := h.runJSON("run", "--repo", faultRepo(t), "--task", "do it", "--id", id)
	requireSuccess(t, h, code, res, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := h.client.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	fields := d.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields()
	var cost float64
	var tokens int64
	dc := converter.GetDefaultDataConverter()
	_ = dc.FromPayload(fields[control.SACostUSD], &cost)
	_ = dc.FromPayload(fields[control.SATokens], &tokens)
	sub := res.SubtaskResults[0].CostUSD
	if cost < 1 || cost < sub+1 {
		t.Errorf("CodeswarmCostUSD = $%g, want the planner's $1 plus the sub-agent's $%g (stats say $%g)", cost, sub, res.Stats.CostUSD)
	}
	if tokens < 1_000_000 {
		t.Errorf("CodeswarmTokens = %d, want the planner's 1,000,000 in it", tokens)
	}
}
