package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/converter"

	"codeswarm/activities"
	"codeswarm/control"
	"codeswarm/internal/cli"
	"codeswarm/llm/scripted"
	"codeswarm/workflows"
)

// The parent continue-as-new scenario: handoverWriters publish a value with
// swarm_share and write a file; each reader depends on one writer, reads
// its value back and writes a file. Every answer costs handoverPrompt and
// handoverCompletion tokens (the planner's handoverPlanPrompt), and takes handoverDelay, so
// sub-agents are running whenever the parent hands over.
const (
	handoverWriters      = 6
	handoverThreshold    = 80 // --parent-continue-as-new-after
	handoverMargin       = 60 // one schedule round and the hand-over may pass the threshold by this much
	handoverPrompt       = 100
	handoverCompletion   = 10
	handoverPlanPrompt   = 50
	handoverDelay        = 400 * time.Millisecond
	handoverWriterTurns  = 2
	handoverReaderTurns  = 3
	handoverSharedPrefix = "shared-by-w"
)

func handoverWriterMarker(i int) string { return fmt.Sprintf("[can:w%d]", i) }
func handoverReaderMarker(i int) string { return fmt.Sprintf("[can:r%d]", i) }
func handoverKey(i int) string          { return fmt.Sprintf("k-w%d", i) }

func handoverReply(r scripted.Reply) scripted.Reply {
	r.PromptTokens, r.CompletionTokens, r.Delay = handoverPrompt, handoverCompletion, scripted.Duration(handoverDelay)
	return r
}

func handoverScript() scripted.Script {
	var plan []planEntry
	var agents []scripted.Agent
	for i := range handoverWriters {
		plan = append(plan, planEntry{Name: fmt.Sprintf("w%d", i), Instruction: handoverWriterMarker(i) + " publish a finding and write a file"})
		agents = append(agents, scripted.Agent{Match: handoverWriterMarker(i), Turns: []scripted.Reply{
			handoverReply(scripted.Reply{ToolCalls: []scripted.ToolCall{
				tc("swarm_share", map[string]any{"action": "publish", "key": handoverKey(i), "value": fmt.Sprintf("%s%d", handoverSharedPrefix, i)}),
				tc("write", map[string]any{"path": fmt.Sprintf("w%d.txt", i), "content": "writer\n"}),
			}}),
			handoverReply(scripted.Reply{Content: "Published.\nSTATUS: completed"}),
		}})
	}
	for i := range handoverWriters {
		plan = append(plan, planEntry{Name: fmt.Sprintf("r%d", i), Instruction: handoverReaderMarker(i) + " read the writer's finding and write a file",
			Dependencies: []string{fmt.Sprintf("w%d", i)}})
		agents = append(agents, scripted.Agent{Match: handoverReaderMarker(i), Turns: []scripted.Reply{
			handoverReply(scripted.Reply{ToolCalls: []scripted.ToolCall{tc("swarm_share", map[string]any{"action": "get", "key": handoverKey(i)})}}),
			handoverReply(scripted.Reply{ToolCalls: []scripted.ToolCall{tc("write", map[string]any{"path": fmt.Sprintf("r%d.txt", i), "content": "reader\n"})}}),
			handoverReply(scripted.Reply{Content: "Read it.\nSTATUS: completed"}),
		}})
	}
	return scripted.Script{
		Planner: []scripted.Reply{{Content: planJSON(plan...), PromptTokens: handoverPlanPrompt, CompletionTokens: handoverCompletion}},
		Agents:  agents,
	}
}

// parentChain returns the histories of every run of the parent's
// continue-as-new chain, oldest first (each run names the one it continued).
func parentChain(t *testing.T, h *harness, id string) []*historypb.History {
	t.Helper()
	var chain []*historypb.History
	for run := ""; ; {
		hist := history(t, h.client, id, run)
		chain = append([]*historypb.History{hist}, chain...)
		run = hist.Events[0].GetWorkflowExecutionStartedEventAttributes().GetContinuedExecutionRunId()
		if run == "" {
			return chain
		}
	}
}

// runOf is the index of the run in chain whose history has an event that
// matches.
func runOf(chain []*historypb.History, match func(*historypb.HistoryEvent) bool) int {
	for i, hist := range chain {
		for _, ev := range hist.Events {
			if match(ev) {
				return i
			}
		}
	}
	return -1
}

