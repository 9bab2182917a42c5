package scripted_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"codeswarm/llm"
	"codeswarm/llm/scripted"
)

func start(t *testing.T, s scripted.Script, opts ...scripted.Option) *scripted.Server {
	t.Helper()
	srv, err := scripted.Start(s, opts...)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(srv.Close)
	return srv
}

func client(srv *scripted.Server) *llm.Client {
	return llm.New(llm.Options{BaseURL: srv.URL(), Timeout: 10 * time.Second})
}

var readTool = openai.Tool{Type: openai.ToolTypeFunction, Function: &openai.FunctionDefinition{
	Name: "read", Parameters: json.RawMessage(`{"type":"object","properties":{"path":{"type":"string"}}}`),
}}

// agentRequest builds a sub-agent request whose first user message is
// instruction, after `turns` complete tool-call rounds.
func agentRequest(instruction string, turns int) openai.ChatCompletionRequest {
	msgs := []openai.ChatCompletionMessage{
		{Role: "system", Content: "You are a sub-agent."},
		{Role: "user", Content: instruction + "\n\nContext from dependencies: none."},
	}
	for i := range turns {
		id := fmt.Sprintf("call_%d_0", i)
		msgs = append(msgs,
			openai.ChatCompletionMessage{Role: "assistant", ToolCalls: []openai.ToolCall{
				{ID: id, Type: "function", Function: openai.FunctionCall{Name: "read", Arguments: "{}"}}}},
			openai.ChatCompletionMessage{Role: "tool", ToolCallID: id, Content: "file contents"})
	}
	return openai.ChatCompletionRequest{Model: "test-model", Messages: msgs, Tools: []openai.Tool{readTool}}
}

func plannerRequest(previousAnswers ...string) openai.ChatCompletionRequest {
	msgs := []openai.ChatCompletionMessage{
		{Role: "system", Content: "You are a planner."},
		{Role: "user", Content: "Task: refactor things."},
	}
	for _, a := range previousAnswers {
		msgs = append(msgs,
			openai.ChatCompletionMessage{Role: "assistant", Content: a},
			openai.ChatCompletionMessage{Role: "user", Content: "That plan was invalid; fix it."})
	}
	return openai.ChatCompletionRequest{Model: "planner-model", Messages: msgs}
}

func content(t *testing.T, c *llm.Client, req openai.ChatCompletionRequest) openai.ChatCompletionMessage {
	t.Helper()
	resp, err := c.Chat(context.Background(), req)
	if err != nil {
		t.Fatalf("Chat: %v", err)
	}
	return resp.Choices[0].Message
}

func TestPlannerTurns(t *testing.T) {
	srv := start(t, scripted.Script{Planner: []scripted.Reply{{Content: "plan A"}, {Content: "plan B"}}})
	c := client(srv)
	for _, tt := range []struct {
		previous []string
		want     string
	}{{nil, "plan A"}, {[]string{"plan A"}, "plan B"}, {[]string{"a", "b", "c"}, "plan B"}} {
		if got := content(t, c, plannerRequest(tt.previous...)).Content; got != tt.want {
			t.Errorf("after %d answers got %q, want %q", len(tt.previous), got, tt.want)
		}
	}
	reqs := srv.Requests()
	if len(reqs) != 3 || reqs[1].Kind != scripted.KindPlanner || reqs[1].Turn != 1 || reqs[2].Turn != 3 {
		t.Fatalf("recorded %+v", reqs)
	}
	if srv.Count(scripted.KindPlanner) != 3 || srv.Count(scripted.KindAgent) != 0 {
		t.Fatal("Count disagrees with the requests sent")
	}
}

