package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"codeswarm/activities"
	"codeswarm/internal/cli"
	"codeswarm/llm/scripted"
)

// The long-reading agent's repository: growthFiles files of growthLines
// lines. Every line carries growthBodyMarker and every written file
// growthWriteMarker, so a history holding file contents is easy to spot.
const (
	growthMatch       = "[growth:long-reader]"
	growthSubtaskID   = "01-long-reader"
	growthFiles       = 20
	growthLines       = 50
	growthBodyMarker  = "GROWTH-FILE-BODY"
	growthWriteMarker = "GROWTH-WRITTEN-BODY"
)

func growthRepo() map[string]string {
	files := map[string]string{"README.md": "# growth fixture\n"}
	for f := range growthFiles {
		var b strings.Builder
		for l := 1; l <= growthLines; l++ {
			fmt.Fprintf(&b, "%s f%02d l%02d: some text that a model would read\n", growthBodyMarker, f, l)
		}
		files[fmt.Sprintf("data/f%02d.txt", f)] = b.String()
	}
	return files
}

// growthScript makes the agent take toolSteps tool-calling steps, then
// finish: step i reads file i mod growthFiles at an offset that moves every
// round, so no call repeats back to back (the stuck-loop breaker stays
// quiet); every 10th step writes a file instead.
func growthScript(toolSteps int) scripted.Script {
	turns := make([]scripted.Reply, 0, toolSteps+1)
	for i := 1; i <= toolSteps; i++ {
		call := tc("read", map[string]any{
			"path":   fmt.Sprintf("data/f%02d.txt", i%growthFiles),
			"offset": 1 + (i/growthFiles)%growthLines,
			"limit":  2,
		})
		if i%10 == 0 {
			call = tc("write", map[string]any{
				"path":    fmt.Sprintf("out/w%04d.txt", i),
				"content": fmt.Sprintf("%s of step %d: notes the agent took\n", growthWriteMarker, i),
			})
		}
		turns = append(turns, scripted.Reply{ToolCalls: []scripted.ToolCall{call}})
	}
	turns = append(turns, scripted.Reply{Content: fmt.Sprintf("Read and wrote for %d steps.\nSTATUS: completed", toolSteps)})
	plan := planJSON(planEntry{Name: "long-reader", Instruction: growthMatch + " Read the data files one by one and take notes."})
	return scripted.Script{
		Planner: []scripted.Reply{{Content: plan}},
		Agents:  []scripted.Agent{{Match: growthMatch, Turns: turns}},
	}
}

// growth is what one run of the long-reading agent measured.
type growth struct {
	toolSteps    int
	steps        int // model turns, as the result counts them (toolSteps + the final one)
	childRuns    int // runs in the sub-agent's continue-as-new chain
	childBytes   int // sum over the chain
	largestRun   int // bytes of the chain's largest run
	parentBytes  int
	parentEvents int
	// afterSteps[s] is the chain's history size when step s+1 was
	// scheduled, i.e. what s steps cost.
	afterSteps map[int]int
}

func (g growth) perStep() float64 { return float64(g.childBytes) / float64(g.steps) }

// measureGrowth runs the long-reading agent for toolSteps steps on a fresh
// server and measures the histories.
func measureGrowth(t *testing.T, toolSteps int, timeout time.Duration) (*harness, growth) {
	t.Helper()
	h := newHarness(t, growthScript(toolSteps))
	t.Setenv("CODESWARM_LLM_REQUESTS_PER_SECOND", "1000")
	t.Setenv("CODESWARM_SWARM_MAX_TOTAL_STEPS", strconv.Itoa(toolSteps+20))
	t.Setenv("CODESWARM_LOG_LEVEL", "warn") // a 1,000-step debug log is mostly noise
	// The whole conversation with every call: the scripted model counts
	// the assistant turns it is sent to know the step, and
	// llm.context_tokens' cuts (past ~500 steps here) would send it back to
	// earlier steps, past the step budget.
	t.Setenv("CODESWARM_LLM_CONTEXT_TOKENS", "0")
	repo := t.TempDir()
	writeRepo(t, repo, growthRepo())
	id := fmt.Sprintf("growth-%d", toolSteps)
	res := runFor(t, h, timeout, "run", "--repo", repo, "--task", "Read every data file and take notes.",
		"--id", id, "--max-steps", strconv.Itoa(toolSteps+10), "--json")
	sub := byID(res)[growthSubtaskID]
	if !res.Success || sub.Steps != toolSteps+1 {
		t.Fatalf("run of %d steps: success %v, steps %d\n%s\nlogs:\n%s", toolSteps, res.Success, sub.Steps, fmtResult(res), tail(h.logs.String(), 4000))
	}
	parent := history(t, h.client, id, "")
	g := growth{toolSteps: toolSteps, steps: sub.Steps, parentBytes: proto.Size(parent), parentEvents: len(parent.Events)}
	runs := childChain(t, h, id, id+"."+growthSubtaskID)
	g.childRuns = len(runs)
	for _, r := range runs {
		g.largestRun = max(g.largestRun, proto.Size(r))
	}
	g.afterSteps, g.childBytes = attributeSteps(runs)
	return h, g
}

