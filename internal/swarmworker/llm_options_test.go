package swarmworker

import (
	"testing"

	"codeswarm/config"
)

// The llm.* sampling keys reach the client, including a temperature of 0
// (which must be sent, not treated as unset).
func TestLLMOptionsCarrySampling(t *testing.T) {
	opts := llmOptions(config.LLMConfig{BaseURL: "http://x/v1", Temperature: 0, MaxTokens: 2048, Reasoning: "on"}, nil)
	s := opts.Sampling
	if s.Temperature == nil || *s.Temperature != 0 || s.MaxTokens != 2048 || s.Reasoning != "on" || opts.BaseURL != "http://x/v1" {
		t.Fatalf("options = %+v, sampling %+v", opts, s)
	}
}