func TestAgentMatchingAndTurns(t *testing.T) {
	srv := start(t, scripted.Script{
		Agents: []scripted.Agent{
			{Match: "[t:a]", Turns: []scripted.Reply{{Content: "short match"}}},
			{Match: "[t:a-long]", Turns: []scripted.Reply{
				{Content: "looking", ToolCalls: []scripted.ToolCall{
					{Name: "read", Arguments: `{"path":"a.go"}`}, {Name: "list", Arguments: `{`}}},
				{Content: "all good\nSTATUS: completed"},
			}},
		},
		Default: &scripted.Reply{Content: "who?\nSTATUS: blocked"},
	})
	c := client(srv)

	// "[t:a-long]" contains "[t:a" but not "[t:a]"; put both in the text.
	resp, err := c.Chat(context.Background(), agentRequest("[t:a-long] do it; see also [t:a]", 0))
	if err != nil {
		t.Fatalf("Chat: %v", err)
	}
	msg, choice := resp.Choices[0].Message, resp.Choices[0]
	if msg.Content != "looking" || choice.FinishReason != openai.FinishReasonToolCalls || len(msg.ToolCalls) != 2 {
		t.Fatalf("turn 0: %+v", choice)
	}
	tc := msg.ToolCalls[1]
	if tc.ID != "call_0_1" || tc.Type != openai.ToolTypeFunction || tc.Function.Name != "list" || tc.Function.Arguments != "{" {
		t.Fatalf("tool call %+v", tc)
	}
	if resp.Model != "test-model" || resp.Object != "chat.completion" || resp.Usage.TotalTokens == 0 {
		t.Fatalf("response envelope %+v", resp)
	}

	tests := []struct {
		instruction string
		turn        int
		want        string
	}{
		{"[t:a-long] do it", 1, "all good\nSTATUS: completed"},
		{"[t:a-long] do it", 2, "Done.\nSTATUS: completed"},
		{"[t:a] only", 0, "short match"},
		{"nothing known", 0, "who?\nSTATUS: blocked"},
	}
	for _, tt := range tests {
		if got := content(t, c, agentRequest(tt.instruction, tt.turn)).Content; got != tt.want {
			t.Errorf("%q turn %d: got %q, want %q", tt.instruction, tt.turn, got, tt.want)
		}
	}
	reqs := srv.Requests()
	if reqs[0].Agent != "[t:a-long]" || reqs[2].Turn != 2 || reqs[4].Agent != "" || reqs[4].Kind != scripted.KindAgent {
		t.Fatalf("recorded %+v", reqs)
	}
}

// TestMatchUsesFirstUserMessageOnly: a marker in a later message (a tool
// result quoting another subtask) must not change the agent.
func TestMatchUsesFirstUserMessageOnly(t *testing.T) {
	srv := start(t, scripted.Script{Agents: []scripted.Agent{
		{Match: "[m:one]", Turns: []scripted.Reply{{}, {Content: "one"}}},
		{Match: "[m:one-but-longer]", Turns: []scripted.Reply{{}, {Content: "longer"}}},
	}})
	req := agentRequest("[m:one] task", 1)
	req.Messages[len(req.Messages)-1].Content = "log mentions [m:one-but-longer]"
	if got := content(t, client(srv), req).Content; got != "one" {
		t.Fatalf("got %q, want the agent of the first user message", got)
	}
}

