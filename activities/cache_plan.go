package activities

import (
	"context"

	"go.temporal.io/sdk/activity"
)

// planKey is the cache key of the planner request in asks for ("" when the
// cache is off): its messages, model, provider and the base commit's tree
// when the run gave it. It does not depend on the attempt: a repaired plan
// is stored under the first request's key, as the answer to it.
func (a *Activities) planKey(ctx context.Context, in PlanInput, system, user string) string {
	if a.Cache == nil {
		return ""
	}
	baseTree := ""
	if in.RepoPath != "" && in.BaseCommit != "" {
		t, err := treeOf(ctx, in.RepoPath, in.BaseCommit)
		if err != nil {
			return "" // a base that cannot be read: no key that could match a wrong plan
		}
		baseTree = t
	}
	return planCacheKey(system, user, in.Model, baseTree, a.LLM.Identity())
}

// cachedPlan answers a first planner request from the cache: a stored
// answer that still parses into a valid plan, with no model call and no
// usage.
func (a *Activities) cachedPlan(ctx context.Context, in PlanInput, key string) (PlanResult, bool) {
	if key == "" || in.NoCache || in.Attempt != 0 {
		return PlanResult{}, false
	}
	content, ok := a.Cache.lookupPlan(key)
	if !ok {
		return PlanResult{}, false
	}
	subtasks, err := ParsePlan(a.scrub(content), in.MaxSubtasks)
	if err != nil {
		return PlanResult{}, false
	}
	if activity.IsActivity(ctx) {
		activity.GetLogger(ctx).Info("result cache hit: plan", "key", key[:16], "subtasks", len(subtasks))
	}
	return PlanResult{Subtasks: subtasks, Cached: true}, true
}

// storePlan keeps a planner answer that gave a valid plan.
func (a *Activities) storePlan(ctx context.Context, key, content string, out PlanResult) {
	if key == "" || out.Problem != "" || out.Cut || len(out.Subtasks) == 0 {
		return
	}
	if err := a.Cache.storePlan(key, content); err != nil && activity.IsActivity(ctx) {
		activity.GetLogger(ctx).Warn("result cache: plan not stored", "error", a.scrub(err.Error()))
	}
}
