package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// validConfig is the defaults, with paths filled as Load would.
func validConfig(t *testing.T) Config {
	t.Helper()
	isolate(t)
	c, err := Load(LoadOptions{})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return *c
}

func TestValidateNamesKeyAndValue(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"address", func(c *Config) { c.Temporal.Address = "no-port" }, `temporal.address: "no-port" is not host:port, e.g. "127.0.0.1:7233"`},
		{"namespace", func(c *Config) { c.Temporal.Namespace = "" }, `temporal.namespace: "" must not be empty`},
		{"task queue", func(c *Config) { c.Temporal.TaskQueue = " " }, `temporal.task_queue: " " must not be empty`},
		{"db path", func(c *Config) { c.Embedded.DBPath = "" }, `embedded.db_path: "" must not be empty`},
		{"db url scheme", func(c *Config) { c.Embedded.DBURL = "mysql://u:pw1@h/db" }, `embedded.db_url: "mysql://u:xxxxx@h/db" is not a PostgreSQL URL: want postgres://user:password@host:port/database`},
		{"db url no db", func(c *Config) { c.Embedded.DBURL = "postgres://u:pw1@h:5432" }, `embedded.db_url: "postgres://u:xxxxx@h:5432" is not a PostgreSQL URL: want postgres://user:password@host:port/database (no database name)`},
		{"db url no user", func(c *Config) { c.Embedded.DBURL = "postgres://h/db" }, `embedded.db_url: "postgres://h/db" is not a PostgreSQL URL: want postgres://user:password@host:port/database (no user)`},
		{"db url unparsable", func(c *Config) { c.Embedded.DBURL = "postgres://u:pw1@h:x/db" }, `embedded.db_url: "***" is not a PostgreSQL URL: want postgres://user:password@host:port/database`},
		{"ip", func(c *Config) { c.Embedded.IP = "host.example" }, `embedded.ip: "host.example" is not an IP address, e.g. "127.0.0.1"`},
		{"port low", func(c *Config) { c.Embedded.Port = 0 }, "embedded.port: 0 is not a port in 1..65535"},
		{"ui port high", func(c *Config) { c.Embedded.UIPort = 70000 }, "embedded.ui_port: 70000 is not a port in 1..65535"},
		{"ports equal", func(c *Config) { c.Embedded.UIPort = c.Embedded.Port }, "embedded.ui_port: 7233 must differ from embedded.port"},
		{"base url scheme", func(c *Config) { c.LLM.BaseURL = "ftp://x/v1" }, `llm.base_url: "ftp://x/v1" is not an http(s) URL`},
		{"base url no host", func(c *Config) { c.LLM.BaseURL = "localhost:8080" }, `llm.base_url: "localhost:8080" is not an http(s) URL`},
		{"model", func(c *Config) { c.LLM.Model = "" }, `llm.model: "" must not be empty`},
		{"llm concurrency", func(c *Config) { c.LLM.MaxConcurrent = 0 }, "llm.max_concurrent: 0 must be at least 1"},
		{"rps", func(c *Config) { c.LLM.RequestsPerSecond = -1 }, "llm.requests_per_second: -1 must be 0 (no limit) or more"},
		{"llm timeout", func(c *Config) { c.LLM.Timeout = 0 }, "llm.timeout: 0s must be greater than 0"},
		{"context limit", func(c *Config) { c.LLM.ContextLimit = 0 }, "llm.context_limit: 0 must be at least 1"},
		{"temperature", func(c *Config) { c.LLM.Temperature = 2.5 }, "llm.temperature: 2.5 is not in 0..2"},
		{"max tokens", func(c *Config) { c.LLM.MaxTokens = 0 }, "llm.max_tokens: 0 must be at least 1"},
		{"reasoning", func(c *Config) { c.LLM.Reasoning = "yes" }, `llm.reasoning: "yes" is not one of auto, on, off`},
		{"subagents", func(c *Config) { c.Swarm.MaxSubagents = 0 }, "swarm.max_subagents: 0 must be at least 1"},
		{"swarm concurrency", func(c *Config) { c.Swarm.MaxConcurrent = -2 }, "swarm.max_concurrent: -2 must be at least 1"},
		{"steps", func(c *Config) { c.Swarm.MaxStepsPerSubagent = 0 }, "swarm.max_steps_per_subagent: 0 must be at least 1"},
		{"total steps", func(c *Config) { c.Swarm.MaxTotalSteps = 0 }, "swarm.max_total_steps: 0 must be at least 1"},
		{"subagent timeout", func(c *Config) { c.Swarm.SubagentTimeout = -time.Second }, "swarm.subagent_timeout: -1s must be greater than 0"},
		{"retries", func(c *Config) { c.Swarm.MaxRetries = -1 }, "swarm.max_retries: -1 must be at least 0"},
		{"strategy", func(c *Config) { c.Swarm.Strategy = "foo" }, `swarm.strategy: "foo" is not one of automatic, by_domain, by_data, by_stage, none`},
		{"workspace", func(c *Config) { c.Workspace.Root = "" }, `workspace.root: "" must not be empty`},
		{"host", func(c *Config) { c.Workspace.Host = "my host/1" }, `workspace.host: "my host/1" must be letters, digits, '.', '_' or '-', starting with a letter or digit`},
		{"branch prefix empty", func(c *Config) { c.Git.BranchPrefix = "" }, `git.branch_prefix: "" must not be empty`},
		{"branch prefix bad", func(c *Config) { c.Git.BranchPrefix = "a b" }, `git.branch_prefix: "a b" is not a valid git branch name prefix`},
		{"verify mode", func(c *Config) { c.Verify.Mode = "always" }, `verify.mode: "always" is not one of end, each`},
		{"bash timeout", func(c *Config) { c.Tools.Bash.Timeout = 0 }, "tools.bash.timeout: 0s must be greater than 0"},
		{"bash max timeout", func(c *Config) { c.Tools.Bash.MaxTimeout = time.Minute },
			"tools.bash.max_timeout: 1m0s must be at least tools.bash.timeout (2m0s)"},
		{"bash output", func(c *Config) { c.Tools.Bash.MaxOutputBytes = 0 }, "tools.bash.max_output_bytes: 0 must be at least 1"},
		{"share value cap", func(c *Config) { c.Tools.Share.MaxValueBytes = 0 }, "tools.share.max_value_bytes: 0 must be between 1 and 524288"},
		{"share value cap too big", func(c *Config) { c.Tools.Share.MaxValueBytes = 1 << 20 }, "tools.share.max_value_bytes: 1048576 must be between 1 and 524288"},
		{"share total cap", func(c *Config) { c.Tools.Share.MaxTotalBytes = 0 }, "tools.share.max_total_bytes: 0 must be between 1 and 524288"},
		{"share total cap too big", func(c *Config) { c.Tools.Share.MaxTotalBytes = 1 << 20 }, "tools.share.max_total_bytes: 1048576 must be between 1 and 524288"},
		{"share value over total", func(c *Config) { c.Tools.Share.MaxTotalBytes = 8192 },
			"tools.share.max_value_bytes: 16384 must be at most tools.share.max_total_bytes (8192)"},
		{"sandbox", func(c *Config) { c.Tools.Sandbox = "maybe" }, `tools.sandbox: "maybe" is not one of on, off`},
		{"bash network", func(c *Config) { c.Tools.Bash.Network = "yes" }, `tools.bash.network: "yes" is not one of off, on`},
		{"env passthrough", func(c *Config) { c.Tools.Bash.EnvPassthrough = []string{"GOFLAGS", "A=B"} },
			`tools.bash.env_passthrough: "A=B" is not an environment variable name (letters, digits and _, not starting with a digit)`},
		{"log level", func(c *Config) { c.Log.Level = "loud" }, `log.level: "loud" is not one of debug, info, warn, error`},
		{"log format", func(c *Config) { c.Log.Format = "xml" }, `log.format: "xml" is not one of console, json`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig(t)
			tt.mutate(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate succeeded, want error")
			}
			if err.Error() != tt.want {
				t.Errorf("error = %q\n want %q", err, tt.want)
			}
			var ke *KeyError
			if !errors.As(err, &ke) {
				t.Errorf("error %q is not a *KeyError", err)
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
	}{
		{"defaults", func(*Config) {}},
		{"host:port", func(c *Config) { c.Temporal.Address = "temporal.internal:7233" }},
		{"ipv6 address", func(c *Config) { c.Temporal.Address = "[::1]:7233" }},
		{"grpc target", func(c *Config) { c.Temporal.Address = "dns:///temporal:7233" }},
		{"http base url", func(c *Config) { c.LLM.BaseURL = "http://127.0.0.1:11434/v1" }},
		{"zero retries", func(c *Config) { c.Swarm.MaxRetries = 0 }},
		{"nested branch prefix", func(c *Config) { c.Git.BranchPrefix = "team/codeswarm" }},
		{"each mode", func(c *Config) { c.Verify.Mode = "each" }},
		{"json debug", func(c *Config) { c.Log = LogConfig{Level: "debug", Format: "json"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig(t)
			tt.mutate(&c)
			if err := c.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
	for _, s := range Strategies() {
		c := validConfig(t)
		c.Swarm.Strategy = s
		if err := c.Validate(); err != nil {
			t.Errorf("strategy %q: %v", s, err)
		}
	}
}

func TestValidateJoinsAllProblems(t *testing.T) {
	c := validConfig(t)
	c.Swarm.Strategy = "foo"
	c.Log.Level = "loud"
	c.Embedded.Port = -1

	err := c.Validate()
	for _, key := range []string{"swarm.strategy", "log.level", "embedded.port"} {
		if err == nil || !strings.Contains(err.Error(), key+":") {
			t.Errorf("error %v does not mention %s", err, key)
		}
	}
}

func TestKeyErrorHidesAPIKey(t *testing.T) {
	err := &KeyError{Key: "llm.api_key", Value: "sk-secret", Problem: "is not a valid string"}
	if strings.Contains(err.Error(), "sk-secret") {
		t.Errorf("error %q shows the API key", err)
	}
}

func TestRedacted(t *testing.T) {
	tests := []struct {
		name, key, baseURL string
		wantKey, wantURL   string
	}{
		{"key set", "sk-secret", "https://api.openai.com/v1", "***", "https://api.openai.com/v1"},
		{"key empty", "", "https://api.openai.com/v1", "", "https://api.openai.com/v1"},
		{"password in url", "", "https://u:pw@proxy/v1", "", "https://u:xxxxx@proxy/v1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{LLM: LLMConfig{APIKey: tt.key, BaseURL: tt.baseURL, Model: "m"}}
			r := c.Redacted()
			if r.LLM.APIKey != tt.wantKey || r.LLM.BaseURL != tt.wantURL {
				t.Errorf("Redacted LLM = %+v, want key %q url %q", r.LLM, tt.wantKey, tt.wantURL)
			}
			if c.LLM.APIKey != tt.key || c.LLM.BaseURL != tt.baseURL {
				t.Errorf("original changed: %+v", c.LLM)
			}
			if r.LLM.Model != "m" {
				t.Errorf("Redacted lost other fields: %+v", r.LLM)
			}
		})
	}
}