// TestParentContinuesAsNew runs 12 subtasks, 4 at a time, with the parent
// continuing as new every handoverThreshold events while sub-agents run: every
// subtask merges, the result counts each answer once, each run's history
// stays bounded, and values shared before a hand-over are read after it.
func TestParentContinuesAsNew(t *testing.T) {
	const id = "e2e-parent-can"
	h := newHarness(t, handoverScript())
	t.Setenv("CODESWARM_SWARM_MAX_CONCURRENT", "4")
	t.Setenv("CODESWARM_LLM_REQUESTS_PER_SECOND", "100")
	repo := faultRepo(t)
	res := runFor(t, h, 5*time.Minute, "run", "--repo", repo, "--task", "parent continue-as-new scenario", "--id", id,
		"--parent-continue-as-new-after", strconv.Itoa(handoverThreshold), "--parent-handover-drain", "-1s", "--json")

	if !res.Success || len(res.SubtaskResults) != 2*handoverWriters {
		t.Fatalf("success=%v with %d results, want %d:\n%s\nlogs:\n%s", res.Success, len(res.SubtaskResults), 2*handoverWriters, fmtResult(res), tail(h.logs.String(), 4000))
	}
	turns := handoverWriters*handoverWriterTurns + handoverWriters*handoverReaderTurns
	for _, r := range res.SubtaskResults {
		want := handoverWriterTurns
		if strings.HasPrefix(r.Name, "r") {
			want = handoverReaderTurns
		}
		if r.Merge != activities.MergeMerged || r.Steps != want || r.PromptTokens != want*handoverPrompt || r.LLMCalls != want {
			t.Errorf("%s: merge %q, %d steps, %d prompt tokens, %d calls; want merged, %d, %d, %d", r.ID, r.Merge, r.Steps, r.PromptTokens, r.LLMCalls, want, want*handoverPrompt, want)
		}
	}
	if s := res.Stats; s.SubagentsSpawned != 2*handoverWriters || s.TotalLLMCalls != 1+turns ||
		s.PromptTokens != handoverPlanPrompt+turns*handoverPrompt || s.CompletionTokens != (1+turns)*handoverCompletion {
		t.Errorf("stats spawned=%d calls=%d prompt=%d completion=%d; want %d %d %d %d", s.SubagentsSpawned, s.TotalLLMCalls, s.PromptTokens, s.CompletionTokens,
			2*handoverWriters, 1+turns, handoverPlanPrompt+turns*handoverPrompt, (1+turns)*handoverCompletion)
	}
	checkModelRequests(t, h.model, 1+turns)

	chain := parentChain(t, h, id)
	if len(chain) < 3 {
		t.Errorf("the parent ran %d runs, want it to continue as new at least twice", len(chain))
	}
	withRunning := 0
	for i, hist := range chain {
		t.Logf("parent run %d: %d events", i+1, len(hist.Events))
		if len(hist.Events) > handoverThreshold+handoverMargin {
			t.Errorf("parent run %d has %d events, over the threshold %d + %d", i+1, len(hist.Events), handoverThreshold, handoverMargin)
		}
		last := hist.Events[len(hist.Events)-1].GetEventType()
		if i < len(chain)-1 && last != enums.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW {
			t.Errorf("parent run %d ended with %s, want continued as new", i+1, last)
		}
		if i > 0 && handedOverRunning(t, hist) {
			withRunning++
		}
	}
	if withRunning < 2 {
		t.Errorf("%d runs were handed running sub-agents, want at least 2", withRunning)
	}
	checkSharedAcrossRuns(t, h, chain, res)
	checkStartedAcrossRuns(t, h, id, chain)
}

