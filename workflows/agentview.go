package workflows

import (
	"cmp"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"codeswarm/activities"
	"codeswarm/control"
)

// liveView is what a sub-agent does right now, for its agent query and its
// current details in the Web UI. It is rebuilt after a continue-as-new,
// except the tool sequence number, which its state carries.
type liveView struct {
	doing      string // the model turn or tool call in progress
	kind       string // what doing is: callModel, callTool or callGit
	since      time.Time
	lastStatus string
	recent     []control.ToolEvent
}

// registerAgentQuery answers AgentQueryName with the sub-agent's AgentView.
func (ag *agent) registerAgentQuery(ctx workflow.Context) error {
	return workflow.SetQueryHandler(ctx, control.AgentQueryName, func() (control.AgentView, error) {
		return ag.agentView(), nil
	})
}

func (ag *agent) agentView() control.AgentView {
	v := control.AgentView{
		Subtask:      ag.in.Subtask.ID,
		Attempt:      ag.in.Attempt,
		MaxSteps:     ag.in.MaxSteps,
		CurrentTool:  ag.view.doing,
		CurrentKind:  ag.view.kind,
		CurrentSince: ag.view.since,
		LastStatus:   ag.view.lastStatus,
		Recent:       ag.view.recent,
	}
	if ag.st != nil {
		v.Step, v.StartedAt = ag.st.Steps, ag.st.StartedAt
		v.Tokens = int64(ag.st.Usage.PromptTokens + ag.st.Usage.CompletionTokens)
	}
	return v
}

// Kinds of call a sub-agent can be in (AgentView.CurrentKind).
const (
	callModel = "model"
	callTool  = "tool"
	callGit   = "git"
)

// doing records what the sub-agent starts now, of which kind, and shows it.
func (ag *agent) doing(ctx workflow.Context, kind, what string) {
	ag.view.doing, ag.view.kind, ag.view.since = what, kind, workflow.Now(ctx)
	ag.showDetails(ctx)
}

// noteTool numbers a tool call and keeps it in the bounded ring of recent
// calls before it runs.
func (ag *agent) noteTool(ctx workflow.Context, brief string) {
	ag.st.ToolSeq++
	ev := control.ToolEvent{
		Seq:   ag.st.ToolSeq,
		Step:  ag.st.Steps,
		Time:  workflow.Now(ctx),
		Brief: brief,
	}
	ag.view.recent = append(ag.view.recent, ev)
	if n := len(ag.view.recent); n > control.RecentToolCalls {
		ag.view.recent = append([]control.ToolEvent(nil), ag.view.recent[n-control.RecentToolCalls:]...)
	}
	ag.doing(ctx, callTool, brief)
}

// showDetails sets the child's current details in the Web UI.
func (ag *agent) showDetails(ctx workflow.Context) {
	v := ag.agentView()
	var b strings.Builder
	fmt.Fprintf(&b, "**%s** · step %d/%d · %d tokens\n\n", cmp.Or(v.CurrentTool, "starting"), v.Step, v.MaxSteps, v.Tokens)
	if !v.CurrentSince.IsZero() && v.CurrentKind != "" {
		fmt.Fprintf(&b, "%s call since %s (its age: `codeswarm status`)\n\n", v.CurrentKind, v.CurrentSince.UTC().Format("15:04:05 UTC"))
	}
	fmt.Fprintf(&b, "last STATUS: %s\n", cmp.Or(v.LastStatus, "none yet"))
	workflow.SetCurrentDetails(ctx, b.String())
}

// callBrief is a tool call's one-line description; a call without a brief
// shows the tool's name.
func callBrief(call activities.ToolCallInfo) string {
	return cmp.Or(call.Brief, call.Name)
}

// turnSummary is a model turn's line in the Web UI.
func turnSummary(turn int, model string) string {
	return fmt.Sprintf("LLM turn %d (%s)", turn, model)
}
