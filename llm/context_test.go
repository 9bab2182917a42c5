package llm

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	openai "github.com/sashabaranov/go-openai"
)

func TestEstimateTokens(t *testing.T) {
	tests := []struct {
		s    string
		want int
	}{{"", 0}, {"a", 1}, {"abc", 1}, {"abcd", 2}, {"abcdefg", 2}, {"abcdefgh", 3}, {strings.Repeat("x", 35), 10}}
	for _, tt := range tests {
		if got := EstimateTokens(tt.s); got != tt.want {
			t.Errorf("EstimateTokens(%d bytes) = %d, want %d", len(tt.s), got, tt.want)
		}
	}
}

func TestEstimateMessageTokens(t *testing.T) {
	tests := []struct {
		name string
		msg  openai.ChatCompletionMessage
		want int
	}{
		{"user", openai.ChatCompletionMessage{Role: "user", Content: "abcdefg"}, 4 + 2},
		{"assistant with tool call", openai.ChatCompletionMessage{Role: "assistant", ToolCalls: []openai.ToolCall{
			{ID: "call_0_0", Type: "function", Function: openai.FunctionCall{Name: "read", Arguments: `{"path":"a"}`}},
		}}, 4 + (3 + 2 + 4 + 10)},
		{"tool result", openai.ChatCompletionMessage{Role: "tool", ToolCallID: "call_0_0", Content: "abcdefg"}, 4 + 2 + 3 + 6},
	}
	for _, tt := range tests {
		if got := EstimateMessageTokens(tt.msg); got != tt.want {
			t.Errorf("%s: EstimateMessageTokens = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestTruncateResult(t *testing.T) {
	tests := []struct {
		name, content string
		max           int
		want          string
	}{
		{"short unchanged", "abc", 10, "abc"},
		{"head and tail at newlines", "l1\nl2\nl3\nl4\nl5\nl6", 10, "l1\nl2\n[… 7 chars omitted …]\nl5\nl6"},
		{"no newline", "abcdefghij", 6, "abcd\n[… 4 chars omitted …]\nij"},
		// "é" is two bytes; neither cut may split it.
		{"utf8 boundaries", "abcé" + "xyzé", 6, "abc\n[… 4 chars omitted …]\nzé"},
		{"exit code line kept", "start\n" + strings.Repeat("noise\n", 50) + "FAIL: TestX\nexit code: 1", 41,
			"start\nnoise\nnoise\n[… 289 chars omitted …]\nFAIL: TestX\nexit code: 1"},
		{"exit code kept past a huge last line", strings.Repeat("y", 100) + "\nexit code: 2", 30,
			strings.Repeat("y", 11) + "\n[… 83 chars omitted …]\n" + strings.Repeat("y", 6) + "\nexit code: 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := TruncateResult(tt.content, tt.max)
			if got != tt.want {
				t.Fatalf("TruncateResult = %q, want %q", got, tt.want)
			}
		})
	}
}

// A failing build's 20,000-char log keeps its last lines and exit code.
func TestTruncateResultKeepsEndOfLongLog(t *testing.T) {
	var b strings.Builder
	for i := 0; b.Len() < 20000; i++ {
		fmt.Fprintf(&b, "compiling package %d\n", i)
	}
	b.WriteString("main.go:3: undefined: Foo\nexit code: 1")
	got := TruncateResult(b.String(), SimpleTruncateChars)
	if !strings.HasSuffix(got, "main.go:3: undefined: Foo\nexit code: 1") || !strings.HasPrefix(got, "compiling package 0\n") {
		t.Fatalf("head or tail lost:\n%s", got)
	}
	if len(got) > SimpleTruncateChars+40 || !strings.Contains(got, "chars omitted") {
		t.Fatalf("result is %d chars, want about %d with a marker", len(got), SimpleTruncateChars)
	}
}

// conversation builds system, user, then n rounds of assistant tool call +
// tool result, each result resultBytes long.
func conversation(n, resultBytes int) []openai.ChatCompletionMessage {
	msgs := []openai.ChatCompletionMessage{
		{Role: "system", Content: "you are an agent"},
		{Role: "user", Content: "do the task"},
	}
	for i := range n {
		id := fmt.Sprintf("call_%d_0", i)
		name := []string{"read", "bash", "grep"}[i%3]
		msgs = append(msgs,
			openai.ChatCompletionMessage{Role: "assistant", ToolCalls: []openai.ToolCall{
				{ID: id, Type: "function", Function: openai.FunctionCall{Name: name, Arguments: "{}"}}}},
			openai.ChatCompletionMessage{Role: "tool", ToolCallID: id, Content: strings.Repeat("x\n", resultBytes/2)},
		)
	}
	return msgs
}

// checkPairs fails if a tool message does not follow its assistant call or
// an assistant's call has no result: the rules strict servers enforce.
func checkPairs(t *testing.T, msgs []openai.ChatCompletionMessage) {
	t.Helper()
	var pending []string
	for i, m := range msgs {
		if m.Role == "tool" {
			j := slices.Index(pending, m.ToolCallID)
			if j < 0 {
				t.Fatalf("messages[%d]: orphan tool result %q", i, m.ToolCallID)
			}
			pending = slices.Delete(pending, j, j+1)
			continue
		}
		if len(pending) > 0 {
			t.Fatalf("messages[%d]: calls %v have no result", i, pending)
		}
		for _, tc := range m.ToolCalls {
			pending = append(pending, tc.ID)
		}
	}
	if len(pending) > 0 {
		t.Fatalf("calls %v have no result", pending)
	}
}

func TestFitContextUnderLimit(t *testing.T) {
	in := conversation(3, 100)
	out, rep := FitContext(in, 128_000)
	if !slices.EqualFunc(in, out, sameMessage) || rep.TruncatedResults != 0 || rep.DroppedMessages != 0 {
		t.Fatalf("FitContext changed a small conversation: %+v", rep)
	}
	if rep.Before != rep.After || rep.Before == 0 {
		t.Fatalf("report %+v, want Before == After > 0", rep)
	}
}

func TestFitContextTruncatesResultsFirst(t *testing.T) {
	in := conversation(3, 40_000) // ~11k tokens each; 3 of them fit after cutting
	out, rep := FitContext(in, 32_000)
	if rep.TruncatedResults != 3 || rep.DroppedMessages != 0 || len(out) != len(in) {
		t.Fatalf("report %+v, len %d; want 3 truncated, none dropped", rep, len(out))
	}
	for _, m := range out {
		if m.Role == "tool" && !strings.Contains(m.Content, " chars omitted …]") {
			t.Fatalf("tool result not truncated: %d bytes", len(m.Content))
		}
	}
	if rep.After >= rep.Before || rep.After > int(32_000*TruncationThreshold)-ResponseReserveTokens {
		t.Fatalf("report %+v: still over target", rep)
	}
}

func TestFitContextDropsMiddleKeepingPairs(t *testing.T) {
	in := conversation(30, 5_000)
	orig := slices.Clone(in)
	out, rep := FitContext(in, 16_384)
	if !slices.EqualFunc(in, orig, sameMessage) {
		t.Fatal("FitContext modified its input")
	}
	checkPairs(t, out)
	// First 2 kept, note, then the last 2 rounds (4 messages) kept whole.
	if len(out) != 2+1+4 || out[0].Content != "you are an agent" || out[1].Content != "do the task" {
		t.Fatalf("got %d messages, want system, user, note, 4 tail", len(out))
	}
	note := out[2].Content
	wantNote := "[Context truncated: 56 earlier messages removed to fit context window]\n" +
		"Tools used in truncated history: read, bash, grep"
	if note != wantNote || out[2].Role != "user" {
		t.Fatalf("note = %q, want %q", note, wantNote)
	}
	if rep.DroppedMessages != 56 || rep.After >= rep.Before {
		t.Fatalf("report %+v", rep)
	}
}

// TestFitContextExtendsTailOverToolRun covers the seed's bug: with a final
// assistant message calling four tools, the last 4 messages are all tool
// results, whose assistant call the seed would drop.
func TestFitContextExtendsTailOverToolRun(t *testing.T) {
	in := conversation(10, 5_000)
	last := openai.ChatCompletionMessage{Role: "assistant"}
	for i := range 4 {
		id := fmt.Sprintf("call_x_%d", i)
		last.ToolCalls = append(last.ToolCalls, openai.ToolCall{ID: id, Type: "function",
			Function: openai.FunctionCall{Name: "write", Arguments: "{}"}})
	}
	in = append(in, last)
	for _, tc := range last.ToolCalls {
		in = append(in, openai.ChatCompletionMessage{Role: "tool", ToolCallID: tc.ID, Content: "ok"})
	}
	out, rep := FitContext(in, 16_384)
	checkPairs(t, out)
	if got := out[len(out)-5]; got.Role != "assistant" || len(got.ToolCalls) != 4 {
		t.Fatalf("tail does not start with the 4-call assistant message: %+v", got)
	}
	if rep.DroppedMessages != len(in)-len(out)+1 {
		t.Fatalf("DroppedMessages = %d, want %d", rep.DroppedMessages, len(in)-len(out)+1)
	}
}

func TestFitContextShortConversationNotDropped(t *testing.T) {
	in := conversation(2, 400_000) // 6 messages, way over
	out, rep := FitContext(in, 16_384)
	if len(out) != len(in) || rep.DroppedMessages != 0 || rep.TruncatedResults != 2 {
		t.Fatalf("len %d report %+v; want all 6 kept, 2 truncated", len(out), rep)
	}
}

func sameMessage(a, b openai.ChatCompletionMessage) bool {
	return a.Role == b.Role && a.Content == b.Content && a.ToolCallID == b.ToolCallID && len(a.ToolCalls) == len(b.ToolCalls)
}

func TestSummaryRequest(t *testing.T) {
	content := strings.Repeat("error: x\n", 50_000) // 450k chars
	req := SummaryRequest("gpt-x", "bash", content)
	if req.Model != "gpt-x" || len(req.Tools) != 0 || len(req.Messages) != 2 {
		t.Fatalf("unexpected request shape: model %q, %d tools, %d messages", req.Model, len(req.Tools), len(req.Messages))
	}
	if !strings.Contains(req.Messages[0].Content, SummaryMarker) {
		t.Fatal("system message lacks SummaryMarker")
	}
	user := req.Messages[1].Content
	if !strings.HasPrefix(user, "Summarize the key information from this bash output. Focus on: errors, warnings, "+
		"important findings, and actionable items. Be concise but thorough.") {
		t.Fatalf("user message starts %q", user[:120])
	}
	if len(user) > summaryInputChars+1000 || !strings.Contains(user, " chars omitted …]") {
		t.Fatalf("content not cut: %d bytes", len(user))
	}
}

func BenchmarkFitContext(b *testing.B) {
	in := conversation(200, 5_000)
	for b.Loop() {
		FitContext(in, 128_000)
	}
}