// checkStartedAcrossRuns: the run's current (last) execution still knows
// when the first began, and list and status show that time, not the last
// execution's start.
func checkStartedAcrossRuns(t *testing.T, h *harness, id string, chain []*historypb.History) {
	t.Helper()
	d, err := h.client.DescribeWorkflowExecution(context.Background(), id, "")
	if err != nil {
		t.Fatal(err)
	}
	info := d.GetWorkflowExecutionInfo()
	var memo string
	if p := info.GetMemo().GetFields()["started"]; p == nil || converter.GetDefaultDataConverter().FromPayload(p, &memo) != nil {
		t.Fatalf("the last execution's memo has no start time: %v", info.GetMemo())
	}
	started, err := time.Parse(time.RFC3339, memo)
	first := chain[0].Events[0].GetEventTime().AsTime()
	if err != nil || started.Sub(first).Abs() > 2*time.Second {
		t.Errorf("memo started %q (%v), want the first execution's start %v", memo, err, first)
	}
	if last := info.GetStartTime().AsTime(); last.Sub(first) <= 0 {
		t.Errorf("the last execution started %v, the first %v: the chain did not move the start time", last, first)
	}
	shown := started.Local().Format(time.DateTime)
	for _, args := range [][]string{{"list"}, {"status", id}} {
		if code, out := h.run(args...); code != 0 || !strings.Contains(out, shown) {
			t.Errorf("codeswarm %v (exit %d) does not show the run's start %s:\n%s", args, code, shown, out)
		}
	}
}

// handedOverRunning: the run was handed a sub-agent still running.
func handedOverRunning(t *testing.T, hist *historypb.History) bool {
	t.Helper()
	var in workflows.SwarmInput
	start := hist.Events[0].GetWorkflowExecutionStartedEventAttributes()
	if err := json.Unmarshal(start.GetInput().GetPayloads()[0].GetData(), &in); err != nil || in.Carry == nil {
		t.Fatalf("a continued run's input has no carry: %v", err)
	}
	for _, ct := range in.Carry.Tasks {
		if ct.State == 1 { // running
			return true
		}
	}
	return false
}

// checkSharedAcrossRuns: every reader got its writer's value, and at least
// one reader started in a later run than the one its writer published in.
func checkSharedAcrossRuns(t *testing.T, h *harness, chain []*historypb.History, res activities.SwarmResult) {
	t.Helper()
	ids := map[string]string{}
	for _, r := range res.SubtaskResults {
		ids[r.Name] = r.ID
	}
	across := 0
	for i := range handoverWriters {
		reqs := turnRequests(h.model, scripted.KindAgent, handoverReaderMarker(i), 1)
		if len(reqs) != 1 || !bytes.Contains(reqs[0].Body, []byte(handoverSharedPrefix+strconv.Itoa(i))) {
			t.Errorf("reader %d did not read %s%d back (requests: %d)", i, handoverSharedPrefix, i, len(reqs))
		}
		published := runOf(chain, func(ev *historypb.HistoryEvent) bool {
			acc := ev.GetWorkflowExecutionUpdateAcceptedEventAttributes()
			return acc != nil && bytes.Contains(acc.GetAcceptedRequest().GetInput().GetArgs().GetPayloads()[0].GetData(), []byte(handoverKey(i)))
		})
		reader := ids[fmt.Sprintf("r%d", i)]
		started := runOf(chain, func(ev *historypb.HistoryEvent) bool {
			a := ev.GetStartChildWorkflowExecutionInitiatedEventAttributes()
			return a != nil && strings.HasSuffix(a.GetWorkflowId(), "."+reader)
		})
		if published < 0 || started < 0 {
			t.Errorf("writer %d published in run %d, reader %s started in run %d", i, published, reader, started)
		}
		if started > published {
			across++
		}
	}
	if across == 0 {
		t.Error("no reader started in a later run than its writer's publish: nothing was read across a continue-as-new")
	}
}

// handoverCancelScript: "quick" ends at once, the "long" ones wait a minute for
// their first answer.
func handoverCancelScript() scripted.Script {
	plan := []planEntry{{Name: "quick", Instruction: "[cancan:quick] write a file"}}
	agents := []scripted.Agent{{Match: "[cancan:quick]", Turns: writeTurns("quick")}}
	for i := range 4 {
		m := fmt.Sprintf("[cancan:long%d]", i)
		plan = append(plan, planEntry{Name: fmt.Sprintf("long%d", i), Instruction: m + " think for a long time"})
		agents = append(agents, scripted.Agent{Match: m, Turns: []scripted.Reply{{Content: "Done.\nSTATUS: completed", Delay: scripted.Duration(time.Minute)}}})
	}
	return scripted.Script{Planner: []scripted.Reply{{Content: planJSON(plan...)}}, Agents: agents}
}

