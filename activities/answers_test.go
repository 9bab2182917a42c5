package activities

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"codeswarm/internal/transcript"
	"codeswarm/llm/scripted"
)

func stepIn(ref ConvRef, turn int) AgentStepInput {
	return AgentStepInput{Ref: ref, Turn: turn, Model: "agent-model", ContextLimit: 128000}
}

func roles(msgs []openai.ChatCompletionMessage) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Role
	}
	return out
}

// An answer cut off by the token limit is not final: it is kept, the model
// is asked to continue, and the step counts as a nudge.
func TestAgentStepContinuesAnswerCutByLength(t *testing.T) {
	h := newHarness(t, scripted.Script{Agents: []scripted.Agent{{Match: agentMarker, Turns: []scripted.Reply{
		{Content: "Summary of the change: renamed Foo to", FinishReason: "length"},
		{Content: " Bar in every file.\nSTATUS: completed"},
	}}}})
	ref := ConvRef{RunID: "run-length", SubtaskID: "01-alpha", Attempt: 1}
	agentHead(t, h, ref, agentMarker)

	cut := mustRun[AgentStepResult](t, h.env, h.a.AgentStep, stepIn(ref, 0))
	if !cut.Nudged || cut.NudgeReason != NudgeLength || cut.Final != "" || len(cut.ToolCalls) != 0 {
		t.Fatalf("cut answer = %+v, want a length nudge", cut)
	}
	again := mustRun[AgentStepResult](t, h.env, h.a.AgentStep, stepIn(ref, 0))
	if !again.Reused || !again.Nudged || again.NudgeReason != NudgeLength {
		t.Fatalf("retried cut answer = %+v", again)
	}
	final := mustRun[AgentStepResult](t, h.env, h.a.AgentStep, stepIn(ref, 1))
	if final.Nudged || ParseStatus(final.Final) != StatusCompleted {
		t.Fatalf("continued answer = %+v", final)
	}
	if n := h.srv.Count(scripted.KindAgent); n != 2 {
		t.Fatalf("%d agent requests, want 2 (the retry reuses the stored answer)", n)
	}
	next := sentRequest(t, h.srv, 1)
	if got := roles(next.Messages); !reflect.DeepEqual(got, []string{"system", "user", "assistant", "user"}) {
		t.Fatalf("continuation request roles = %v", got)
	}
	if next.Messages[2].Content != "Summary of the change: renamed Foo to" || !strings.Contains(next.Messages[3].Content, "cut off") {
		t.Fatalf("continuation request = %+v", next.Messages[2:])
	}
}

// A tool call cut off mid-arguments cannot run: it is dropped from the
// stored answer (so the next request stays valid) and the model is told to
// send it again.
func TestAgentStepDropsToolCallCutByLength(t *testing.T) {
	h := newHarness(t, scripted.Script{Agents: []scripted.Agent{{Match: agentMarker, Turns: []scripted.Reply{
		{Content: "Writing the file.", FinishReason: "length",
			ToolCalls: []scripted.ToolCall{{Name: "write", Arguments: `{"path":"big.go","content":"package big\n\nfunc`}}},
	}}}})
	ref := ConvRef{RunID: "run-length-tool", SubtaskID: "01-alpha", Attempt: 1}
	agentHead(t, h, ref, agentMarker)

	step := mustRun[AgentStepResult](t, h.env, h.a.AgentStep, stepIn(ref, 0))
	if !step.Nudged || step.NudgeReason != NudgeLength || len(step.ToolCalls) != 0 {
		t.Fatalf("cut tool call = %+v, want a length nudge without tool calls", step)
	}
	stored, _ := transcript.Find(load(t, h.a.Transcripts, ref), keyAssistant(0))
	if len(stored.Message.ToolCalls) != 0 || stored.FinishReason != "length" {
		t.Fatalf("stored answer = %+v", stored)
	}
	next := mustRun[AgentStepResult](t, h.env, h.a.AgentStep, stepIn(ref, 1))
	if ParseStatus(next.Final) != StatusCompleted {
		t.Fatalf("next turn = %+v (the server rejects an unanswered tool call)", next)
	}
	if st := h.srv.Requests()[1].Status; st != 200 {
		t.Fatalf("next request answered %d", st)
	}
}

