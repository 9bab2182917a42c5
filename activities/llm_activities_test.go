package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"codeswarm/internal/fairslot"
	"codeswarm/internal/transcript"
	"codeswarm/llm"
	"codeswarm/llm/scripted"
	"codeswarm/tools"
)

// sentRequest decodes the body of the i-th chat request the server got.
func sentRequest(t *testing.T, srv *scripted.Server, i int) openai.ChatCompletionRequest {
	t.Helper()
	reqs := srv.Requests()
	if i >= len(reqs) {
		t.Fatalf("server got %d requests, want at least %d", len(reqs), i+1)
	}
	var req openai.ChatCompletionRequest
	if err := json.Unmarshal(reqs[i].Body, &req); err != nil {
		t.Fatalf("decode request %d: %v", i, err)
	}
	return req
}

func TestPlanValidAndStoredBeforeReturn(t *testing.T) {
	h := newHarness(t, scripted.Script{Planner: []scripted.Reply{{Content: "```json\n" + twoStepPlan + "\n```", PromptTokens: 300, CompletionTokens: 40}}})
	in := PlanInput{RunID: "run-plan", Task: "Rename Foo to Bar everywhere", Strategy: "automatic", RepoListing: "api/foo.go\n", MaxSubtasks: 4, Model: "planner-model"}

	first := mustRun[PlanResult](t, h.env, h.a.Plan, in)
	if first.Problem != "" || len(first.Subtasks) != 2 {
		t.Fatalf("Plan = %+v, want two subtasks and no problem", first)
	}
	if first.Subtasks[1].Dependencies[0] != first.Subtasks[0].ID || first.Reused {
		t.Errorf("Plan subtasks = %+v (reused %v)", first.Subtasks, first.Reused)
	}
	if first.Usage != (Usage{PromptTokens: 300, CompletionTokens: 40}) {
		t.Errorf("usage = %+v, want 300/40", first.Usage)
	}
	req := sentRequest(t, h.srv, 0)
	if len(req.Tools) != 0 || req.Model != "planner-model" {
		t.Errorf("planner request has %d tools, model %q; want none, planner-model", len(req.Tools), req.Model)
	}
	if len(req.Messages) != 2 || !strings.Contains(req.Messages[1].Content, in.Task) || !strings.Contains(req.Messages[0].Content, "At most 4 subtasks") {
		t.Errorf("planner messages = %+v", req.Messages)
	}

	// A retried activity (same input) must reuse the stored answer.
	again := mustRun[PlanResult](t, h.env, h.a.Plan, in)
	if n := h.srv.Count(scripted.KindPlanner); n != 1 {
		t.Errorf("planner requests after a repeat = %d, want 1", n)
	}
	if !again.Reused || !reflect.DeepEqual(again.Subtasks, first.Subtasks) || again.Usage != first.Usage {
		t.Errorf("repeat = %+v, want the first answer reused", again)
	}
	// The answer's time is measured when the model was called (at least
	// 1 ms, so that 0 says "not measured"), not for a stored answer.
	if first.ModelMs < 1 || again.ModelMs != 0 {
		t.Errorf("model time %d ms, then %d ms reused; want ≥ 1, then 0", first.ModelMs, again.ModelMs)
	}
}

func TestPlanInvalidThenRepair(t *testing.T) {
	h := newHarness(t, scripted.Script{Planner: []scripted.Reply{
		{Content: `{"subtasks":[{"name":"a","instruction":"x","dependencies":["ghost"]}]}`},
		{Content: twoStepPlan},
	}})
	in := PlanInput{RunID: "run-repair", Task: "task", MaxSubtasks: 5}
	res, err := run[PlanResult](t, h.env, h.a.Plan, in)
	if err != nil {
		t.Fatalf("an invalid plan must not fail the activity: %v", err)
	}
	if len(res.Subtasks) != 0 || !strings.Contains(res.Problem, `unknown subtask "ghost"`) {
		t.Fatalf("Plan = %+v, want the problem and no subtasks", res)
	}

	in.Attempt, in.RepairProblem = 1, res.Problem
	fixed := mustRun[PlanResult](t, h.env, h.a.Plan, in)
	if fixed.Problem != "" || len(fixed.Subtasks) != 2 {
		t.Fatalf("repair = %+v, want the valid plan", fixed)
	}
	req := sentRequest(t, h.srv, 1)
	if n := len(req.Messages); n != 4 || req.Messages[2].Role != openai.ChatMessageRoleAssistant ||
		!strings.Contains(req.Messages[3].Content, "Your plan is invalid: "+res.Problem) {
		t.Errorf("repair request messages = %+v, want system, user, first answer, repair note", req.Messages)
	}
	mustRun[PlanResult](t, h.env, h.a.Plan, in)
	if n := h.srv.Count(scripted.KindPlanner); n != 2 {
		t.Errorf("planner requests = %d, want 2", n)
	}
}