// runFor is harness.run with a longer deadline and the result decoded.
func runFor(t *testing.T, h *harness, timeout time.Duration, args ...string) activities.SwarmResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out bytes.Buffer
	code := cli.Execute(ctx, args, cli.IO{Out: &out, Err: h.logs})
	var res activities.SwarmResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("result is not JSON (exit %d): %v\n%s\nlogs:\n%s", code, err, out.String(), tail(h.logs.String(), 4000))
	}
	return res
}

// childChain returns the histories of every run of a sub-agent's
// continue-as-new chain, oldest first: the first run is the one the parent
// started, each next one is named by its predecessor's ContinuedAsNew event.
// It also checks that listing by workflow ID finds exactly these runs.
func childChain(t *testing.T, h *harness, parentID, childID string) []*historypb.History {
	t.Helper()
	run := firstChildRun(t, history(t, h.client, parentID, ""), childID)
	var chain []*historypb.History
	var runIDs []string
	for run != "" {
		hist := history(t, h.client, childID, run)
		chain, runIDs = append(chain, hist), append(runIDs, run)
		run = hist.Events[len(hist.Events)-1].GetWorkflowExecutionContinuedAsNewEventAttributes().GetNewExecutionRunId()
	}
	slices.Sort(runIDs)
	waitFor(t, 20*time.Second, func() bool { return slices.Equal(listRuns(t, h, childID), runIDs) })
	return chain
}

func firstChildRun(t *testing.T, parent *historypb.History, childID string) string {
	t.Helper()
	for _, ev := range parent.Events {
		if a := ev.GetChildWorkflowExecutionStartedEventAttributes(); a.GetWorkflowExecution().GetWorkflowId() == childID {
			return a.GetWorkflowExecution().GetRunId()
		}
	}
	t.Fatalf("the parent never started %s", childID)
	return ""
}

// listRuns lists the run IDs of a workflow ID through visibility, sorted.
func listRuns(t *testing.T, h *harness, id string) []string {
	t.Helper()
	resp, err := h.client.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
		Query: fmt.Sprintf("WorkflowId = '%s'", id), PageSize: 1000,
	})
	if err != nil {
		t.Fatalf("list runs of %s: %v", id, err)
	}
	var runs []string
	for _, e := range resp.GetExecutions() {
		runs = append(runs, e.GetExecution().GetRunId())
	}
	slices.Sort(runs)
	return runs
}

// attributeSteps walks the chain event by event. Each event's bytes are
// what it adds to the serialized history (field tag, length, body), so the
// total equals the sum of proto.Size over the runs. The AgentStep activity
// of turn k is scheduled once k-1 steps are done, and a model call run as
// a local activity is recorded (its marker) after the k-1 steps before it:
// that is where the cost of k-1 steps is read off.
func attributeSteps(chain []*historypb.History) (map[int]int, int) {
	after := map[int]int{}
	total, turn := 0, 0
	for _, hist := range chain {
		for _, ev := range hist.Events {
			if t, ok := agentStepTurn(ev); ok {
				turn = t
				after[turn-1] = total
			} else if localAgentStep(ev) {
				turn++ // markers come in turn order, one per call
				after[turn-1] = total
			}
			total += protowire.SizeTag(1) + protowire.SizeBytes(proto.Size(ev))
		}
	}
	return after, total
}

// localAgentStep reports whether ev is the marker of a model call run as a
// local activity.
func localAgentStep(ev *historypb.HistoryEvent) bool {
	return localActivityType(ev) == "AgentStep"
}