// Tool calls written as text (as vLLM and Ollama models do) run as tool
// calls, and the conversation stored for the next request is valid.
func TestAgentStepRunsToolCallsWrittenAsText(t *testing.T) {
	h := newHarness(t, scripted.Script{Agents: []scripted.Agent{{Match: agentMarker, Turns: []scripted.Reply{
		{Content: "Reading both.\n<tool_call>\n{\"name\": \"read\", \"arguments\": {\"path\": \"a.txt\"}}\n</tool_call>\n" +
			"<tool_call>\n```json\n{\"name\": \"grep\", \"parameters\": {\"pattern\": \"Foo\"}}\n```\n</tool_call>"},
		{Content: `{"name": "list", "arguments": {}}`},
	}}}})
	ref := ConvRef{RunID: "run-textcalls", SubtaskID: "01-alpha", Attempt: 1}
	agentHead(t, h, ref, agentMarker)

	step := mustRun[AgentStepResult](t, h.env, h.a.AgentStep, stepIn(ref, 0))
	want := []ToolCallInfo{
		{ID: "call_t0000-assistant_0", Name: "read", Signature: callSignature("read", `{"path":"a.txt"}`), Brief: "read a.txt"},
		{ID: "call_t0000-assistant_1", Name: "grep", Signature: callSignature("grep", `{"pattern":"Foo"}`), Brief: "grep Foo"},
	}
	if step.Nudged || !reflect.DeepEqual(step.ToolCalls, want) {
		t.Fatalf("AgentStep = %+v, want %+v", step, want)
	}
	stored, _ := transcript.Find(load(t, h.a.Transcripts, ref), keyAssistant(0))
	if stored.Message.Content != "Reading both." || len(stored.Message.ToolCalls) != 2 {
		t.Fatalf("stored answer = %+v", stored.Message)
	}
	appendRecs(t, h.a.Transcripts, ref,
		toolRecord(keyTool(0, 0), stored.Message.ToolCalls[0], "1\thello"),
		toolRecord(keyTool(0, 1), stored.Message.ToolCalls[1], "a.txt:1:Foo"))
	bare := mustRun[AgentStepResult](t, h.env, h.a.AgentStep, stepIn(ref, 1))
	if len(bare.ToolCalls) != 1 || bare.ToolCalls[0].Name != "list" {
		t.Fatalf("bare JSON call = %+v", bare)
	}
	if st := h.srv.Requests()[1].Status; st != 200 {
		t.Fatalf("request after text calls answered %d: the stored conversation is invalid", st)
	}
	if got := sentRequest(t, h.srv, 1).Messages[3].ToolCallID; got != "call_t0000-assistant_0" {
		t.Fatalf("first tool result answers %q", got)
	}
}

// An answer that is neither a tool call nor a final STATUS line gets a
// reminder of the format, up to maxFormatNudges times; then it is final.
func TestAgentStepNudgesAnswerWithoutStatus(t *testing.T) {
	h := newHarness(t, scripted.Script{Default: &scripted.Reply{Content: "I looked around and it seems fine."}})
	ref := ConvRef{RunID: "run-format", SubtaskID: "01-alpha", Attempt: 1}
	agentHead(t, h, ref, "[no script]")
	for turn := range maxFormatNudges {
		step := mustRun[AgentStepResult](t, h.env, h.a.AgentStep, stepIn(ref, turn))
		if !step.Nudged || step.NudgeReason != NudgeFormat || step.Final != "" {
			t.Fatalf("turn %d = %+v, want a format nudge", turn, step)
		}
		if again := mustRun[AgentStepResult](t, h.env, h.a.AgentStep, stepIn(ref, turn)); !again.Nudged {
			t.Fatalf("retried turn %d = %+v, want the same nudge", turn, again)
		}
	}
	last := mustRun[AgentStepResult](t, h.env, h.a.AgentStep, stepIn(ref, maxFormatNudges))
	if last.Nudged || last.Final != "I looked around and it seems fine." {
		t.Fatalf("turn past the cap = %+v, want the text as final", last)
	}
	req := sentRequest(t, h.srv, 1)
	if note := req.Messages[len(req.Messages)-1]; note.Role != "user" || !strings.Contains(note.Content, "STATUS: completed") {
		t.Fatalf("reminder = %+v", note)
	}
}