func TestSummaryRequest(t *testing.T) {
	srv := start(t, scripted.Script{Summary: &scripted.Reply{Content: "short"}})
	req := llm.SummaryRequest("m", "bash", strings.Repeat("log line\n", 10_000))
	if got := content(t, client(srv), req).Content; got != "short" {
		t.Fatalf("got %q", got)
	}
	if srv.Count(scripted.KindSummary) != 1 {
		t.Fatal("summary request not counted as summary")
	}
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name       string
		fault      scripted.Fault
		kind       llm.Kind
		status     int
		retryAfter time.Duration
	}{
		{"rate limit", scripted.Fault{Status: 429, RetryAfter: "2"}, llm.KindRateLimit, 429, 2 * time.Second},
		{"rate limit ms", scripted.Fault{Status: 429, RetryAfter: "2", RetryAfterMS: "750"}, llm.KindRateLimit, 429, 750 * time.Millisecond},
		{"500", scripted.Fault{Status: 500}, llm.KindServer, 500, 0},
		{"502 html", scripted.Fault{Status: 502, Body: "<html><h1>502 Bad Gateway</h1></html>"}, llm.KindServer, 502, 0},
		{"503", scripted.Fault{Status: 503, RetryAfter: "1"}, llm.KindServer, 503, time.Second},
		{"non-JSON 200", scripted.Fault{Body: "<html>captive portal</html>"}, llm.KindMalformedResponse, 200, 0},
		{"empty choices", scripted.Fault{EmptyChoices: true}, llm.KindEmptyResponse, 200, 0},
		{"context length", scripted.Fault{ContextLength: true}, llm.KindContextLength, 400, 0},
		{"default status", scripted.Fault{}, llm.KindServer, 500, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := start(t, scripted.Script{Agents: []scripted.Agent{{Match: "[f]", Turns: []scripted.Reply{
				{Content: "real", Faults: []scripted.Fault{tt.fault}},
			}}}})
			c := client(srv)
			_, err := c.Chat(context.Background(), agentRequest("[f]", 0))
			var e *llm.Error
			if !errors.As(err, &e) || e.Kind != tt.kind || e.StatusCode != tt.status || e.RetryAfter != tt.retryAfter {
				t.Fatalf("first call: %v; want kind %s status %d retry after %v", err, tt.kind, tt.status, tt.retryAfter)
			}
			if e.Retryable() != (tt.kind != llm.KindContextLength) {
				t.Fatalf("Retryable() = %v for %s", e.Retryable(), tt.kind)
			}
			if got := content(t, c, agentRequest("[f]", 0)).Content; got != "real" {
				t.Fatalf("retry got %q, want the real reply", got)
			}
			if reqs := srv.Requests(); reqs[0].Status != tt.status || reqs[1].Status != 200 {
				t.Fatalf("recorded statuses %d, %d", reqs[0].Status, reqs[1].Status)
			}
		})
	}
}

func TestFaultsInOrderPerTurn(t *testing.T) {
	srv := start(t, scripted.Script{Agents: []scripted.Agent{{Match: "[o]", Turns: []scripted.Reply{
		{Content: "t0", Faults: []scripted.Fault{{Status: 503}, {Status: 429}}},
		{Content: "t1"},
	}}}})
	c := client(srv)
	// Turn 1 is not affected by turn 0's faults.
	if got := content(t, c, agentRequest("[o]", 1)).Content; got != "t1" {
		t.Fatalf("turn 1 got %q", got)
	}
	for _, want := range []llm.Kind{llm.KindServer, llm.KindRateLimit} {
		_, err := c.Chat(context.Background(), agentRequest("[o]", 0))
		if e := llm.Classify(err); e == nil || e.Kind != want {
			t.Fatalf("got %v, want %s", err, want)
		}
	}
	if got := content(t, c, agentRequest("[o]", 0)).Content; got != "t0" {
		t.Fatalf("after faults got %q", got)
	}
}

func TestHangTimesOut(t *testing.T) {
	srv := start(t, scripted.Script{Planner: []scripted.Reply{{Content: "plan", Faults: []scripted.Fault{{Hang: true}}}}})
	c := llm.New(llm.Options{BaseURL: srv.URL(), Timeout: 100 * time.Millisecond})
	_, err := c.Chat(context.Background(), plannerRequest())
	var e *llm.Error
	if !errors.As(err, &e) || e.Kind != llm.KindTimeout || !e.Retryable() {
		t.Fatalf("got %v, want a retryable timeout", err)
	}
	if got := content(t, c, plannerRequest()).Content; got != "plan" {
		t.Fatalf("after the hang got %q", got)
	}
}

