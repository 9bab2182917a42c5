package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Price is what a model costs, in USD per million tokens.
type Price struct {
	Prompt     float64
	Completion float64
	// CachedPrompt is the price of prompt tokens the provider serves from
	// its prompt cache. PriceOf never returns 0 for it when Prompt is not
	// 0: a model without a known cached rate costs Prompt for them.
	CachedPrompt float64
}

// PricesDate is when the built-in list prices were taken from the
// providers' price pages; the README says so next to the table.
const PricesDate = "2025-11"

// defaultPrices are list prices (USD per million tokens, standard tier) of
// common models: prompt, completion, and cached prompt (cached input) where
// the provider lists one for its automatic prefix caching (OpenAI), or its
// cache-read price (Anthropic, which caches only what a request marks).
var defaultPrices = map[string]Price{
	"gpt-4o":            {2.50, 10.00, 1.25},
	"gpt-4o-mini":       {0.15, 0.60, 0.075},
	"gpt-4.1":           {2.00, 8.00, 0.50},
	"gpt-4.1-mini":      {0.40, 1.60, 0.10},
	"gpt-4.1-nano":      {0.10, 0.40, 0.025},
	"o3":                {2.00, 8.00, 0.50},
	"o3-mini":           {1.10, 4.40, 0.55},
	"o4-mini":           {1.10, 4.40, 0.275},
	"gpt-5":             {1.25, 10.00, 0.125},
	"gpt-5-mini":        {0.25, 2.00, 0.025},
	"gpt-5-nano":        {0.05, 0.40, 0.005},
	"claude-sonnet-4":   {3.00, 15.00, 0.30},
	"claude-sonnet-4-5": {3.00, 15.00, 0.30},
	"claude-3-7-sonnet": {3.00, 15.00, 0.30},
	"claude-3-5-haiku":  {0.80, 4.00, 0.08},
	"claude-haiku-4-5":  {1.00, 5.00, 0.10},
	"claude-opus-4":     {15.00, 75.00, 1.50},
	"claude-opus-4-1":   {15.00, 75.00, 1.50},
	"claude-opus-4-5":   {5.00, 25.00, 0.50},
}

// DefaultPrices lists the built-in prices as llm.prices entries, sorted.
func DefaultPrices() []string {
	out := make([]string, 0, len(defaultPrices))
	for m, p := range defaultPrices {
		out = append(out, formatPrice(m, p))
	}
	slices.Sort(out)
	return out
}

func formatPrice(model string, p Price) string {
	s := model + "=" + strconv.FormatFloat(p.Prompt, 'f', -1, 64) + "/" + strconv.FormatFloat(p.Completion, 'f', -1, 64)
	if p.CachedPrompt > 0 {
		s += "/" + strconv.FormatFloat(p.CachedPrompt, 'f', -1, 64)
	}
	return s
}

// parsePrice reads one llm.prices entry: MODEL=PROMPT/COMPLETION[/CACHED],
// USD per million tokens; without CACHED, cached prompt tokens cost PROMPT.
// (A list of entries rather than a YAML map: model names such as gpt-4.1
// hold dots, which config keys split on.)
func parsePrice(entry string) (string, Price, error) {
	model, rest, ok := strings.Cut(strings.TrimSpace(entry), "=")
	parts := strings.Split(rest, "/")
	if !ok || len(parts) < 2 || len(parts) > 3 || strings.TrimSpace(model) == "" {
		return "", Price{}, fmt.Errorf("%q is not MODEL=PROMPT/COMPLETION[/CACHED] (USD per million tokens, e.g. gpt-4o=2.5/10 or gpt-4o=2.5/10/1.25)", entry)
	}
	var nums [3]float64
	for i, part := range parts {
		v, err := strconv.ParseFloat(strings.TrimSpace(part), 64)
		if err != nil || v < 0 {
			return "", Price{}, fmt.Errorf("%q: prices must be numbers of at least 0 (USD per million tokens)", entry)
		}
		nums[i] = v
	}
	p := Price{Prompt: nums[0], Completion: nums[1], CachedPrompt: nums[2]}
	if len(parts) == 2 {
		p.CachedPrompt = p.Prompt
	}
	return strings.TrimSpace(model), p, nil
}

// PriceOf returns the price of model: an llm.prices entry first, then the
// built-in table. Its CachedPrompt is the table's or the entry's, else
// Prompt. A name matches exactly, or by its longest known prefix
// (gpt-4o-2024-08-06 is priced as gpt-4o), with or without a gateway's
// "provider/" prefix.
func (c *Config) PriceOf(model string) (Price, bool) {
	table := map[string]Price{}
	for m, p := range defaultPrices {
		table[m] = p
	}
	for _, e := range c.LLM.Prices {
		if m, p, err := parsePrice(e); err == nil {
			table[m] = p
		}
	}
	for _, name := range []string{model, model[strings.LastIndex(model, "/")+1:]} {
		if p, ok := table[name]; ok {
			return p.withCached(), true
		}
	}
	p, ok := longestPrefix(table, model[strings.LastIndex(model, "/")+1:])
	return p.withCached(), ok
}

// withCached fills an unknown cached prompt price with the prompt price.
func (p Price) withCached() Price {
	if p.CachedPrompt == 0 {
		p.CachedPrompt = p.Prompt
	}
	return p
}

func longestPrefix(table map[string]Price, model string) (Price, bool) {
	best, found := "", false
	for m := range table {
		if strings.HasPrefix(model, m+"-") && len(m) > len(best) {
			best, found = m, true
		}
	}
	return table[best], found
}

// checkPrices validates every llm.prices entry.
func (c *Config) checkPrices() error {
	for _, e := range c.LLM.Prices {
		if _, _, err := parsePrice(e); err != nil {
			return &KeyError{Key: "llm.prices", Value: e, Problem: "is invalid: " + err.Error()}
		}
	}
	return nil
}
