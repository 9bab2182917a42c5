package config

import (
	"encoding/hex"
	"slices"
	"testing"
)

func TestSecretsListsEveryConfiguredSecret(t *testing.T) {
	raw := "0123456789abcdef0123456789abcdef"
	c := &Config{
		LLM:      LLMConfig{APIKey: "sk-live-abc", BaseURL: "https://user:pa55word@proxy.example/v1"},
		Codec:    CodecConfig{Key: " " + hex.EncodeToString([]byte(raw)) + "\n"},
		Embedded: EmbeddedConfig{DBURL: "postgres://temporal:db-pa55@db:5432/temporal"},
	}
	got := c.Secrets()
	want := []string{"sk-live-abc", hex.EncodeToString([]byte(raw)), raw, "pa55word", "db-pa55"}
	if !slices.Equal(got, want) {
		t.Errorf("Secrets() = %q, want %q", got, want)
	}
	if got := (&Config{LLM: LLMConfig{BaseURL: "https://api.openai.com/v1"}}).Secrets(); len(got) != 0 {
		t.Errorf("Secrets() of a config without secrets = %q", got)
	}
}

func TestRedactedMasksTheDatabasePassword(t *testing.T) {
	c := &Config{Embedded: EmbeddedConfig{DBURL: "postgres://temporal:db-pa55@db:5432/temporal?sslmode=disable"}}
	if got, want := c.Redacted().Embedded.DBURL, "postgres://temporal:xxxxx@db:5432/temporal?sslmode=disable"; got != want {
		t.Errorf("Redacted DBURL = %q, want %q", got, want)
	}
}
