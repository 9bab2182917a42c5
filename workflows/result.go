package workflows

import (
	"cmp"
	"fmt"
	"strings"

	"go.temporal.io/sdk/workflow"

	"codeswarm/activities"
)

type runResult struct{ activities.SwarmResult }

func (r runResult) summaryLine() string {
	ok := 0
	for _, st := range r.SubtaskResults {
		if st.Success {
			ok++
		}
	}
	verdict := "failed"
	if r.Success {
		verdict = "succeeded"
	}
	return fmt.Sprintf("run %s: %d/%d subtasks succeeded; branch %s at %s", verdict, ok, len(r.SubtaskResults), r.Branch, activities.ShortSHA(r.HeadCommit))
}

func (s *swarm) result(ctx workflow.Context, fin activities.FinishRunResult) runResult {
	res := activities.SwarmResult{
		RunID:      s.runID,
		Success:    s.succeeded(),
		Branch:     s.branch,
		BaseCommit: s.Prep.BaseCommit,
		HeadCommit: s.merges.Head,
		Verify:     s.merges.Verify,
		Applied:    fin.Applied,
		ApplyError: fin.ApplyError,
		PlanNote:   s.PlanNote,
		Sandbox:    s.Prep.Sandbox,
	}
	res.SubtaskResults, res.KeptWorktrees = s.subtaskResults()
	res.KeptWorktrees = append(res.KeptWorktrees, fin.Kept...)
	if fin.DroppedBranch {
		res.Branch = "" // nothing was merged: no empty branch is left
	}
	res.Stats = s.stats(ctx)
	res.Result = aggregate(res.SubtaskResults)
	if !res.Success {
		res.Error = runError(res)
	}
	return runResult{res}
}

// subtaskResults are the result's entries, one per subtask in plan order,
// and the worktrees of failed attempts, which are kept. The result is one
// payload: the largest texts are cut when the run is so large that they
// would not fit (fitResults).
func (s *swarm) subtaskResults() (results []activities.SubtaskResult, kept []string) {
	results = make([]activities.SubtaskResult, 0, len(s.plan.Tasks))
	for _, t := range s.plan.Tasks {
		results = append(results, t.Res)
		if !t.Res.Success && t.Res.Worktree != "" {
			kept = append(kept, t.Res.Worktree)
		}
		if t.First != nil && t.Res.Merge != activities.MergeMerged && t.First.Worktree != "" {
			kept = append(kept, t.First.Worktree) // FinishRun does not remove it either
		}
	}
	fitResults(results, payloadTextBudget)
	return results, kept
}

// The run's result must stay well under Temporal's 2 MB payload limit
// whatever the plan's size, and so must the state a continue-as-new
// carries: each subtask keeps at most textCap bytes of its final answer
// (its share of resultTextBudget, between minTextCap and maxTextCap), its
// error at most maxErrorText, and the aggregate text is cut at
// aggregateBudget. Past a few thousand subtasks those caps alone do not
// bound the sum (10,000 × 256 bytes of answer, errors of 4 kB each), so
// the carry and the result also cut the largest to fit payloadTextBudget
// together (fitResults). The whole answers stay in the transcripts.
const (
	resultTextBudget = 1 << 20
	maxTextCap       = 16 << 10
	minTextCap       = 256
	maxErrorText     = 4 << 10
	aggregateBudget  = 256 << 10
)

// textCap is how much of a subtask's final answer the run keeps.
func (p *taskTable) textCap() int {
	return max(minTextCap, min(maxTextCap, resultTextBudget/max(1, len(p.Tasks))))
}

func aggregate(results []activities.SubtaskResult) string {
	var b strings.Builder
	for i, r := range results {
		if r.Success {
			fmt.Fprintf(&b, "=== Subtask %d (%s) ===\n%s\n\n", i+1, r.Name, r.Result)
		} else {
			fmt.Fprintf(&b, "=== Subtask %d (%s) (FAILED) ===\nError: %s\n\n", i+1, r.Name, cmp.Or(r.Error, "unknown error"))
		}
	}
	return capString(b.String(), aggregateBudget)
}

// maxNamedFailures is how many failed subtasks a run's error names: it is
// the workflow's failure message too, which the Web UI and `codeswarm
// list` show, and 10,000 of them would be 300 kB.
const maxNamedFailures = 20

