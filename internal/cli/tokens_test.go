package cli

import (
	"bytes"
	"strings"
	"testing"

	"codeswarm/activities"
	"codeswarm/config"
)

// TestRunBudgetPricesCachedPromptTokens: the cached rate of llm.prices
// (MODEL=PROMPT/COMPLETION/CACHED) reaches the run's budget, whose ledger
// prices every sub-agent's and the planner's usage with it.
func TestRunBudgetPricesCachedPromptTokens(t *testing.T) {
	isolateConfig(t)
	t.Setenv(config.EnvName("llm.model"), "my-model")
	t.Setenv(config.EnvName("llm.planner_model"), "gpt-4.1-mini")
	t.Setenv(config.EnvName("llm.prices"), "my-model=2/8/0.5")
	cfg, err := config.Load(config.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := runBudget(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if want := (activities.Price{Prompt: 2, Completion: 8, CachedPrompt: 0.5}); b.Price != want {
		t.Errorf("sub-agent price = %+v, want %+v", b.Price, want)
	}
	// The built-in table carries cached rates too.
	if b.PlannerPrice.CachedPrompt <= 0 || b.PlannerPrice.CachedPrompt >= b.PlannerPrice.Prompt {
		t.Errorf("planner price = %+v, want a cached rate below the prompt rate", b.PlannerPrice)
	}
	u := activities.Usage{PromptTokens: 1_000_000, CachedPromptTokens: 1_000_000}
	if got := b.Price.Cost(u); got != 0.5 {
		t.Errorf("a million cached prompt tokens cost $%v, want $0.5", got)
	}
}

func TestSummaryShowsCachedPromptTokens(t *testing.T) {
	var out bytes.Buffer
	r := activities.SwarmResult{RunID: "r", Success: true, Stats: activities.Stats{PromptTokens: 5000, CompletionTokens: 40, CachedPromptTokens: 4096}}
	printSummary(IO{Out: &out, Err: &out}, r)
	if want := "5000+40 tokens (4096 prompt tokens from the provider's cache)"; !strings.Contains(out.String(), want) {
		t.Errorf("summary lacks %q:\n%s", want, out.String())
	}
	out.Reset()
	r.Stats.CachedPromptTokens = 0
	printSummary(IO{Out: &out, Err: &out}, r)
	if strings.Contains(out.String(), "cache)") {
		t.Errorf("summary mentions the provider's cache with none used:\n%s", out.String())
	}
}
