package workflows

import (
	"cmp"
	"errors"
	"fmt"
	"strings"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"codeswarm/activities"
)

func (ag *agent) errorExit(ctx workflow.Context, err error) string {
	var app *temporal.ApplicationError
	switch {
	case temporal.IsCanceledError(err) || ctx.Err() != nil:
		return ExitCancelled
	case errors.As(err, &app) && app.Type() == activities.RunClosedType:
		// Its run was terminated: stop as a cancelled sub-agent does.
		ag.orphaned = true
		return ExitCancelled
	}
	return ExitError
}

// finish commits whatever the worktree holds (work is never lost, even on
// failure or cancellation) and applies the change policy.
func (ag *agent) finish(ctx workflow.Context, exit, final string, loopErr error) SubAgentResult {
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	var commit activities.CommitSubtaskResult
	ag.view.lastStatus = cmp.Or(activities.ParseStatus(final), exit)
	ag.doing(ctx, callGit, "commit "+ag.in.Subtask.ID)
	cerr := ag.gitActivity(dctx, "commit "+ag.in.Subtask.ID, a.CommitSubtask, activities.CommitSubtaskInput{
		RunID:      ag.in.RunID,
		SubtaskID:  ag.in.Subtask.ID,
		Name:       ag.in.Subtask.Name,
		Worktree:   ag.st.Worktree,
		BaseCommit: ag.st.BaseCommit,
		Attempt:    ag.in.Attempt,
		Cache:      ag.cacheStore(exit, final),
	}).Get(dctx, &commit)
	res := ag.result(exit, final, loopErr)
	res.ExecutionTimeMs = workflow.Now(ctx).Sub(ag.st.StartedAt).Milliseconds()
	res.Commit, res.Changed, res.FilesChanged, res.FilesOmitted = commit.Commit, commit.Changed, commit.FilesChanged, commit.FilesOmitted
	if cerr != nil {
		res.Success, res.Error = false, joinErr(res.Error, "commit: "+cerr.Error())
		return res
	}
	ag.applyPolicy(&res)
	ag.doing(ctx, "", "done: "+res.Status)
	return res
}

// finishCached ends a sub-agent whose work came from the result cache:
// StartSubtask put it in the worktree as a commit on the base, and the
// usual commit activity reports it; no model turn is taken.
func (ag *agent) finishCached(ctx workflow.Context, hit *activities.CachedAgent) SubAgentResult {
	ag.cached = true
	ag.doing(ctx, "", "result cache hit: reusing "+activities.ShortSHA(hit.From))
	res := ag.finish(ctx, ExitCompleted, hit.Result, nil)
	res.Cached, res.CachedFrom = true, hit.From
	return res
}

// cacheStore asks CommitSubtask to store this sub-agent's result: only one
// that completed, ran its own model turns, and whose work depends on nothing
// but its cache key.
func (ag *agent) cacheStore(exit, final string) *activities.CacheStore {
	st := ag.st
	if ag.cached || st == nil || st.CacheKey == "" || st.NoStore || exit != ExitCompleted ||
		activities.ParseStatus(final) != activities.StatusCompleted || ag.why != "" {
		return nil
	}
	return &activities.CacheStore{
		Key:           st.CacheKey,
		RepoPath:      ag.in.RepoPath,
		Ref:           ag.ref(),
		FinalTurn:     st.Turn - 1,
		NeedsWorktree: ag.in.Subtask.NeedsWorktree,
		Steps:         st.Steps,
		ToolCalls:     st.ToolCalls,
		LLMCalls:      st.LLMCalls,
		Usage:         st.Usage,
	}
}

func (ag *agent) applyPolicy(res *SubAgentResult) {
	if !res.Success {
		return
	}
	switch {
	case ag.in.Subtask.NeedsWorktree && !res.Changed:
		res.Success, res.Error = false, "the subtask was meant to change code but changed no files"
	case !ag.in.Subtask.NeedsWorktree && res.Changed:
		res.Success, res.Error = false, fmt.Sprintf("read-only subtask changed %d files; its work is kept on branch %s", len(res.FilesChanged)+res.FilesOmitted, res.Branch)
	}
}

func (ag *agent) result(exit, final string, loopErr error) SubAgentResult {
	st := ag.st
	if st == nil {
		st = &SubAgentState{}
	}
	res := SubAgentResult{
		SubtaskID:      ag.in.Subtask.ID,
		Attempt:        ag.in.Attempt,
		ExitReason:     exit,
		Result:         final,
		AgentProgress:  st.AgentProgress,
		ContinuedAsNew: st.Runs,
	}
	res.Status, res.Success, res.Error = outcome(exit, final, ag.in, st)
	if ag.why != "" {
		res.Error = ag.why
	}
	if loopErr != nil {
		res.Error = joinErr(res.Error, errText(loopErr))
	}
	return res
}

func outcome(exit, final string, in SubAgentInput, st *SubAgentState) (status string, success bool, errText string) {
	switch exit {
	case ExitCompleted:
		switch s := activities.ParseStatus(final); s {
		case activities.StatusCompleted:
			return s, true, ""
		case "":
			return activities.StatusFailed, false, "the final message has no STATUS line"
		default:
			return s, false, "the sub-agent reported STATUS: " + s
		}
	case ExitMaxSteps:
		return activities.StatusFailed, false, fmt.Sprintf("sub-agent hit max steps (%d)", in.MaxSteps)
	case ExitTimeout:
		return activities.StatusTimedOut, false, fmt.Sprintf("sub-agent timed out after %s without progress", in.Limits.SubagentTimeout)
	case ExitStuck:
		return activities.StatusFailed, false, stuckText(st)
	case ExitCancelled:
		return activities.StatusCancelled, false, "cancelled"
	}
	return activities.StatusFailed, false, ""
}

func stuckText(st *SubAgentState) string {
	if st.Refused == 0 {
		return fmt.Sprintf("stuck: the same tool call was repeated %d times in a row", stuckRepeats)
	}
	return fmt.Sprintf("stuck: the same tool call with the same result was made %d times in a row, "+
		"and again after %d requests to change approach", st.Repeats, st.Refused-1)
}

func joinErr(a, b string) string {
	if a == "" {
		return b
	}
	if b == "" || strings.Contains(a, b) {
		return a
	}
	return a + "; " + b
}

// errText is the readable cause of an activity failure: the application
// error's message, without the SDK's "activity error (type: …)" wrapping.
func errText(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.Message() != "" {
		return appErr.Message()
	}
	return err.Error()
}