const agentMarker = "[agent:alpha]"

// agentHead writes the first two messages of a sub-agent conversation.
func agentHead(t *testing.T, h *harness, ref ConvRef, marker string) {
	t.Helper()
	appendRecs(t, h.a.Transcripts, ref, sysRec("You are a sub-agent."), userRec("Complete this task:\n\nRename things "+marker))
}

func TestAgentStep(t *testing.T) {
	readArgs := `{"path":"a.txt"}`
	editArgs := `{"path":"a.txt","old_string":"SECRET-ARGUMENT-TEXT","new_string":"x"}`
	h := newHarness(t, scripted.Script{Agents: []scripted.Agent{{Match: agentMarker, Turns: []scripted.Reply{
		{Content: "Let me look.", ToolCalls: []scripted.ToolCall{{Name: "read", Arguments: readArgs}, {Name: "edit", Arguments: editArgs}},
			PromptTokens: 900, CompletionTokens: 30},
		{Content: "Renamed everything.\nSTATUS: completed", PromptTokens: 1000, CompletionTokens: 12, CachedPromptTokens: 800},
	}}}})
	ref := ConvRef{RunID: "run-agent", SubtaskID: "01-alpha", Attempt: 1}
	agentHead(t, h, ref, agentMarker)
	in := AgentStepInput{Ref: ref, Turn: 0, Model: "agent-model", ContextLimit: 128000}

	step := mustRun[AgentStepResult](t, h.env, h.a.AgentStep, in)
	want := []ToolCallInfo{
		{ID: "call_0_0", Name: "read", Signature: callSignature("read", readArgs), Brief: "read a.txt"},
		{ID: "call_0_1", Name: "edit", Signature: callSignature("edit", editArgs), Brief: "edit a.txt"},
	}
	if !reflect.DeepEqual(step.ToolCalls, want) || step.Final != "" || step.Reused {
		t.Fatalf("AgentStep = %+v, want tool calls %+v", step, want)
	}
	if !strings.HasPrefix(step.ToolCalls[0].Signature, "read:") || step.ToolCalls[0].Signature == step.ToolCalls[1].Signature {
		t.Errorf("signatures = %q, %q", step.ToolCalls[0].Signature, step.ToolCalls[1].Signature)
	}
	if step.Usage != (Usage{PromptTokens: 900, CompletionTokens: 30}) {
		t.Errorf("usage = %+v", step.Usage)
	}
	encoded, _ := json.Marshal(step)
	// The brief names the file (the Web UI shows it); what an edit writes
	// never enters history.
	if strings.Contains(string(encoded), "SECRET-ARGUMENT-TEXT") {
		t.Errorf("tool arguments leaked into the result: %s", encoded)
	}
	first := sentRequest(t, h.srv, 0)
	if len(first.Tools) != len(tools.Definitions()) || len(first.Messages) != 2 || first.Model != "agent-model" {
		t.Errorf("first request: %d tools, %d messages, model %q", len(first.Tools), len(first.Messages), first.Model)
	}

	// The answer is in the transcript, arguments included.
	stored, ok := transcript.Find(load(t, h.a.Transcripts, ref), keyAssistant(0))
	if !ok || stored.Message.ToolCalls[1].Function.Arguments != editArgs || stored.Message.ToolCalls[1].Type != openai.ToolTypeFunction {
		t.Fatalf("stored turn 0 = %+v, %v", stored, ok)
	}

	// A retry of the same turn reuses the stored answer.
	again := mustRun[AgentStepResult](t, h.env, h.a.AgentStep, in)
	if !again.Reused || !reflect.DeepEqual(again.ToolCalls, want) {
		t.Errorf("retry = %+v, want the same tool calls, reused", again)
	}
	if n := h.srv.Count(scripted.KindAgent); n != 1 {
		t.Errorf("agent requests after a retry = %d, want 1", n)
	}

	// Tool results, then the final turn.
	appendRecs(t, h.a.Transcripts, ref,
		transcript.Record{Key: keyTool(0, 0), Message: openai.ChatCompletionMessage{Role: openai.ChatMessageRoleTool, ToolCallID: "call_0_0", Name: "read", Content: "1\thello"}},
		transcript.Record{Key: keyTool(0, 1), Message: openai.ChatCompletionMessage{Role: openai.ChatMessageRoleTool, ToolCallID: "call_0_1", Name: "edit", Content: "edited a.txt"}},
	)
	final := mustRun[AgentStepResult](t, h.env, h.a.AgentStep, AgentStepInput{Ref: ref, Turn: 1, Model: "agent-model", ContextLimit: 128000})
	if final.Final != "Renamed everything.\nSTATUS: completed" || len(final.ToolCalls) != 0 {
		t.Fatalf("final turn = %+v", final)
	}
	if ParseStatus(final.Final) != StatusCompleted {
		t.Errorf("final status = %q", ParseStatus(final.Final))
	}
	// The provider's prompt cache served part of the prompt: counted, and
	// kept in the transcript, so a retry reports it again.
	if want := (Usage{PromptTokens: 1000, CompletionTokens: 12, CachedPromptTokens: 800}); final.Usage != want {
		t.Errorf("final usage = %+v, want %+v", final.Usage, want)
	}
	if again := mustRun[AgentStepResult](t, h.env, h.a.AgentStep, AgentStepInput{Ref: ref, Turn: 1, Model: "agent-model", ContextLimit: 128000}); !again.Reused || again.Usage != final.Usage {
		t.Errorf("retried final turn = %+v, want its usage %+v reused", again, final.Usage)
	}
	second := sentRequest(t, h.srv, 1)
	// The prefix the provider caches: the tools and the first messages are
	// sent again byte for byte.
	if a, b := mustJSON(t, first.Tools), mustJSON(t, second.Tools); a != b {
		t.Errorf("tool definitions changed between steps")
	}
	if a, b := mustJSON(t, first.Messages), mustJSON(t, second.Messages[:len(first.Messages)]); a != b {
		t.Errorf("the second request does not start with the first one's messages:\n%s\n%s", a, b)
	}
	roles := make([]string, len(second.Messages))
	for i, m := range second.Messages {
		roles[i] = m.Role
	}
	if want := []string{"system", "user", "assistant", "tool", "tool"}; !reflect.DeepEqual(roles, want) {
		t.Fatalf("second request roles = %v, want %v", roles, want)
	}
	if second.Messages[2].ToolCalls[1].Function.Arguments != editArgs || second.Messages[4].ToolCallID != "call_0_1" || second.Messages[4].Content != "edited a.txt" {
		t.Errorf("second request does not carry the conversation from the transcript: %+v", second.Messages)
	}
	if len(second.Tools) != len(tools.Definitions()) {
		t.Errorf("second request has %d tools", len(second.Tools))
	}
	if auth := h.srv.Requests()[1].Authorization; auth != "Bearer "+testAPIKey {
		t.Errorf("Authorization = %q", auth)
	}
}