func runError(r activities.SwarmResult) string {
	var failed []string
	for _, st := range r.SubtaskResults {
		if !st.Success {
			failed = append(failed, fmt.Sprintf("%s (%s)", st.ID, st.Status))
		}
	}
	var parts []string
	if len(r.SubtaskResults) == 0 {
		parts = append(parts, "no subtasks ran")
	}
	if len(failed) > 0 {
		named := strings.Join(failed[:min(len(failed), maxNamedFailures)], ", ")
		if more := len(failed) - maxNamedFailures; more > 0 {
			named += fmt.Sprintf(" and %d more (subtask_results has each)", more)
		}
		parts = append(parts, fmt.Sprintf("%d of %d subtasks did not succeed: %s", len(failed), len(r.SubtaskResults), named))
	}
	if r.Verify != nil && !r.Verify.OK {
		msg := fmt.Sprintf("verification %q failed with exit code %d", r.Verify.Command, r.Verify.ExitCode)
		if r.Verify.BrokenBy != "" {
			msg += " after merging " + r.Verify.BrokenBy
		}
		parts = append(parts, msg)
	}
	return strings.Join(parts, "; ")
}

// stats computes the seed's statistics from the subtask results, which count
// every attempt of a re-run subtask (steps, tool calls, time), so the
// sequential estimate is the sum of the sub-agents' own running times.
// The critical path is the longest dependency chain weighted by steps. The
// seed, which runs stages behind barriers, reports the sum of each stage's
// maximum instead: never less than this figure, and equal only when each
// stage's longest subtask depends on the previous stage's longest one.
func (s *swarm) stats(ctx workflow.Context) activities.Stats {
	st := activities.Stats{
		SubagentsSpawned:   s.plan.Spawned,
		TotalLLMCalls:      s.budget.LLMCalls,
		PromptTokens:       s.budget.Usage.PromptTokens,
		CompletionTokens:   s.budget.Usage.CompletionTokens,
		CostUSD:            s.budget.Cost,
		CachedPromptTokens: s.budget.Usage.CachedPromptTokens,
		UsageEstimated:     s.budget.Usage.Estimated,
		ExecutionTimeMs:    workflow.Now(ctx).Sub(s.Started).Milliseconds(),
		Stages:             []activities.StageStats{},
	}
	for _, t := range s.plan.Tasks {
		st.TotalToolCalls += t.Res.ToolCalls
		st.SequentialTimeEstimateMs += t.Res.ExecutionTimeMs
		if t.Res.Cached {
			st.SubagentsCached++
		}
		if t.Res.Success {
			st.SubagentsCompleted++
		} else if t.Attempt > 0 {
			st.SubagentsFailed++
		}
	}
	st.PlanCached = s.PlanCached
	st.CriticalPathLength = s.plan.criticalPath()
	st.Stages = s.plan.stageStats()
	if st.ExecutionTimeMs > 0 {
		st.SpeedupFactor = float64(st.SequentialTimeEstimateMs) / float64(st.ExecutionTimeMs)
	}
	return st
}

func (p *taskTable) criticalPath() int {
	memo := make([]int, len(p.Tasks))
	for i := range memo {
		memo[i] = -1
	}
	var longest func(i int) int
	longest = func(i int) int {
		if memo[i] >= 0 {
			return memo[i]
		}
		best := 0
		for _, d := range p.Tasks[i].Sub.Dependencies {
			for j, t := range p.Tasks {
				if t.Sub.ID == d {
					best = max(best, longest(j))
				}
			}
		}
		memo[i] = best + p.Tasks[i].Res.Steps
		return memo[i]
	}
	out := 0
	for i := range p.Tasks {
		out = max(out, longest(i))
	}
	return out
}

func (p *taskTable) stageStats() []activities.StageStats {
	var stages []activities.StageStats
	for _, t := range p.Tasks {
		for len(stages) <= t.Sub.Stage {
			stages = append(stages, activities.StageStats{Stage: len(stages)})
		}
		g := &stages[t.Sub.Stage]
		if t.Attempt == 0 {
			continue
		}
		g.SubagentCount++
		g.TotalSteps += t.Res.Steps
		g.MaxSteps = max(g.MaxSteps, t.Res.Steps)
		g.ExecutionTimeMs = max(g.ExecutionTimeMs, t.Res.ExecutionTimeMs)
	}
	if stages == nil {
		return []activities.StageStats{}
	}
	return stages
}
