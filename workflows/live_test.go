package workflows_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/mock"
	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"codeswarm/activities"
	"codeswarm/control"
	"codeswarm/workflows"
)

// currentDetails reads a workflow's Web UI current details the way the UI
// does, through the metadata query.
func currentDetails(t *testing.T, env *testsuite.TestWorkflowEnvironment) string {
	t.Helper()
	v, err := env.QueryWorkflow("__temporal_workflow_metadata")
	if err != nil {
		t.Fatalf("metadata query: %v", err)
	}
	var md sdkpb.WorkflowMetadata
	if err := v.Get(&md); err != nil {
		t.Fatalf("decode metadata: %v", err)
	}
	// The no-break spaces that pad table cells for the Web UI.
	return strings.ReplaceAll(md.GetCurrentDetails(), "\u00a0", "")
}

// saRecorder keeps every search attribute upsert of a run.
type saRecorder struct {
	mu      sync.Mutex
	upserts []temporal.SearchAttributes
}

func (r *saRecorder) last() temporal.SearchAttributes {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.upserts[len(r.upserts)-1]
}

func recordUpserts(env *testsuite.TestWorkflowEnvironment) *saRecorder {
	r := &saRecorder{}
	env.OnUpsertTypedSearchAttributes(mock.Anything).Return(nil).Run(func(args mock.Arguments) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.upserts = append(r.upserts, args.Get(0).(temporal.SearchAttributes))
	})
	return r
}

func TestSwarmLiveTableAndSearchAttributes(t *testing.T) {
	w := twoStagePlan()
	w.subtasks = append(w.subtasks, subtask("04-d", 1, "03-c")) // never runs: 03-c fails
	w.scripts["03-c"] = func(activities.AgentStepInput) activities.AgentStepResult {
		return finalTurn("gave up\nSTATUS: blocked")
	}
	env := newEnv(t, w)
	sa := recordUpserts(env)
	in := swarmInput()
	in.Visibility = workflows.Visibility{SearchAttributes: true}
	res := runSwarm(t, env, in)
	if res.Success {
		t.Fatal("run succeeded; want a failure (03-c reports blocked)")
	}

	details := currentDetails(t, env)
	for _, want := range []string{
		"**failed** (done)", "4/4 subtasks done · 840 tokens",
		"| subtask | status | step | tokens | cost | merge |",
		"| 01-a | completed | 2/20 | 220 | $0.0000 | merged |",
		"| 02-b | completed | 4/20 | 440 | $0.0000 | merged |",
		"| 03-c | blocked | 1/20 | 110 |", "| 04-d | blocked | 0/0 | 0 |",
	} {
		if !strings.Contains(details, want) {
			t.Errorf("current details lack %q:\n%s", want, details)
		}
	}

	first := sa.upserts[0]
	if got, _ := first.GetKeyword(control.SARepoKey); got != in.RepoPath {
		t.Errorf("first upsert: repo %q, want %q", got, in.RepoPath)
	}
	if got, _ := first.GetString(control.SATaskKey); got != in.Task {
		t.Errorf("first upsert: task %q, want %q", got, in.Task)
	}
	if got, _ := first.GetKeyword(control.SAStatusKey); got != control.RunStateRunning {
		t.Errorf("first upsert: status %q, want running", got)
	}
	last := sa.last()
	status, _ := last.GetKeyword(control.SAStatusKey)
	done, _ := last.GetInt64(control.SASubtasksDoneKey)
	total, _ := last.GetInt64(control.SASubtasksTotalKey)
	tokens, _ := last.GetInt64(control.SATokensKey)
	wantTokens := int64(planUsage.PromptTokens + planUsage.CompletionTokens + 7*(stepUsage.PromptTokens+stepUsage.CompletionTokens))
	if status != control.RunStateFailed || done != 4 || total != 4 || tokens != wantTokens {
		t.Errorf("last upsert: status %q done %d/%d tokens %d; want failed 4/4 %d", status, done, total, tokens, wantTokens)
	}
	if _, ok := last.GetKeyword(control.SARepoKey); ok {
		t.Error("the repository was upserted again after the first upsert")
	}
	// An upsert is a history event: one per change, not per refresh.
	if n := len(sa.upserts); n > 2+len(w.subtasks)+2 {
		t.Errorf("%d search attribute upserts for %d subtasks; want at most one per change", n, len(w.subtasks))
	}

	p := progress(t, env, 0)
	if len(p.Rows) != 4 || p.Rows[0].ID != "01-a" || p.Rows[0].Step != 2 || p.Rows[0].Merge != activities.MergeMerged ||
		p.Rows[0].StartedAt.IsZero() || p.Rows[0].EndedAt.Before(p.Rows[0].StartedAt) || !strings.HasPrefix(p.Rows[0].LastEvent, "merged: ") {
		t.Errorf("progress rows = %+v", p.Rows)
	}
}