func TestCloseReleasesHungRequests(t *testing.T) {
	srv, err := scripted.Start(scripted.Script{Planner: []scripted.Reply{{Faults: []scripted.Fault{{Hang: true}}}}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := llm.New(llm.Options{BaseURL: srv.URL()}).Chat(context.Background(), plannerRequest())
		done <- err
	}()
	for srv.Count(scripted.KindPlanner) == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	srv.Close()
	if err := <-done; llm.Classify(err).Kind != llm.KindNetwork {
		t.Fatalf("hung request ended with %v, want a network error", err)
	}
}

func TestStrictValidation(t *testing.T) {
	call := func(id string) openai.ChatCompletionMessage {
		return openai.ChatCompletionMessage{Role: "assistant", ToolCalls: []openai.ToolCall{
			{ID: id, Type: "function", Function: openai.FunctionCall{Name: "read", Arguments: "{}"}}}}
	}
	result := func(id string) openai.ChatCompletionMessage {
		return openai.ChatCompletionMessage{Role: "tool", ToolCallID: id, Content: "x"}
	}
	user := openai.ChatCompletionMessage{Role: "user", Content: "[v] go"}
	tests := []struct {
		name string
		msgs []openai.ChatCompletionMessage
		want string
	}{
		{"no messages", nil, "at least one message"},
		{"orphan tool result", []openai.ChatCompletionMessage{user, result("call_9")}, `"call_9" does not answer`},
		{"result of a dropped call", []openai.ChatCompletionMessage{user, call("a"), result("a"), result("a")}, `"a" does not answer`},
		{"missing result", []openai.ChatCompletionMessage{user, call("a"), user}, `missing ["a"]`},
		{"missing result at end", []openai.ChatCompletionMessage{user, call("a")}, `missing ["a"]`},
	}
	srv := start(t, scripted.Script{})
	c := client(srv)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Chat(context.Background(), openai.ChatCompletionRequest{Model: "m", Messages: tt.msgs, Tools: []openai.Tool{readTool}})
			var e *llm.Error
			if !errors.As(err, &e) || e.Kind != llm.KindBadRequest || e.StatusCode != 400 || !strings.Contains(e.Message, tt.want) {
				t.Fatalf("got %v, want bad_request mentioning %q", err, tt.want)
			}
		})
	}
	ok := []openai.ChatCompletionMessage{user, call("a"), result("a"), user}
	if _, err := c.Chat(context.Background(), openai.ChatCompletionRequest{Model: "m", Messages: ok, Tools: []openai.Tool{readTool}}); err != nil {
		t.Fatalf("valid conversation rejected: %v", err)
	}
}

// TestFitContextOutputAccepted sends a conversation shrunk by FitContext to
// the strict server: truncation must never orphan a tool call or result.
func TestFitContextOutputAccepted(t *testing.T) {
	srv := start(t, scripted.Script{})
	c := client(srv)
	for rounds := 3; rounds < 40; rounds += 7 {
		req := agentRequest("[fit] task", rounds)
		for i := range req.Messages {
			if req.Messages[i].Role == "tool" {
				req.Messages[i].Content = strings.Repeat("output line\n", 1000)
			}
		}
		var rep llm.FitReport
		req.Messages, rep = llm.FitContext(req.Messages, 16_384)
		if rep.DroppedMessages == 0 && rounds > 10 {
			t.Fatalf("%d rounds: nothing dropped (%+v); test does not exercise dropping", rounds, rep)
		}
		if _, err := c.Chat(context.Background(), req); err != nil {
			t.Fatalf("%d rounds: shrunk conversation rejected: %v", rounds, err)
		}
	}
}

func TestAPIKey(t *testing.T) {
	const key = "sk-scripted-0123456789"
	srv := start(t, scripted.Script{Planner: []scripted.Reply{{Content: "ok"}}}, scripted.WithAPIKey(key))
	_, err := llm.New(llm.Options{BaseURL: srv.URL(), APIKey: "sk-wrong-0123456789"}).Chat(context.Background(), plannerRequest())
	var e *llm.Error
	if !errors.As(err, &e) || e.Kind != llm.KindAuth || e.Retryable() || strings.Contains(e.Error(), "sk-wrong-0123456789") {
		t.Fatalf("wrong key: %v", err)
	}
	if got := content(t, llm.New(llm.Options{BaseURL: srv.URL(), APIKey: key}), plannerRequest()).Content; got != "ok" {
		t.Fatalf("right key got %q", got)
	}
	reqs := srv.Requests()
	if reqs[0].Status != 401 || reqs[1].Authorization != "Bearer "+key {
		t.Fatalf("recorded %+v", reqs)
	}
}