// localActivityType is the activity type of a local activity's marker, or
// "" for any other event.
func localActivityType(ev *historypb.HistoryEvent) string {
	m := ev.GetMarkerRecordedEventAttributes()
	if m.GetMarkerName() != "LocalActivity" {
		return ""
	}
	var data struct{ ActivityType string }
	p := m.GetDetails()["data"].GetPayloads()
	if len(p) == 0 || json.Unmarshal(p[0].GetData(), &data) != nil {
		return ""
	}
	return data.ActivityType
}

func agentStepTurn(ev *historypb.HistoryEvent) (int, bool) {
	a := ev.GetActivityTaskScheduledEventAttributes()
	if ev.GetEventType() != enums.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED || a.GetActivityType().GetName() != "AgentStep" {
		return 0, false
	}
	var in activities.AgentStepInput
	if p := a.GetInput().GetPayloads(); len(p) == 0 || json.Unmarshal(p[0].GetData(), &in) != nil {
		return 0, false
	}
	return in.Turn, true
}

// growthBetween is the mean bytes per step between two step counts.
func (g growth) growthBetween(t *testing.T, from, to int) float64 {
	t.Helper()
	a, okA := g.afterSteps[from]
	b, okB := g.afterSteps[to]
	if !okA || !okB {
		t.Fatalf("no step boundary at %d or %d (have %d boundaries)", from, to, len(g.afterSteps))
	}
	return float64(b-a) / float64(to-from)
}

// TestHistoryGrowth120Steps checks that a sub-agent's history grows by a
// small, constant amount per step: no transcript, file body or secret
// travels through Temporal.
func TestHistoryGrowth120Steps(t *testing.T) {
	h, g := measureGrowth(t, 120, 3*time.Minute)
	early, late := g.growthBetween(t, 10, 30), g.growthBetween(t, 100, 120)
	t.Logf("child: %d runs, %d bytes, %.0f B/step; growth %.0f B/step over steps 10-30, %.0f over 100-120; parent %d bytes",
		g.childRuns, g.childBytes, g.perStep(), early, late, g.parentBytes)
	if g.perStep() >= 10_000 {
		t.Errorf("child history %.0f bytes per step, want < 10 kB", g.perStep())
	}
	if late < early*0.7 || late > early*1.3 {
		t.Errorf("history growth is not flat: %.0f B/step over steps 100-120 vs %.0f over 10-30 (allowed ±30%%)", late, early)
	}
	if total := sumRunBytes(t, h, "growth-120."+growthSubtaskID); total != g.childBytes {
		t.Errorf("attributed %d bytes, but the runs' histories hold %d", g.childBytes, total)
	}
	for id, hist := range exportHistories(t, h.client) {
		for _, secret := range []string{testAPIKey, growthBodyMarker, growthWriteMarker} {
			if strings.Contains(hist, secret) {
				t.Errorf("history of %s contains %q", id, secret)
			}
		}
	}
}

// sumRunBytes adds historyBytes over every listed run of a workflow ID.
func sumRunBytes(t *testing.T, h *harness, id string) int {
	t.Helper()
	total := 0
	for _, run := range listRuns(t, h, id) {
		total += historyBytes(t, h.client, id, run)
	}
	return total
}

// TestHistoryGrowthBench measures history size at 10, 100 and 1,000 steps
// for BENCHMARKS.md. It takes minutes, so it runs only with
// CODESWARM_BENCH_HISTORY=1.
func TestHistoryGrowthBench(t *testing.T) {
	if os.Getenv("CODESWARM_BENCH_HISTORY") != "1" {
		t.Skip("set CODESWARM_BENCH_HISTORY=1 to measure history growth at 10, 100 and 1,000 steps")
	}
	rows := []string{
		"| tool steps | model steps | child runs (continue-as-new chain) | child history bytes (all runs) | child bytes/step | largest child run, bytes | parent history bytes | parent events | parent bytes/step | wall time |",
		"|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
	}
	for _, n := range []int{10, 100, 1000} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			start := time.Now()
			_, g := measureGrowth(t, n, 30*time.Minute)
			rows = append(rows, fmt.Sprintf("| %d | %d | %d | %d | %.0f | %d | %d | %d | %.0f | %s |",
				g.toolSteps, g.steps, g.childRuns, g.childBytes, g.perStep(), g.largestRun, g.parentBytes, g.parentEvents,
				float64(g.parentBytes)/float64(g.steps), time.Since(start).Round(time.Second)))
		})
	}
	t.Log("\n" + strings.Join(rows, "\n"))
}
