package llm

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	openai "github.com/sashabaranov/go-openai"
)

// agentConversation is a sub-agent conversation after steps tool turns:
// the system prompt, the instruction, then per step an assistant message
// with one read call and its result of resultChars bytes.
func agentConversation(steps, resultChars int) []openai.ChatCompletionMessage {
	msgs := []openai.ChatCompletionMessage{
		{Role: "system", Content: "You are a sub-agent. " + strings.Repeat("rules ", 200)},
		{Role: "user", Content: "Complete this task:\n\nrename Foo to Bar"},
	}
	for t := 1; t <= steps; t++ {
		id := fmt.Sprintf("call_%d_0", t)
		msgs = append(msgs,
			openai.ChatCompletionMessage{Role: "assistant", Content: fmt.Sprintf("step %d", t), ToolCalls: []openai.ToolCall{
				{ID: id, Type: "function", Function: openai.FunctionCall{Name: "read", Arguments: fmt.Sprintf(`{"path":"pkg/f%d.go"}`, t)}}}},
			openai.ChatCompletionMessage{Role: "tool", ToolCallID: id, Name: "read", Content: fmt.Sprintf("%d|", t) + strings.Repeat("x", resultChars)})
	}
	return msgs
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCompactWithoutBudgetSendsEverything(t *testing.T) {
	msgs := agentConversation(50, 3000)
	out, rep := Compact(msgs, Budget{})
	if !reflect.DeepEqual(out, msgs) || rep.DroppedMessages != 0 || rep.TruncatedResults != 0 {
		t.Errorf("Compact without a budget changed the conversation: %+v", rep)
	}
}

// TestCompactKeepsRequestsWithinBudgetAndCacheable replays a 300-step
// conversation: every request stays within the budget, starts with the
// same system prompt and instruction, and between two cuts starts with the
// whole previous request, byte for byte; cuts are rare (each one frees
// half the budget).
func TestCompactKeepsRequestsWithinBudgetAndCacheable(t *testing.T) {
	const steps, budget, overhead = 300, 20000, 1500
	all := agentConversation(steps, 2000)
	b := Budget{Tokens: budget, Overhead: overhead, KeepResults: 4}
	var prev []openai.ChatCompletionMessage
	cuts := 0
	for s := 1; s <= steps; s++ {
		msgs := all[:2+2*s]
		out, rep := Compact(msgs, b)
		if rep.After > budget {
			t.Fatalf("step %d: request of %d tokens, budget %d", s, rep.After, budget)
		}
		if got := overhead + estimateAll(out); got != rep.After {
			t.Fatalf("step %d: report says %d tokens, the request has %d", s, rep.After, got)
		}
		if mustJSON(t, out[:2]) != mustJSON(t, msgs[:2]) {
			t.Fatalf("step %d: the system prompt or the instruction changed", s)
		}
		// The most recent KeepResults tool results are whole.
		whole := 0
		for i := len(out) - 1; i >= 0 && whole < b.KeepResults; i-- {
			if out[i].Role == "tool" {
				if strings.HasPrefix(out[i].Content, "[earlier") {
					t.Fatalf("step %d: a recent tool result was stubbed: %q", s, out[i].Content)
				}
				whole++
			}
		}
		if prev != nil {
			if len(out) > len(prev) && mustJSON(t, out[:len(prev)]) == mustJSON(t, prev) {
				// A cache hit on everything sent before.
			} else {
				cuts++
			}
		}
		prev = out
		// The same messages give the same request (a retried step).
		again, _ := Compact(msgs, b)
		if mustJSON(t, again) != mustJSON(t, out) {
			t.Fatalf("step %d: Compact is not deterministic", s)
		}
	}
	t.Logf("%d cuts in %d steps", cuts, steps)
	// Each step adds ~600 tokens; a cut frees ~half the budget: about one
	// cut every 16 steps.
	if max := steps*700/(budget/2) + 2; cuts == 0 || cuts > max {
		t.Errorf("%d cuts in %d steps, want between 1 and %d", cuts, steps, max)
	}
}

func TestCompactStubsOldResultsBeforeDropping(t *testing.T) {
	msgs := agentConversation(20, 4000) // ~1150 tokens a step
	out, rep := Compact(msgs, Budget{Tokens: 14000, KeepResults: 3})
	if rep.DroppedMessages != 0 {
		t.Fatalf("dropped %d messages; stubbing old results was enough", rep.DroppedMessages)
	}
	if len(out) != len(msgs) || rep.TruncatedResults == 0 {
		t.Fatalf("got %d messages (want %d), %d results stubbed", len(out), len(msgs), rep.TruncatedResults)
	}
	stub := out[3].Content
	if want := "[earlier read result elided to save context: 4002 chars]"; stub != want {
		t.Errorf("stub = %q, want %q", stub, want)
	}
	if n := len(msgs); out[n-1].Content != msgs[n-1].Content {
		t.Errorf("the last result was stubbed")
	}
}

func TestCompactDropsOldestExchangesWithANote(t *testing.T) {
	msgs := agentConversation(200, 400)
	out, rep := Compact(msgs, Budget{Tokens: 8000})
	if rep.DroppedMessages == 0 || rep.After > 8000 {
		t.Fatalf("report %+v: want dropped messages and at most 8000 tokens", rep)
	}
	note := out[2]
	if note.Role != "user" || !strings.Contains(note.Content, fmt.Sprintf("%d earlier messages removed", rep.DroppedMessages)) ||
		!strings.Contains(note.Content, "Tools used in truncated history: read") || !strings.Contains(note.Content, "pkg/f1.go") {
		t.Errorf("note = %+v", note)
	}
	// What follows the note is a whole exchange: an assistant message
	// and its tool result.
	if out[3].Role != "assistant" || out[4].Role != "tool" || out[4].ToolCallID != out[3].ToolCalls[0].ID {
		t.Errorf("after the note: %+v, %+v", out[3], out[4])
	}
	if last := out[len(out)-1]; last.Content != msgs[len(msgs)-1].Content {
		t.Errorf("last message changed: %q", last.Content)
	}
}

func TestFitBudgetLowersTheBudgetToTheModelLimit(t *testing.T) {
	msgs := agentConversation(200, 2000)
	const limit = 40000 // 0.85*40000 - 8192 = 25808 tokens at most
	out, rep := FitBudget(msgs, limit, Budget{Tokens: 1 << 20})
	if rep.After > 25808 || estimateAll(out) != rep.After {
		t.Errorf("FitBudget = %d tokens, want at most 25808 (%+v)", rep.After, rep)
	}
	if old, _ := FitContext(msgs, limit); reflect.DeepEqual(old, out) {
		t.Errorf("with a budget FitBudget should cut in its own way, not FitContext's")
	}
	plain, _ := FitBudget(msgs, limit, Budget{})
	if old, _ := FitContext(msgs, limit); !reflect.DeepEqual(plain, old) {
		t.Errorf("without a budget FitBudget must be FitContext")
	}
}
