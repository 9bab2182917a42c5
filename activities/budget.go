package activities

// Price is what a model costs, in USD per million tokens.
type Price struct {
	Prompt     float64 `json:"prompt"`
	Completion float64 `json:"completion"`
}

// Cost is what usage costs at this price.
func (p Price) Cost(u Usage) float64 {
	return (float64(u.PromptTokens)*p.Prompt + float64(u.CompletionTokens)*p.Completion) / 1e6
}

// Total is prompt plus completion tokens.
func (u Usage) Total() int64 { return int64(u.PromptTokens) + int64(u.CompletionTokens) }
