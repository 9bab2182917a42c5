package workflows_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"codeswarm/activities"
	"codeswarm/workflows"
)

// hostRun is what a sub-agent on its host ran: each ExecTool by tool name,
// as a local activity or not, and how many LLM permits it took.
type hostRun struct {
	mu      sync.Mutex
	local   map[string]int // tool name → ExecTool runs as a local activity
	remote  map[string]int // tool name → ExecTool runs as an activity
	permits int
}

// runOnHost runs one sub-agent on its workspace queue (as a run starts
// it) whose model makes one call of each tool in names,
// one per turn, then finishes; noRateLimit is what StartSubtask reports.
func runOnHost(t *testing.T, noRateLimit bool, names ...string) (*hostRun, workflows.SubAgentResult) {
	t.Helper()
	w := newWorld()
	w.noRateLimit = noRateLimit
	w.fallback = func(in activities.AgentStepInput) activities.AgentStepResult {
		if in.Turn > len(names) {
			return finalTurn("STATUS: completed")
		}
		return toolTurn(names[in.Turn-1], names[in.Turn-1])
	}
	// The tool name rides on the result, so the listeners below can tell
	// which call an ExecTool was.
	w.execFn = func(in activities.ExecToolInput) activities.ExecToolResult {
		return activities.ExecToolResult{Name: names[in.Turn-1]}
	}
	env := newEnv(t, w)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: testRunID + ".01-a", TaskQueue: wsQueue})
	run := &hostRun{local: map[string]int{}, remote: map[string]int{}}
	note := func(m map[string]int, args []any) {
		in, ok := args[0].(activities.ExecToolInput)
		if !ok {
			t.Errorf("ExecTool argument %T", args[0])
			return
		}
		run.mu.Lock()
		defer run.mu.Unlock()
		m[names[in.Turn-1]]++
	}
	env.SetOnLocalActivityStartedListener(func(info *activity.Info, _ context.Context, args []any) {
		if info.ActivityType.Name == "ExecTool" {
			note(run.local, args)
		}
	})
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, args converter.EncodedValues) {
		switch info.ActivityType.Name {
		case "ExecTool":
			var in activities.ExecToolInput
			if err := args.Get(&in); err != nil {
				t.Errorf("decode ExecTool input: %v", err)
				return
			}
			note(run.remote, []any{in})
		case "LLMPermit":
			run.mu.Lock()
			run.permits++
			run.mu.Unlock()
		}
	})
	in := agentInput()
	in.LLMQueue = workflows.LLMQueue("codeswarm")
	return run, runAgent(t, env, in)
}

// On its host a sub-agent runs file changes as local activities, like
// reads: no activity dispatch and no workflow task of their own. bash and
// swarm_share stay activities.
func TestSubAgentOnHostRunsFileChangesLocally(t *testing.T) {
	run, res := runOnHost(t, false, "read", "edit", "write", "multiedit", "bash", "glob")
	if !res.Success || res.ToolCalls != 6 {
		t.Fatalf("result = %+v", res)
	}
	for _, name := range []string{"read", "edit", "write", "multiedit", "glob"} {
		if run.local[name] != 1 || run.remote[name] != 0 {
			t.Errorf("%s: %d local, %d activity runs; want it once as a local activity", name, run.local[name], run.remote[name])
		}
	}
	if run.remote["bash"] != 1 || run.local["bash"] != 0 {
		t.Errorf("bash: %d local, %d activity runs; want it once as an activity", run.local["bash"], run.remote["bash"])
	}
}

// The first turn takes no permit when StartSubtask saw no LLM rate limit
// in force; later turns follow AgentStep's answer (here: paced, a permit
// each). When StartSubtask saw a limit, the first turn takes one too.
func TestSubAgentFirstTurnPermit(t *testing.T) {
	for _, c := range []struct {
		noRateLimit bool
		want        int
	}{{noRateLimit: true, want: 2}, {noRateLimit: false, want: 3}} {
		run, res := runOnHost(t, c.noRateLimit, "read", "edit")
		if !res.Success || res.LLMCalls != 3 {
			t.Fatalf("noRateLimit %v: result = %+v", c.noRateLimit, res)
		}
		if run.permits != c.want {
			t.Errorf("StartSubtask noRateLimit %v: %d permits for 3 model calls, want %d", c.noRateLimit, run.permits, c.want)
		}
	}
}

// reportsOf runs a sub-agent of steps model turns, each taking stepDelay on
// the workflow clock, under the run's steering (no budget), and returns
// the steps at which it sent the run a usage report.
func reportsOf(t *testing.T, steps int, stepDelay time.Duration) []int {
	t.Helper()
	w := newWorld()
	w.fallback = toolsThenDone(steps - 1)
	w.stepDelay = stepDelay
	env := newEnv(t, w)
	// Its own ID must not be the parent's, or the report signals itself.
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: testRunID + ".01-a", TaskQueue: "codeswarm"})
	var mu sync.Mutex
	var at []int
	env.OnSignalExternalWorkflow(mock.Anything, testRunID, "", "budget_report", mock.Anything).Return(
		func(_, _, _, _ string, arg any) error {
			r, ok := arg.(workflows.BudgetReport)
			if !ok {
				t.Errorf("report argument %T", arg)
				return nil
			}
			mu.Lock()
			defer mu.Unlock()
			at = append(at, r.Step)
			return nil
		})
	in := agentInput()
	in.MaxSteps = steps + 5
	in.Limits.SubagentTimeout = time.Hour
	in.Control = &workflows.AgentControl{}
	if res := runAgent(t, env, in); !res.Success || res.Steps != steps {
		t.Fatalf("result = %+v", res)
	}
	return at
}

// The periodic usage report goes every 10 steps, but no more often than
// every 30 s: a fast model's sub-agent sends none, a slow one's every 10
// steps.
func TestSubAgentUsageReportIsPaced(t *testing.T) {
	if got := reportsOf(t, 25, 0); len(got) != 0 {
		t.Errorf("25 instant steps: reports at steps %v, want none", got)
	}
	if got := reportsOf(t, 25, 6*time.Second); !slices.Equal(got, []int{10, 20}) {
		t.Errorf("25 steps of 6 s: reports at steps %v, want [10 20]", got)
	}
	// 10 steps of 1.8 s are 18 s: the report waits until step 17 (30.6 s).
	if got := reportsOf(t, 25, 1800*time.Millisecond); !slices.Equal(got, []int{17}) {
		t.Errorf("25 steps of 1.8 s: reports at steps %v, want [17]", got)
	}
}