func TestSwarmPrivateSearchAttributesAndNone(t *testing.T) {
	env := newEnv(t, twoStagePlan())
	sa := recordUpserts(env)
	in := swarmInput()
	in.Visibility = workflows.Visibility{SearchAttributes: true, Private: true}
	runSwarm(t, env, in)
	for i, u := range sa.upserts {
		if _, ok := u.GetKeyword(control.SARepoKey); ok {
			t.Errorf("upsert %d holds the repository of a private run", i)
		}
		if _, ok := u.GetString(control.SATaskKey); ok {
			t.Errorf("upsert %d holds the task of a private run", i)
		}
	}
	if st, _ := sa.last().GetKeyword(control.SAStatusKey); st != control.RunStateSucceeded {
		t.Errorf("final status %q, want succeeded", st)
	}

	env = newEnv(t, twoStagePlan())
	sa = recordUpserts(env)
	runSwarm(t, env, swarmInput()) // a namespace without the attributes
	if len(sa.upserts) != 0 {
		t.Errorf("%d upserts on a run without search attributes", len(sa.upserts))
	}
}

func TestSubAgentViewAndDetails(t *testing.T) {
	w := newWorld()
	w.scripts[agentID] = func(in activities.AgentStepInput) activities.AgentStepResult {
		if in.Turn <= control.RecentToolCalls+3 {
			r := toolTurn("bash", fmt.Sprintf("bash:%d", in.Turn))
			r.ToolCalls[0].Brief = fmt.Sprintf("bash: go test ./pkg%d", in.Turn)
			return r
		}
		return finalTurn("done\nSTATUS: completed")
	}
	env := newEnv(t, w)
	in := agentInput()
	in.MaxSteps = 50
	res := runAgent(t, env, in)
	if !res.Success {
		t.Fatalf("sub-agent failed: %+v", res)
	}
	v, err := env.QueryWorkflow(control.AgentQueryName)
	if err != nil {
		t.Fatal(err)
	}
	var view control.AgentView
	if err := v.Get(&view); err != nil {
		t.Fatal(err)
	}
	calls := control.RecentToolCalls + 3
	if view.Subtask != agentID || view.Step != calls+1 || view.MaxSteps != 50 || view.LastStatus != activities.StatusCompleted || view.Tokens != int64(calls+1)*110 {
		t.Errorf("agent view = %+v", view)
	}
	if len(view.Recent) != control.RecentToolCalls {
		t.Fatalf("recent tool calls: %d, want the ring's %d", len(view.Recent), control.RecentToolCalls)
	}
	lastCall := view.Recent[len(view.Recent)-1]
	if view.Recent[0].Seq != 4 || lastCall.Seq != calls || lastCall.Brief != fmt.Sprintf("bash: go test ./pkg%d", calls) || lastCall.Step != calls {
		t.Errorf("ring first %+v last %+v; want seq 4..%d, newest last", view.Recent[0], lastCall, calls)
	}
	details := currentDetails(t, env)
	for _, want := range []string{"**done: completed**", fmt.Sprintf("step %d/50", calls+1), "last STATUS: completed"} {
		if !strings.Contains(details, want) {
			t.Errorf("current details lack %q:\n%s", want, details)
		}
	}
}