func TestConcurrentRequests(t *testing.T) {
	var agents []scripted.Agent
	for a := range 5 {
		var turns []scripted.Reply
		for turn := range 10 {
			turns = append(turns, scripted.Reply{
				Content: fmt.Sprintf("agent %d turn %d", a, turn),
				Faults:  []scripted.Fault{{Status: 503}}, // every (agent, turn) fails once
			})
		}
		agents = append(agents, scripted.Agent{Match: fmt.Sprintf("[c:%d]", a), Turns: turns})
	}
	srv := start(t, scripted.Script{Agents: agents})
	c := client(srv)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		a, turn := i%5, i/5
		wg.Go(func() {
			req := agentRequest(fmt.Sprintf("[c:%d] work", a), turn)
			if _, err := c.Chat(context.Background(), req); llm.Classify(err) == nil || llm.Classify(err).Kind != llm.KindServer {
				errs <- fmt.Errorf("agent %d turn %d first call: %v, want the 503 fault", a, turn, err)
				return
			}
			resp, err := c.Chat(context.Background(), req)
			if want := fmt.Sprintf("agent %d turn %d", a, turn); err != nil || resp.Choices[0].Message.Content != want {
				errs <- fmt.Errorf("agent %d turn %d retry: %v %+v, want %q", a, turn, err, resp.Choices, want)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := srv.Count(scripted.KindAgent); n != 100 {
		t.Fatalf("Count(agent) = %d, want 100", n)
	}
}

func TestModelsEndpoint(t *testing.T) {
	srv := start(t, scripted.Script{})
	resp, err := http.Get(srv.URL() + "/models")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list openai.ModelsList
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || len(list.Models) != 1 {
		t.Fatalf("models: %v %+v", err, list)
	}
	resp2, err := http.Post(srv.URL()+"/nope", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	if resp2.StatusCode != 404 || !strings.Contains(string(body), `"error"`) {
		t.Fatalf("unknown path: %d %s", resp2.StatusCode, body)
	}
}

func TestLoadScript(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	os.WriteFile(good, []byte(`{
		"planner": [{"content": "{\"subtasks\":[]}"}],
		"agents": [{"match": "[x]", "turns": [
			{"tool_calls": [{"name": "bash", "arguments": "{\"command\":\"ls\"}"}], "delay": "250ms",
			 "faults": [{"status": 429, "retry_after": "1", "delay": "10ms"}, {"hang": true}]}
		]}],
		"default": {"content": "nope"}
	}`), 0o644)
	s, err := scripted.LoadScript(good)
	if err != nil {
		t.Fatalf("LoadScript: %v", err)
	}
	turn := s.Agents[0].Turns[0]
	if time.Duration(turn.Delay) != 250*time.Millisecond || len(turn.Faults) != 2 || !turn.Faults[1].Hang ||
		time.Duration(turn.Faults[0].Delay) != 10*time.Millisecond || s.Default.Content != "nope" {
		t.Fatalf("loaded %+v", s)
	}
	for name, text := range map[string]string{
		"unknown key":  `{"planer": []}`,
		"bad duration": `{"planner": [{"delay": "soon"}]}`,
		"not json":     `planner:`,
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".json")
		os.WriteFile(p, []byte(text), 0o644)
		if _, err := scripted.LoadScript(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: err = %v, want an error naming %s", name, err, p)
		}
	}
	if _, err := scripted.LoadScript(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("missing file: no error")
	}
}

func BenchmarkChatRoundTrip(b *testing.B) {
	srv, err := scripted.Start(scripted.Script{Agents: []scripted.Agent{{Match: "[b]", Turns: []scripted.Reply{{Content: "x"}}}}})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	c := llm.New(llm.Options{BaseURL: srv.URL()})
	req := agentRequest("[b]", 0)
	for b.Loop() {
		if _, err := c.Chat(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}

// WithoutBodies: the log still classifies every request, without its body.
func TestWithoutBodies(t *testing.T) {
	for _, drop := range []bool{false, true} {
		var opts []scripted.Option
		if drop {
			opts = append(opts, scripted.WithoutBodies())
		}
		srv := start(t, scripted.Script{Planner: []scripted.Reply{{Content: "plan A"}}}, opts...)
		if got := content(t, client(srv), plannerRequest()).Content; got != "plan A" {
			t.Fatalf("answer %q", got)
		}
		r := srv.Requests()[0]
		if r.Kind != scripted.KindPlanner || r.Status != http.StatusOK || (len(r.Body) == 0) != drop {
			t.Errorf("WithoutBodies %v: logged kind %q, status %d, %d body bytes", drop, r.Kind, r.Status, len(r.Body))
		}
	}
}
