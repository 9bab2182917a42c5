package config

import (
	"strings"
	"testing"
)

func TestTable(t *testing.T) {
	docs := Table()
	keys := Keys()
	if len(docs) != len(keys) {
		t.Fatalf("Table has %d rows, Keys has %d", len(docs), len(keys))
	}
	byKey := map[string]KeyDoc{}
	for i, d := range docs {
		if d.Key != keys[i] {
			t.Errorf("row %d is %q, want %q (sorted like Keys)", i, d.Key, keys[i])
		}
		if d.Description == "" {
			t.Errorf("%s has no description", d.Key)
		}
		if !strings.HasPrefix(d.Env, EnvName(d.Key)) {
			t.Errorf("%s env %q does not start with %s", d.Key, d.Env, EnvName(d.Key))
		}
		byKey[d.Key] = d
	}
	tests := []struct{ key, def, env string }{
		{"llm.timeout", "5m", "CODESWARM_LLM_TIMEOUT"},
		{"tools.bash.timeout", "2m", "CODESWARM_TOOLS_BASH_TIMEOUT"},
		{"swarm.max_concurrent", "4", "CODESWARM_SWARM_MAX_CONCURRENT"},
		{"git.auto_merge", "true", "CODESWARM_GIT_AUTO_MERGE"},
		{"llm.requests_per_second", "0", "CODESWARM_LLM_REQUESTS_PER_SECOND"},
		{"temporal.address", "", "CODESWARM_TEMPORAL_ADDRESS, TEMPORAL_ADDRESS"},
		{"llm.api_key", "", "CODESWARM_LLM_API_KEY, OPENAI_API_KEY"},
		{"embedded.db_path", "$XDG_STATE_HOME/codeswarm/temporal.db", "CODESWARM_EMBEDDED_DB_PATH"},
	}
	for _, tt := range tests {
		d := byKey[tt.key]
		if d.Default != tt.def || d.Env != tt.env {
			t.Errorf("%s = default %q env %q, want %q %q", tt.key, d.Default, d.Env, tt.def, tt.env)
		}
	}
}

func TestClosest(t *testing.T) {
	known := Keys()
	tests := []struct{ in, want string }{
		{"swarm.max_subagent", "swarm.max_subagents"},
		{"log.levl", "log.level"},
		{"llm.modle", "llm.model"},
		{"completely.different", ""},
	}
	for _, tt := range tests {
		if got := closest(known, tt.in); got != tt.want {
			t.Errorf("closest(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
