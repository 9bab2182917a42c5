package config

import (
	"strings"
	"testing"
)

func TestPriceOf(t *testing.T) {
	c := &Config{LLM: LLMConfig{Prices: []string{"my-model=0.5/1.5", "gpt-4o=3/12", "cached-model=1/2/0.25"}}}
	for _, tc := range []struct {
		model string
		want  Price
		ok    bool
	}{
		{"gpt-4.1", Price{2, 8, 0.5}, true},
		{"gpt-4o", Price{3, 12, 3}, true},                         // overridden; no cached price: the prompt price
		{"gpt-4o-mini-2024-07-18", Price{0.15, 0.6, 0.075}, true}, // longest prefix, not gpt-4o
		{"openai/gpt-4.1-mini", Price{0.4, 1.6, 0.1}, true},       // a gateway's provider prefix
		{"claude-sonnet-4-20250514", Price{3, 15, 0.3}, true},
		{"my-model", Price{0.5, 1.5, 0.5}, true}, // unknown cached price: the prompt price
		{"cached-model", Price{1, 2, 0.25}, true},
		{"llama-3-70b", Price{}, false},
		{"gpt-4", Price{}, false}, // not a prefix of a dash-separated known name
	} {
		got, ok := c.PriceOf(tc.model)
		if ok != tc.ok || got != tc.want {
			t.Errorf("PriceOf(%q) = %v, %v; want %v, %v", tc.model, got, ok, tc.want, tc.ok)
		}
	}
}

func TestBudgetKeysValidate(t *testing.T) {
	t.Setenv("CODESWARM_SWARM_MAX_TOKENS", "-1")
	t.Setenv("CODESWARM_SWARM_MAX_COST_USD", "-0.5")
	t.Setenv("CODESWARM_LLM_PRICES", "ok=1/2,ok2=1/2/0.5,broken=1")
	_, err := Load(LoadOptions{})
	if err == nil {
		t.Fatal("negative budgets and a broken price were accepted")
	}
	for _, want := range []string{"swarm.max_tokens: -1 must be at least 0", "swarm.max_cost_usd: -0.5 must be 0 (no limit) or more",
		`llm.prices: "broken=1" is invalid`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestBudgetKeysLoad(t *testing.T) {
	t.Setenv("CODESWARM_SWARM_MAX_TOKENS", "200000")
	t.Setenv("CODESWARM_SWARM_MAX_COST_USD", "2.5")
	t.Setenv("CODESWARM_LLM_PRICES", "gpt-4.1=1/4")
	c, err := Load(LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := c.PriceOf("gpt-4.1"); c.Swarm.MaxTokens != 200000 || c.Swarm.MaxCostUSD != 2.5 || p != (Price{1, 4, 1}) {
		t.Errorf("max_tokens=%d max_cost_usd=%g gpt-4.1=%v", c.Swarm.MaxTokens, c.Swarm.MaxCostUSD, p)
	}
}

func TestParsePriceCachedRate(t *testing.T) {
	for entry, want := range map[string]Price{"m=1/2": {1, 2, 1}, "m=1/2/0.1": {1, 2, 0.1}, " m = 1 / 2 / 0 ": {1, 2, 0}} {
		if _, got, err := parsePrice(entry); err != nil || got != want {
			t.Errorf("parsePrice(%q) = %v, %v; want %v", entry, got, err, want)
		}
	}
	for _, bad := range []string{"m=1/2/3/4", "m=1/2/-1", "m=1/2/x"} {
		if _, _, err := parsePrice(bad); err == nil {
			t.Errorf("parsePrice(%q) accepted", bad)
		}
	}
}
