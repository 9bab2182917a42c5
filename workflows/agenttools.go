package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"codeswarm/activities"
)

// runTools executes the turn's tool calls in order; turn is the turn they
// belong to (already advanced in state).
func (ag *agent) runTools(ctx workflow.Context, calls []activities.ToolCallInfo) (string, error) {
	turn := ag.st.Turn - 1
	for i, call := range calls {
		switch ag.judge(call.Signature) {
		case verdictStuck:
			return ExitStuck, nil
		case verdictRefuse:
			if err := ag.refuseTool(ctx, turn, i, callBrief(call)); err != nil {
				return ag.errorExit(ctx, err), err
			}
			continue
		}
		hash, err := ag.runTool(ctx, turn, i, call)
		if errors.Is(err, errBudgetStop) {
			return ExitBudget, nil
		}
		if err != nil {
			return ag.errorExit(ctx, err), err
		}
		ag.noteResult(hash)
		ag.st.ToolCalls++
	}
	return "", nil
}

type verdict int

const (
	verdictRun verdict = iota
	verdictRefuse
	verdictStuck
)

// judge decides whether a tool call runs. Only the stuckRepeats-th and
// later identical calls in a row are looked at.
func (ag *agent) judge(sig string) verdict {
	if !ag.repeated(sig) {
		return verdictRun
	}
	if ag.st.SameResults < stuckRepeats-1 {
		return verdictRun // same call, new results: a legitimate repeat (polling, re-running tests)
	}
	ag.st.Refused++
	if ag.st.Refused > refusalsBeforeStuck {
		return verdictStuck
	}
	return verdictRefuse
}

// repeated counts identical calls in a row and reports whether this one is
// at least the stuckRepeats-th.
func (ag *agent) repeated(sig string) bool {
	if sig == ag.st.LastSig {
		ag.st.Repeats++
	} else {
		ag.st.LastSig, ag.st.Repeats = sig, 1
		ag.st.SameResults, ag.st.Refused = 0, 0
	}
	return ag.st.Repeats >= stuckRepeats
}

// noteResult counts runs of the current call in a row with the same result.
func (ag *agent) noteResult(hash string) {
	if ag.st.SameResults > 0 && hash == ag.st.LastHash {
		ag.st.SameResults++
		return
	}
	ag.st.LastHash, ag.st.SameResults = hash, 1
}

// refuseTool stores the "you are repeating yourself" result of a call that
// is not run, so the conversation stays valid.
func (ag *agent) refuseTool(ctx workflow.Context, turn, index int, brief string) error {
	actx := summarized(workspaceOptions(ctx, ag.in.WorkspaceQueue, quickToolTimeout, ag.retries()), "refused repeat: "+brief)
	return workflow.ExecuteActivity(actx, a.ExecTool, activities.ExecToolInput{
		Ref:      ag.ref(),
		Turn:     turn,
		Index:    index,
		Worktree: ag.st.Worktree,
		Limits:   ag.in.Tools,
		Repeated: true,
	}).Get(ctx, nil)
}

// runTool runs one call and returns the hash of its result.
func (ag *agent) runTool(ctx workflow.Context, turn, index int, call activities.ToolCallInfo) (string, error) {
	brief := callBrief(call)
	ag.noteTool(ctx, brief)
	if call.Name == "swarm_share" {
		ag.st.NoStore = true // a hit would not publish again, and what it read is not in the key
		actx := summarized(workspaceOptions(ctx, workflow.GetInfo(ctx).TaskQueueName, time.Minute, ag.retries()), brief)
		var res activities.SwarmShareResult
		err := workflow.ExecuteActivity(actx, a.SwarmShare, activities.SwarmShareInput{
			Ref:              ag.ref(),
			Turn:             turn,
			Index:            index,
			ParentWorkflowID: ag.in.ParentWorkflowID,
			MaxValueBytes:    ag.in.Tools.ShareMaxValueBytes,
		}).Get(ctx, &res)
		return res.ResultHash, err
	}
	tin := activities.ExecToolInput{
		Ref:      ag.ref(),
		Turn:     turn,
		Index:    index,
		Worktree: ag.st.Worktree,
		Limits:   ag.in.Tools,
	}
	var res activities.ExecToolResult
	var err error
	if ag.runsLocally(ctx, call.Name) {
		// The options of a read fit a file change too: the same short
		// timeout and retries, and the journal makes a retry safe.
		err = workflow.ExecuteLocalActivity(readOnlyToolOptions(ctx, ag.retries(), brief), a.ExecTool, tin).Get(ctx, &res)
	} else {
		actx := workspaceOptions(ctx, ag.in.WorkspaceQueue, quickToolTimeout, ag.retries())
		if call.Name == "bash" {
			actx = workspaceOptions(ctx, ag.in.WorkspaceQueue, ag.in.Tools.BashMaxTimeout+time.Minute, ag.retries())
		}
		err = workflow.ExecuteActivity(summarized(actx, brief), a.ExecTool, tin).Get(ctx, &res)
	}
	if !res.NeedsSummary {
		ag.noteOutput(res.OutputChars)
	}
	if err != nil || !res.NeedsSummary {
		return res.ResultHash, err
	}
	if err := ag.summaryAllowance(ctx, res.OutputChars); err != nil {
		return res.ResultHash, err
	}
	var sum activities.SummarizeResult
	err = ag.callLLM(ctx, true, fmt.Sprintf("summarize %s output (%s)", call.Name, ag.in.Model), a.Summarize, activities.SummarizeInput{
		Ref:      ag.ref(),
		Turn:     turn,
		Index:    index,
		ToolName: call.Name,
		CallID:   call.ID,
		Model:    ag.in.Model,
	}, &sum)
	ag.noteOutput(sum.Chars)
	if sum.Summarized {
		ag.st.LLMCalls++
		ag.st.Usage = ag.st.Usage.Add(sum.Usage)
	}
	return res.ResultHash, err
}

// runsLocally reports whether a tool call runs as a local activity: only on
// the host (where the worktree, journal and transcript are), reads and file
// changes (write, edit, multiedit: an edit step costs one workflow task
// instead of two, and no activity dispatch). bash (long, heartbeats, killed
// on cancel) and swarm_share (the parent's store) stay activities.
func (ag *agent) runsLocally(ctx workflow.Context, tool string) bool {
	return ag.onHost(ctx) && (activities.IsReadOnlyTool(tool) || activities.IsFileChangeTool(tool))
}

// stuckRepeats is the identical tool call (same arguments) in a row that
// the loop breaker looks at: when the calls before it also returned the
// same result, it is refused instead of run, and the model is told it is
// repeating itself.
const stuckRepeats = 3

// refusalsBeforeStuck is how many refused repeats the model gets; the next
// identical call ends the sub-agent as stuck.
const refusalsBeforeStuck = 3