func TestAgentStepErrorMapping(t *testing.T) {
	tests := []struct {
		name      string
		fault     scripted.Fault
		typ       string
		retryable bool
		delay     time.Duration
	}{
		{"rate limit with Retry-After", scripted.Fault{Status: 429, RetryAfter: "7"}, "llm.rate_limit", true, 7 * time.Second},
		{"rate limit without Retry-After", scripted.Fault{Status: 429}, "llm.rate_limit", true, 0},
		{"unauthorized", scripted.Fault{Status: 401}, "llm.auth", false, 0},
		{"forbidden", scripted.Fault{Status: 403}, "llm.auth", false, 0},
		{"not found", scripted.Fault{Status: 404}, "llm.not_found", false, 0},
		{"bad request", scripted.Fault{Status: 400}, "llm.bad_request", false, 0},
		{"context length", scripted.Fault{ContextLength: true}, "llm.context_length", false, 0},
		{"server error", scripted.Fault{Status: 500}, "llm.server", true, 0},
		{"bad gateway page", scripted.Fault{Status: 502, Body: "<html>bad gateway</html>"}, "llm.server", true, 0},
		{"empty choices", scripted.Fault{EmptyChoices: true}, "llm.empty_response", true, 0},
	}
	agents := make([]scripted.Agent, len(tests))
	for i, tt := range tests {
		agents[i] = scripted.Agent{Match: "[fault:" + tt.name + "]", Turns: []scripted.Reply{{Content: "ok\nSTATUS: completed", Faults: []scripted.Fault{tt.fault}}}}
	}
	h := newHarness(t, scripted.Script{Agents: agents})
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := ConvRef{RunID: "run-faults", SubtaskID: fmt.Sprintf("st-%02d", i), Attempt: 1}
			agentHead(t, h, ref, agents[i].Match)
			_, err := run[AgentStepResult](t, h.env, h.a.AgentStep, AgentStepInput{Ref: ref, Model: "m", ContextLimit: 128000})
			if err == nil {
				t.Fatal("AgentStep succeeded, want an error")
			}
			ae := appErr(t, err)
			if ae.Type() != tt.typ || ae.NonRetryable() == tt.retryable || ae.NextRetryDelay() != tt.delay {
				t.Errorf("error type %q non-retryable %v delay %v; want %q retryable %v delay %v (%v)",
					ae.Type(), ae.NonRetryable(), ae.NextRetryDelay(), tt.typ, tt.retryable, tt.delay, err)
			}
			if strings.Contains(err.Error(), testAPIKey) {
				t.Errorf("error leaks the API key: %v", err)
			}
			if _, ok := transcript.Find(load(t, h.a.Transcripts, ref), keyAssistant(0)); ok {
				t.Error("a failed call stored an answer")
			}
			// The retry (the fault is spent) gets the reply.
			res := mustRun[AgentStepResult](t, h.env, h.a.AgentStep, AgentStepInput{Ref: ref, Model: "m", ContextLimit: 128000})
			if res.Final != "ok\nSTATUS: completed" {
				t.Errorf("retry = %+v", res)
			}
		})
	}
}

