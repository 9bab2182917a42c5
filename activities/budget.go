package activities

// Price is what a model costs, in USD per million tokens.
type Price struct {
	Prompt     float64 `json:"prompt"`
	Completion float64 `json:"completion"`
	// CachedPrompt is the price of prompt tokens served from the
	// provider's prompt cache; 0 means unknown, and they cost Prompt.
	CachedPrompt float64 `json:"cached_prompt,omitempty"`
}

// Cost is what usage costs at this price: cached prompt tokens at
// CachedPrompt, the other prompt tokens at Prompt.
func (p Price) Cost(u Usage) float64 {
	cached := min(max(u.CachedPromptTokens, 0), u.PromptTokens)
	return (float64(u.PromptTokens-cached)*p.Prompt + float64(cached)*p.cachedPrompt() + float64(u.CompletionTokens)*p.Completion) / 1e6
}

// cachedPrompt is the price of a cached prompt token.
func (p Price) cachedPrompt() float64 {
	if p.CachedPrompt > 0 {
		return p.CachedPrompt
	}
	return p.Prompt
}

// Total is prompt plus completion tokens.
func (u Usage) Total() int64 { return int64(u.PromptTokens) + int64(u.CompletionTokens) }
