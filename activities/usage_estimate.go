package activities

import (
	"encoding/json"

	openai "github.com/sashabaranov/go-openai"

	"codeswarm/internal/transcript"
)

// charsPerToken is the rough size of a token in characters, used when the
// server sends no usage.
const charsPerToken = 4

// responseUsage is the usage the server reported for req, or, when it sent
// none (some gateways and mock servers omit it), an estimate from
// characters: the request's messages and tools for the prompt, the answer's
// content and tool-call arguments for the completion. Without it the token
// and cost caps would never bind.
func responseUsage(req openai.ChatCompletionRequest, resp openai.ChatCompletionResponse) Usage {
	if resp.Usage.PromptTokens > 0 || resp.Usage.CompletionTokens > 0 {
		u := Usage{
			PromptTokens:     resp.Usage.PromptTokens,
			CompletionTokens: resp.Usage.CompletionTokens,
		}
		if d := resp.Usage.PromptTokensDetails; d != nil {
			u.CachedPromptTokens = min(max(d.CachedTokens, 0), u.PromptTokens)
		}
		return u
	}
	return EstimateUsage(req, resp.Choices)
}

// EstimateUsage estimates the tokens of req and its answer at ~4 characters
// a token, marked Estimated.
func EstimateUsage(req openai.ChatCompletionRequest, choices []openai.ChatCompletionChoice) Usage {
	prompt := 0
	for _, m := range req.Messages {
		prompt += len(m.Content) + len(m.Role)
		for _, p := range m.MultiContent {
			prompt += len(p.Text)
		}
		for _, tc := range m.ToolCalls {
			prompt += len(tc.Function.Name) + len(tc.Function.Arguments)
		}
	}
	for _, t := range req.Tools {
		if t.Function != nil {
			prompt += len(t.Function.Name) + len(t.Function.Description) + jsonLen(t.Function.Parameters)
		}
	}
	compl := 0
	for _, c := range choices {
		compl += len(c.Message.Content)
		for _, tc := range c.Message.ToolCalls {
			compl += len(tc.Function.Name) + len(tc.Function.Arguments)
		}
	}
	return Usage{
		PromptTokens:     ceilDiv(prompt, charsPerToken),
		CompletionTokens: max(ceilDiv(compl, charsPerToken), 1),
		Estimated:        true,
	}
}

func recUsage(r transcript.Record) Usage {
	return Usage{
		PromptTokens:       r.PromptTokens,
		CompletionTokens:   r.CompletionTokens,
		CachedPromptTokens: r.CachedPromptTokens,
		Estimated:          r.UsageEstimated,
	}
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

func jsonLen(v any) int {
	if v == nil {
		return 0
	}
	b, err := json.Marshal(v)
	if err != nil {
		return 0
	}
	return len(b)
}