func TestLLMError(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		typ       string
		retryable bool
		delay     time.Duration
	}{
		{"429 with retry after", &llm.Error{Kind: llm.KindRateLimit, StatusCode: 429, RetryAfter: 7 * time.Second}, "llm.rate_limit", true, 7 * time.Second},
		{"401", &llm.Error{Kind: llm.KindAuth, StatusCode: 401}, "llm.auth", false, 0},
		{"400", &llm.Error{Kind: llm.KindBadRequest, StatusCode: 400}, "llm.bad_request", false, 0},
		{"context length", &llm.Error{Kind: llm.KindContextLength, StatusCode: 400}, "llm.context_length", false, 0},
		{"500", &llm.Error{Kind: llm.KindServer, StatusCode: 500}, "llm.server", true, 0},
		{"timeout", &llm.Error{Kind: llm.KindTimeout}, "llm.timeout", true, 0},
		{"wrapped", errors.Join(errors.New("context"), &llm.Error{Kind: llm.KindAuth, StatusCode: 403}), "llm.auth", false, 0},
	}
	// An error that is not the model's (the transcript store failing) is
	// returned as it is: Temporal retries it, under no llm.* label.
	plain := errors.New("read transcript: disk full")
	if got := llmError(plain); got != plain {
		t.Errorf("llmError(non-model error) = %v, want it unchanged", got)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ae := appErr(t, llmError(tt.err))
			if ae.Type() != tt.typ || ae.NonRetryable() == tt.retryable || ae.NextRetryDelay() != tt.delay {
				t.Errorf("llmError = type %q non-retryable %v delay %v; want %q retryable %v delay %v",
					ae.Type(), ae.NonRetryable(), ae.NextRetryDelay(), tt.typ, tt.retryable, tt.delay)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	raw := strings.Repeat("ok   github.com/x/pkg  0.1s\n", 3000) + "FAIL github.com/x/broken: undefined: Foo\n"
	ref := ConvRef{RunID: "run-sum", SubtaskID: "01-alpha", Attempt: 1}
	in := SummarizeInput{Ref: ref, Turn: 2, Index: 1, ToolName: "bash", CallID: "call_2_1", Model: "m"}

	t.Run("model summary", func(t *testing.T) {
		h := newHarness(t, scripted.Script{Summary: &scripted.Reply{Content: "One failure: broken (undefined Foo).", PromptTokens: 20000, CompletionTokens: 15}})
		if err := h.a.Transcripts.PutBlob(tref(ref), keyTool(2, 1), []byte(raw)); err != nil {
			t.Fatal(err)
		}
		res := mustRun[SummarizeResult](t, h.env, h.a.Summarize, in)
		if !res.Summarized || res.Usage != (Usage{PromptTokens: 20000, CompletionTokens: 15}) {
			t.Fatalf("Summarize = %+v, want summarized with the reply's usage", res)
		}
		r, ok := transcript.Find(load(t, h.a.Transcripts, ref), keyTool(2, 1))
		if !ok {
			t.Fatal("no tool record written")
		}
		m := r.Message
		if m.Role != openai.ChatMessageRoleTool || m.ToolCallID != "call_2_1" || m.Name != "bash" ||
			!strings.HasPrefix(m.Content, "[Summary of bash output") || !strings.HasSuffix(m.Content, "One failure: broken (undefined Foo).") {
			t.Errorf("tool record = %+v", m)
		}
		if res.Chars != len(m.Content) {
			t.Errorf("Chars = %d, want %d", res.Chars, len(m.Content))
		}
		req := sentRequest(t, h.srv, 0)
		if !strings.Contains(req.Messages[len(req.Messages)-1].Content, "FAIL github.com/x/broken") {
			t.Error("summary request does not carry the raw output")
		}
		again := mustRun[SummarizeResult](t, h.env, h.a.Summarize, in)
		if again.Summarized || again.Chars != res.Chars || h.srv.Count(scripted.KindSummary) != 1 {
			t.Errorf("repeat = %+v with %d summary requests; want the stored record, no new request", again, h.srv.Count(scripted.KindSummary))
		}
	})

	t.Run("non-retryable failure falls back to truncation", func(t *testing.T) {
		h := newHarness(t, scripted.Script{Summary: &scripted.Reply{Content: "unused", Faults: []scripted.Fault{{Status: 400}}}})
		if err := h.a.Transcripts.PutBlob(tref(ref), keyTool(2, 1), []byte(raw)); err != nil {
			t.Fatal(err)
		}
		res, err := run[SummarizeResult](t, h.env, h.a.Summarize, in)
		if err != nil {
			t.Fatalf("Summarize failed instead of truncating: %v", err)
		}
		r, ok := transcript.Find(load(t, h.a.Transcripts, ref), keyTool(2, 1))
		if res.Summarized || !ok || !strings.Contains(r.Message.Content, "chars omitted") {
			t.Fatalf("Summarize = %+v, record %+v", res, r.Message)
		}
		if len(r.Message.Content) > llm.SimpleTruncateChars+200 {
			t.Errorf("truncated record is %d chars", len(r.Message.Content))
		}
	})

	t.Run("retryable failure is an activity error on early attempts", func(t *testing.T) {
		h := newHarness(t, scripted.Script{Summary: &scripted.Reply{Content: "unused", Faults: []scripted.Fault{{Status: 503}}}})
		if err := h.a.Transcripts.PutBlob(tref(ref), keyTool(2, 1), []byte(raw)); err != nil {
			t.Fatal(err)
		}
		_, err := run[SummarizeResult](t, h.env, h.a.Summarize, in)
		if err == nil || appErr(t, err).NonRetryable() {
			t.Fatalf("Summarize error = %v, want a retryable error", err)
		}
		if _, ok := transcript.Find(load(t, h.a.Transcripts, ref), keyTool(2, 1)); ok {
			t.Error("a record was written although the activity will be retried")
		}
	})

	t.Run("missing blob", func(t *testing.T) {
		h := newHarness(t, scripted.Script{})
		if _, err := run[SummarizeResult](t, h.env, h.a.Summarize, in); err == nil {
			t.Fatal("Summarize without a blob succeeded")
		}
	})
}

// fakePace is an LLMPace whose Limited answer the test sets.
type fakePace struct{ limited bool }

func (p *fakePace) Wait(context.Context) error              { return nil }
func (p *fakePace) Accepted()                               {}
func (p *fakePace) Throttle(context.Context, time.Duration) {}
func (p *fakePace) Limited() bool                           { return p.limited }

// TestAgentStepSaysWhetherTheNextTurnNeedsAPermit: AgentStep reports
// NoRateLimit only when its worker's pace says no rate limit is in force; with
// no pace at all the next turn takes a permit.
func TestAgentStepSaysWhetherTheNextTurnNeedsAPermit(t *testing.T) {
	turns := []scripted.Reply{
		{ToolCalls: []scripted.ToolCall{{Name: "read", Arguments: `{"path":"a.txt"}`}}},
		{ToolCalls: []scripted.ToolCall{{Name: "read", Arguments: `{"path":"b.txt"}`}}},
		{Content: "done\nSTATUS: completed"},
	}
	h := newHarness(t, scripted.Script{Agents: []scripted.Agent{{Match: agentMarker, Turns: turns}}})
	ref := ConvRef{RunID: "run-pace", SubtaskID: "01-alpha", Attempt: 1}
	agentHead(t, h, ref, agentMarker)
	pace := &fakePace{}
	for turn, c := range []struct {
		pace        LLMPace
		noRateLimit bool
	}{{nil, false}, {pace, true}, {&fakePace{limited: true}, false}} {
		h.a.Pace = c.pace
		step := mustRun[AgentStepResult](t, h.env, h.a.AgentStep, AgentStepInput{Ref: ref, Turn: turn, Model: "m", ContextLimit: 128000})
		if step.NoRateLimit != c.noRateLimit {
			t.Errorf("turn %d (pace %+v): NoRateLimit %v, want %v", turn, c.pace, step.NoRateLimit, c.noRateLimit)
		}
		if turn < 2 {
			appendRecs(t, h.a.Transcripts, ref, transcript.Record{Key: keyTool(turn, 0), Message: openai.ChatCompletionMessage{
				Role: openai.ChatMessageRoleTool, ToolCallID: step.ToolCalls[0].ID, Name: "read", Content: "1\thello"}})
		}
	}
}

// TestLLMSlotsCapCallsInFlight: a call waits for one of LLMSlots, gives up
// when its context ends first, and waits no longer than leaves its request
// the whole llm.timeout before the activity's deadline.
func TestLLMSlotsCapCallsInFlight(t *testing.T) {
	a := &Activities{LLMSlots: fairslot.New(1, true)}
	release, err := a.takeSlot(context.Background(), "run-a")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := a.takeSlot(ctx, "run-b"); err == nil {
		t.Fatal("a second call got a slot while the only one was taken")
	}
	// With a deadline, it waits only as long as the request would still
	// have its whole timeout before it.
	a.LLM = llm.New(llm.Options{BaseURL: "http://127.0.0.1:1/v1", Timeout: time.Minute})
	dctx, dcancel := context.WithTimeout(context.Background(), time.Minute+100*time.Millisecond)
	defer dcancel()
	start := time.Now()
	if _, err := a.takeSlot(dctx, "run-b"); !errors.Is(err, errNoSlot) || time.Since(start) > 10*time.Second {
		t.Errorf("takeSlot with 100 ms to spare = %v after %s, want errNoSlot at once", err, time.Since(start))
	}
	release()
	release2, err := a.takeSlot(context.Background(), "run-a")
	if err != nil {
		t.Fatalf("slot not given back: %v", err)
	}
	release2()
}

// TestLLMSlotsTakeTurnsByRun: while the slots are full, a run with one call
// waiting goes before the second and third waiting calls of another run.
func TestLLMSlotsTakeTurnsByRun(t *testing.T) {
	a := &Activities{LLMSlots: fairslot.New(1, true)}
	hold, err := a.takeSlot(context.Background(), "big")
	if err != nil {
		t.Fatal(err)
	}
	order := make(chan string, 4)
	for i, run := range []string{"big", "big", "big", "small"} {
		go func() {
			release, err := a.takeSlot(context.Background(), run)
			if err != nil {
				t.Error(err)
				return
			}
			order <- run
			release()
		}()
		for a.LLMSlots.Waiting() != i+1 {
			time.Sleep(time.Millisecond)
		}
	}
	hold()
	var got []string
	for range 4 {
		got = append(got, <-order)
	}
	if want := "big small big big"; strings.Join(got, " ") != want {
		t.Errorf("slots went to %q, want %q", strings.Join(got, " "), want)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
