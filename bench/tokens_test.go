package bench

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	openai "github.com/sashabaranov/go-openai"

	"codeswarm/config"
	"codeswarm/llm"
	"codeswarm/tools"
)

// TestBenchTokens: the prompt tokens a sub-agent sends per step, at step
// 10, 100 and 1,000 of a 1,000-step agent, with llm.context_tokens at its
// default against 0 (the whole conversation every call, as the in-process
// loop sends it), and how much of each request repeats the previous one
// from its start (what a provider's prefix cache can serve). Requests are
// built as AgentStep builds them (llm.FitBudget over the conversation, the
// tool definitions as overhead); tokens are llm's estimate (3.5 characters
// a token). The conversation is B1's: alternating reads of a 60-line file
// and one-line edits.
func TestBenchTokens(t *testing.T) {
	gate(t)
	const steps = 1000
	defs := tools.Definitions()
	overhead := llm.EstimateToolTokens(defs)
	cfg, err := config.Load(config.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	budget := cfg.LLM.ContextTokens
	msgs := []openai.ChatCompletionMessage{
		{Role: openai.ChatMessageRoleSystem, Content: strings.Repeat("You are a sub-agent of codeswarm working in a git worktree. ", 50)},
		{Role: openai.ChatMessageRoleUser, Content: "Rename helper() to assist() in pkg/util.go and its callers. " + strings.Repeat("Keep the tests green. ", 20)},
	}
	type point struct{ whole, limited, bounded, cachedPct, limitedCachedPct int }
	at := map[int]point{}
	limit := cfg.LLM.ContextLimit
	var prev, prevLimited []openai.ChatCompletionMessage
	var cachedSum, sentSum, wholeSum, limitedSum, limitedCached int
	for step := 1; step <= steps; step++ {
		limited, _ := llm.FitBudget(msgs, limit, llm.Budget{})
		sent, _ := llm.FitBudget(msgs, limit, llm.Budget{Tokens: budget, Overhead: overhead})
		w, l, b := overhead+estimate(msgs), overhead+estimate(limited), overhead+estimate(sent)
		cached := overhead + estimate(sent[:commonPrefix(prev, sent)])
		lc := overhead + estimate(limited[:commonPrefix(prevLimited, limited)])
		prev, prevLimited = sent, limited
		sentSum += b
		wholeSum += w
		limitedSum += l
		cachedSum += cached
		limitedCached += lc
		if step == 10 || step == 100 || step == 1000 {
			at[step] = point{whole: w, limited: l, bounded: b, cachedPct: 100 * cached / b, limitedCachedPct: 100 * lc / l}
		}
		msgs = append(msgs, agentTurn(step)...)
	}
	fmt.Printf("| step | whole conversation | llm.context_tokens 0 (llm.context_limit %d only) | llm.context_tokens %d |\n|---|---|---|---|\n", limit, budget)
	for _, s := range []int{10, 100, 1000} {
		p := at[s]
		fmt.Printf("| %d | %d | %d (%d %% repeated) | %d (%d %% repeated) |\n", s, p.whole, p.limited, p.limitedCachedPct, p.bounded, p.cachedPct)
	}
	fmt.Printf("| sum of %d steps | %d | %d (%d %% repeated) | %d (%d %% repeated) |\n",
		steps, wholeSum, limitedSum, 100*limitedCached/limitedSum, sentSum, 100*cachedSum/sentSum)
	if p := at[1000]; p.bounded > budget {
		t.Errorf("step 1000 sends %d tokens, past llm.context_tokens %d", p.bounded, budget)
	}
	if p := at[1000]; p.whole < 4*p.bounded {
		t.Errorf("the whole conversation at step 1000 is %d tokens, not far above the bounded %d: the bench's conversation is too small to show the bound", p.whole, p.bounded)
	}
	if pct := 100 * cachedSum / sentSum; pct < 90 {
		t.Errorf("only %d %% of the tokens sent repeat the previous request's start; the cuts should keep it above 90 %%", pct)
	}
}

// agentTurn is step n of B1's agent: a read of a 60-line file, or an
// edit, and its result.
func agentTurn(n int) []openai.ChatCompletionMessage {
	path := fmt.Sprintf("pkg/file%03d.go", n%200)
	name, args, result := "edit", fmt.Sprintf(`{"path":%q,"old_string":"helper()","new_string":"assist()"}`, path), "Edited "+path+" (1 replacement)"
	if n%2 == 1 {
		var b strings.Builder
		for i := 1; i <= 60; i++ {
			fmt.Fprintf(&b, "%d\tfunc f%d() int { return helper() + %d } // line of ordinary Go code\n", i, i, i)
		}
		name, args, result = "read", fmt.Sprintf(`{"path":%q}`, path), b.String()
	}
	id := fmt.Sprintf("call_%d_0", n)
	return []openai.ChatCompletionMessage{
		{Role: openai.ChatMessageRoleAssistant, ToolCalls: []openai.ToolCall{{ID: id, Type: openai.ToolTypeFunction, Function: openai.FunctionCall{Name: name, Arguments: args}}}},
		{Role: openai.ChatMessageRoleTool, ToolCallID: id, Name: name, Content: result},
	}
}

func estimate(msgs []openai.ChatCompletionMessage) int {
	n := 0
	for _, m := range msgs {
		n += llm.EstimateMessageTokens(m)
	}
	return n
}

// commonPrefix is how many leading messages b repeats from a, byte for
// byte as sent.
func commonPrefix(a, b []openai.ChatCompletionMessage) int {
	n := 0
	for n < len(a) && n < len(b) {
		x, _ := json.Marshal(a[n])
		y, _ := json.Marshal(b[n])
		if string(x) != string(y) {
			break
		}
		n++
	}
	return n
}
