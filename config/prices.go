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
}

// PricesDate is when the built-in list prices were taken from the
// providers' price pages; the README says so next to the table.
const PricesDate = "2025-11"

// defaultPrices are list prices (USD per million tokens, standard tier, no
// cache discount) of common models. Models reached through a compatible
// gateway under another name need an llm.prices entry.
var defaultPrices = map[string]Price{
	"gpt-4o":            {2.50, 10.00},
	"gpt-4o-mini":       {0.15, 0.60},
	"gpt-4.1":           {2.00, 8.00},
	"gpt-4.1-mini":      {0.40, 1.60},
	"gpt-4.1-nano":      {0.10, 0.40},
	"o3":                {2.00, 8.00},
	"o3-mini":           {1.10, 4.40},
	"o4-mini":           {1.10, 4.40},
	"gpt-5":             {1.25, 10.00},
	"gpt-5-mini":        {0.25, 2.00},
	"gpt-5-nano":        {0.05, 0.40},
	"claude-sonnet-4":   {3.00, 15.00},
	"claude-sonnet-4-5": {3.00, 15.00},
	"claude-3-7-sonnet": {3.00, 15.00},
	"claude-3-5-haiku":  {0.80, 4.00},
	"claude-haiku-4-5":  {1.00, 5.00},
	"claude-opus-4":     {15.00, 75.00},
	"claude-opus-4-1":   {15.00, 75.00},
	"claude-opus-4-5":   {5.00, 25.00},
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
	return model + "=" + strconv.FormatFloat(p.Prompt, 'f', -1, 64) + "/" + strconv.FormatFloat(p.Completion, 'f', -1, 64)
}

// parsePrice reads one llm.prices entry: MODEL=PROMPT/COMPLETION, USD per
// million tokens. (A list of entries rather than a YAML map: model names
// such as gpt-4.1 hold dots, which config keys split on.)
func parsePrice(entry string) (string, Price, error) {
	model, rest, ok := strings.Cut(strings.TrimSpace(entry), "=")
	prompt, completion, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 || strings.TrimSpace(model) == "" {
		return "", Price{}, fmt.Errorf("%q is not MODEL=PROMPT/COMPLETION (USD per million tokens, e.g. gpt-4o=2.5/10)", entry)
	}
	p, err1 := strconv.ParseFloat(strings.TrimSpace(prompt), 64)
	c, err2 := strconv.ParseFloat(strings.TrimSpace(completion), 64)
	if err1 != nil || err2 != nil || p < 0 || c < 0 {
		return "", Price{}, fmt.Errorf("%q: prices must be numbers of at least 0 (USD per million tokens)", entry)
	}
	return strings.TrimSpace(model), Price{p, c}, nil
}

// PriceOf returns the price of model: an llm.prices entry first, then the
// built-in table. A name matches exactly, or by its longest known prefix
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
			return p, true
		}
	}
	return longestPrefix(table, model[strings.LastIndex(model, "/")+1:])
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
