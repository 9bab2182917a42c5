package config

import (
	"encoding/hex"
	"slices"
	"testing"
)

func TestSecretsListsEveryConfiguredSecret(t *testing.T) {
	raw := "0123456789abcdef0123456789abcdef"
	c := &Config{
		LLM:   LLMConfig{APIKey: "sk-live-abc", BaseURL: "https://user:pa55word@proxy.example/v1"},
		Codec: CodecConfig{Key: " " + hex.EncodeToString([]byte(raw)) + "\n"},
	}
	got := c.Secrets()
	want := []string{"sk-live-abc", hex.EncodeToString([]byte(raw)), raw, "pa55word"}
	if !slices.Equal(got, want) {
		t.Errorf("Secrets() = %q, want %q", got, want)
	}
	if got := (&Config{LLM: LLMConfig{BaseURL: "https://api.openai.com/v1"}}).Secrets(); len(got) != 0 {
		t.Errorf("Secrets() of a config without secrets = %q", got)
	}
}