// Several tool calls in one answer: each result reaches the model, in
// order, answering its own tool_call_id; parallel_tool_calls is not sent
// (servers that do not know it reject it, and OpenAI's default is on).
func TestParallelToolCallsReachModelInOrder(t *testing.T) {
	h := newHarness(t, scripted.Script{Agents: []scripted.Agent{{Match: agentMarker, Turns: []scripted.Reply{
		{ToolCalls: []scripted.ToolCall{
			{Name: "read", Arguments: `{"path":"b.txt"}`},
			{Name: "list", Arguments: `{}`},
			{Name: "read", Arguments: `{"path":"a.txt"}`},
		}},
	}}}})
	repo := newGitRepo(t, map[string]string{"a.txt": "alpha\n", "b.txt": "beta\n"})
	ref := ConvRef{RunID: "run-parallel", SubtaskID: "01-alpha", Attempt: 1}
	agentHead(t, h, ref, agentMarker)
	step := mustRun[AgentStepResult](t, h.env, h.a.AgentStep, stepIn(ref, 0))
	if len(step.ToolCalls) != 3 {
		t.Fatalf("AgentStep = %+v", step)
	}
	limits := ToolLimits{BashTimeout: 30 * time.Second, BashMaxTimeout: time.Minute, MaxOutputBytes: 100_000}
	for i := range step.ToolCalls {
		mustRun[ExecToolResult](t, h.env, h.a.ExecTool, ExecToolInput{Ref: ref, Turn: 0, Index: i, Worktree: repo.dir, Limits: limits})
	}
	mustRun[AgentStepResult](t, h.env, h.a.AgentStep, stepIn(ref, 1))

	next := sentRequest(t, h.srv, 1)
	if got := roles(next.Messages); !reflect.DeepEqual(got, []string{"system", "user", "assistant", "tool", "tool", "tool"}) {
		t.Fatalf("roles = %v", got)
	}
	for i, want := range []struct{ id, has string }{{"call_0_0", "beta"}, {"call_0_1", "a.txt"}, {"call_0_2", "alpha"}} {
		m := next.Messages[3+i]
		if m.ToolCallID != want.id || !strings.Contains(m.Content, want.has) {
			t.Errorf("tool message %d = {id %q, %q}, want id %q containing %q", i, m.ToolCallID, m.Content, want.id, want.has)
		}
	}
	for i, r := range h.srv.Requests() {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(r.Body, &fields); err != nil {
			t.Fatal(err)
		}
		if _, ok := fields["parallel_tool_calls"]; ok {
			t.Errorf("request %d sends parallel_tool_calls", i)
		}
	}
}

// An answer of more tool calls than MaxCallsPerReply keeps the first ones,
// in order, and says in its text how many were dropped.
func TestShapeAgentAnswerCapsToolCalls(t *testing.T) {
	var calls []openai.ToolCall
	for i := range 10000 {
		calls = append(calls, openai.ToolCall{ID: "c" + strings.Repeat("x", i%3) + string(rune('a'+i%26)),
			Type: openai.ToolTypeFunction, Function: openai.FunctionCall{Name: "swarm_share", Arguments: `{"key":"k","value":"v"}`}})
	}
	msg := shapeAgentAnswer(openai.ChatCompletionChoice{Message: openai.ChatCompletionMessage{Content: "Sharing.", ToolCalls: calls}}, "t1")
	if len(msg.ToolCalls) != MaxCallsPerReply {
		t.Fatalf("kept %d calls, want %d", len(msg.ToolCalls), MaxCallsPerReply)
	}
	if !reflect.DeepEqual(msg.ToolCalls, calls[:MaxCallsPerReply]) {
		t.Error("the kept calls are not the first ones")
	}
	want := "Sharing.\n\n[codeswarm: this answer had 10000 tool calls; only the first 64 were run, the other 9936 were dropped: send at most 64 tool calls per answer]"
	if msg.Content != want {
		t.Errorf("content %q, want %q", msg.Content, want)
	}
	few := shapeAgentAnswer(openai.ChatCompletionChoice{Message: openai.ChatCompletionMessage{Content: "Two.", ToolCalls: calls[:2]}}, "t2")
	if len(few.ToolCalls) != 2 || few.Content != "Two." {
		t.Errorf("an answer under the cap changed: %+v", few)
	}
}
