package activities

import (
	"math"
	"testing"

	openai "github.com/sashabaranov/go-openai"
)

func TestPriceCostCountsCachedPromptTokens(t *testing.T) {
	p := Price{Prompt: 2, Completion: 8, CachedPrompt: 0.5}
	// 1M prompt tokens of which 600k cached, 100k completion:
	// 0.4 × 2 + 0.6 × 0.5 + 0.1 × 8 = 1.9.
	u := Usage{PromptTokens: 1_000_000, CompletionTokens: 100_000, CachedPromptTokens: 600_000}
	if got := p.Cost(u); math.Abs(got-1.9) > 1e-9 {
		t.Errorf("cost = %v, want 1.9", got)
	}
	// Without a cached price, cached tokens cost the prompt price.
	if got, want := (Price{Prompt: 2, Completion: 8}).Cost(u), 2.8; math.Abs(got-want) > 1e-9 {
		t.Errorf("cost without a cached price = %v, want %v", got, want)
	}
	// A server that reports more cached than prompt tokens is not believed
	// past the prompt.
	if got, want := p.Cost(Usage{PromptTokens: 100, CachedPromptTokens: 1000}), 100*0.5/1e6; math.Abs(got-want) > 1e-12 {
		t.Errorf("cost with cached > prompt = %v, want %v", got, want)
	}
}

func TestResponseUsageReadsCachedTokens(t *testing.T) {
	resp := openai.ChatCompletionResponse{Usage: openai.Usage{
		PromptTokens: 5000, CompletionTokens: 40,
		PromptTokensDetails: &openai.PromptTokensDetails{CachedTokens: 4096},
	}}
	if got, want := responseUsage(openai.ChatCompletionRequest{}, resp), (Usage{PromptTokens: 5000, CompletionTokens: 40, CachedPromptTokens: 4096}); got != want {
		t.Errorf("usage = %+v, want %+v", got, want)
	}
	resp.Usage.PromptTokensDetails.CachedTokens = 9000
	if got := responseUsage(openai.ChatCompletionRequest{}, resp); got.CachedPromptTokens != 5000 {
		t.Errorf("cached tokens past the prompt = %d, want capped at 5000", got.CachedPromptTokens)
	}
}