// TestParentContinueAsNewCancel: after the parent continued as new with
// sub-agents running, one inherited sub-agent terminated by hand is booked
// failed (the run does not wait for it), then the run is cancelled: the
// other inherited sub-agents and the one the new run started all end
// cancelled, and none keeps running.
func TestParentContinueAsNewCancel(t *testing.T) {
	const id = "e2e-parent-can-cancel"
	h := newHarness(t, handoverCancelScript())
	t.Setenv("CODESWARM_SWARM_MAX_CONCURRENT", "4")
	t.Setenv("CODESWARM_LLM_REQUESTS_PER_SECOND", "100")
	startLongLivedWorker(t)
	repo := faultRepo(t)
	// The first run hands over once quick has ended and the long ones
	// outlasted a one-second drain.
	if code, out := h.run("run", "--repo", repo, "--task", "cancel after continue-as-new", "--id", id, "--detach", "--no-worker",
		"--parent-continue-as-new-after", "20", "--parent-handover-drain", "1s"); code != 0 {
		t.Fatalf("run --detach: exit %d: %s\n%s", code, out, tail(h.logs.String(), 3000))
	}
	waitFor(t, 90*time.Second, func() bool {
		return len(parentChain(t, h, id)) >= 2 && h.model.Count("agent") >= 6 // quick's two turns and every long one asked
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// long0 was started by the first run: terminated by hand, it is
	// reported to the current run as failed, and the run goes on.
	long0 := rowByName(t, runState(h.client, id), "long0")
	if err := h.client.TerminateWorkflow(ctx, id+"."+long0, "", "terminated by hand"); err != nil {
		t.Fatalf("terminate long0: %v", err)
	}
	waitFor(t, 30*time.Second, func() bool { return rowStatus(runState(h.client, id), long0) == activities.StatusFailed })
	var out, errOut bytes.Buffer
	if code := cli.Execute(ctx, []string{"cancel", id}, cli.IO{Out: &out, Err: &errOut}); code != 0 {
		t.Fatalf("cancel: exit %d: %s", code, errOut.String())
	}
	res, err := activities.RunResult(ctx, h.client, id)
	if err != nil {
		t.Fatalf("the cancelled run: %v", err)
	}
	chain := parentChain(t, h, id)
	if len(chain) < 2 {
		t.Fatalf("the parent ran %d runs, want a continue-as-new before the cancel", len(chain))
	}
	inherited := 0
	for _, r := range res.SubtaskResults {
		if r.Name == "quick" {
			if r.Merge != activities.MergeMerged {
				t.Errorf("quick: %s, merge %q; want merged before the cancel", r.Status, r.Merge)
			}
			continue
		}
		switch {
		case r.Name == "long0":
			if r.Status != activities.StatusFailed || !strings.Contains(r.Error, "terminated") {
				t.Errorf("long0: %s (%s), want failed: terminated", r.Status, r.Error)
			}
		case r.Status != activities.StatusCancelled:
			t.Errorf("%s: %s (%s), want cancelled", r.ID, r.Status, r.Error)
		}
		child := id + "." + r.ID
		if runOf(chain[len(chain)-1:], func(ev *historypb.HistoryEvent) bool {
			return ev.GetStartChildWorkflowExecutionInitiatedEventAttributes().GetWorkflowId() == child
		}) < 0 {
			inherited++
		}
		d, err := h.client.DescribeWorkflowExecution(ctx, child, "")
		if err != nil {
			t.Errorf("describe %s: %v", child, err)
			continue
		}
		if st := d.GetWorkflowExecutionInfo().GetStatus(); st == enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
			t.Errorf("sub-agent %s is still running after the run ended", child)
		}
	}
	if inherited == 0 {
		t.Error("no cancelled sub-agent was inherited from an earlier run")
	}
	for _, r := range h.model.Requests() {
		if r.Status != http.StatusOK && r.Status != 0 {
			t.Errorf("model request %s#%d answered %d", r.Agent, r.Turn, r.Status)
		}
	}
}

func rowByName(t *testing.T, p control.Progress, name string) string {
	t.Helper()
	for _, r := range p.Rows {
		if r.Name == name {
			return r.ID
		}
	}
	t.Fatalf("no subtask %s in the progress rows %+v", name, p.Rows)
	return ""
}

func rowStatus(p control.Progress, id string) string {
	for _, r := range p.Rows {
		if r.ID == id {
			return r.Status
		}
	}
	return ""
}
