// Package config loads codeswarm's single typed Config from defaults, an
// optional YAML file, environment variables and command-line flags, and
// builds the zap logger every binary injects into its collaborators.
package config

import (
	"net/url"
	"strings"
	"time"

	"codeswarm/internal/codec"
)

// Config is every setting codeswarm reads. Load fills it; Validate checks it.
type Config struct {
	Temporal  TemporalConfig  `mapstructure:"temporal"`
	Embedded  EmbeddedConfig  `mapstructure:"embedded"`
	LLM       LLMConfig       `mapstructure:"llm"`
	Swarm     SwarmConfig     `mapstructure:"swarm"`
	Workspace WorkspaceConfig `mapstructure:"workspace"`
	Git       GitConfig       `mapstructure:"git"`
	Verify    VerifyConfig    `mapstructure:"verify"`
	Tools     ToolsConfig     `mapstructure:"tools"`
	Log       LogConfig       `mapstructure:"log"`
	Codec     CodecConfig     `mapstructure:"codec"`
	Watch     WatchConfig     `mapstructure:"watch"`
	Worker    WorkerConfig    `mapstructure:"worker"`
	Cache     CacheConfig     `mapstructure:"cache"`
	// File is the config file Load read ("" when none); the bash sandbox
	// hides it from model-run commands.
	File string `mapstructure:"-"`
}

// WorkerConfig opts the workers into Temporal's Worker Versioning.
type WorkerConfig struct {
	// Deployment is the worker deployment's name; "" leaves the workers
	// unversioned.
	Deployment string `mapstructure:"deployment"`
	// BuildID names this build within Deployment; "" derives one from the
	// binary (see swarmworker.BuildID).
	BuildID string `mapstructure:"build_id"`
}

// CacheConfig is the result cache (activities.ResultCache).
type CacheConfig struct {
	// Enabled turns it on: hits reuse a finished sub-agent's commit or a
	// planner's answer instead of calling the model.
	Enabled bool `mapstructure:"enabled"`
	// MaxEntries is how many entries of each kind it keeps.
	MaxEntries int `mapstructure:"max_entries"`
}

// WatchConfig tunes what watch and status show.
type WatchConfig struct {
	// SlowCallAfter flags a sub-agent's current call (model or tool) that
	// has run longer than this.
	SlowCallAfter time.Duration `mapstructure:"slow_call_after"`
}

// CodecConfig turns on payload encryption: with a key, every payload stored
// in Temporal (inputs, results, activity arguments) is AES-256-GCM encrypted.
type CodecConfig struct {
	// Key is a secret (32 bytes, base64 or hex); "" stores payloads in clear.
	Key string `mapstructure:"key"`
	// Port serves the codec endpoint the Web UI uses to show payloads decoded.
	Port int `mapstructure:"port"`
}

// TemporalConfig says which Temporal service to use.
type TemporalConfig struct {
	// Address is host:port of the frontend; "" means auto: use
	// 127.0.0.1:7233 when something listens there, else the embedded server.
	Address   string `mapstructure:"address"`
	Namespace string `mapstructure:"namespace"`
	TaskQueue string `mapstructure:"task_queue"`
}

// EmbeddedConfig configures the in-process Temporal server and its Web UI.
type EmbeddedConfig struct {
	DBPath string `mapstructure:"db_path"`
	// DBURL is a PostgreSQL URL that replaces DBPath; its password is a
	// secret (Secrets, Redacted).
	DBURL  string `mapstructure:"db_url"`
	IP     string `mapstructure:"ip"`
	Port   int    `mapstructure:"port"`
	UIPort int    `mapstructure:"ui_port"`
}

// LLMConfig configures the OpenAI-compatible Chat Completions endpoint.
type LLMConfig struct {
	BaseURL string `mapstructure:"base_url"`
	// APIKey is a secret: log Config.Redacted(), never the Config itself.
	APIKey string `mapstructure:"api_key"`
	Model  string `mapstructure:"model"`
	// PlannerModel is the model for the planning call; Load replaces ""
	// with Model, so consumers can use it as is.
	PlannerModel  string `mapstructure:"planner_model"`
	MaxConcurrent int    `mapstructure:"max_concurrent"`
	// FairShare makes runs take turns at this worker's LLM slots.
	FairShare         bool          `mapstructure:"fair_share"`
	RequestsPerSecond float64       `mapstructure:"requests_per_second"`
	Timeout           time.Duration `mapstructure:"timeout"`
	// ContextLimit is the model's context window in tokens.
	ContextLimit int `mapstructure:"context_limit"`
	// ContextTokens is the most tokens a sub-agent's conversation carries
	// per call (llm.FitBudget); 0: only ContextLimit bounds it.
	ContextTokens int `mapstructure:"context_tokens"`
	// Temperature and MaxTokens are sent with every request, in the form
	// the model accepts (see Reasoning).
	Temperature float64 `mapstructure:"temperature"`
	MaxTokens   int     `mapstructure:"max_tokens"`
	// Reasoning is auto, on or off: whether requests take the form of
	// reasoning models (no temperature, max_completion_tokens).
	Reasoning string `mapstructure:"reasoning"`
	// Prices are MODEL=PROMPT/COMPLETION[/CACHED] entries (USD per million tokens)
	// over the built-in table; PriceOf looks a model up.
	Prices []string `mapstructure:"prices"`
}

// SwarmConfig bounds how a run fans out into sub-agents.
type SwarmConfig struct {
	MaxSubagents        int           `mapstructure:"max_subagents"`
	MaxConcurrent       int           `mapstructure:"max_concurrent"`
	MaxStepsPerSubagent int           `mapstructure:"max_steps_per_subagent"`
	MaxTotalSteps       int           `mapstructure:"max_total_steps"`
	SubagentTimeout     time.Duration `mapstructure:"subagent_timeout"`
	MaxRetries          int           `mapstructure:"max_retries"`
	// MaxTokens and MaxCostUSD cap the whole run's spend, the PerSubagent
	// ones each sub-agent's; 0 means no cap.
	MaxTokens             int     `mapstructure:"max_tokens"`
	MaxCostUSD            float64 `mapstructure:"max_cost_usd"`
	MaxTokensPerSubagent  int     `mapstructure:"max_tokens_per_subagent"`
	MaxCostUSDPerSubagent float64 `mapstructure:"max_cost_usd_per_subagent"`
	// Strategy is one of Strategies().
	Strategy string `mapstructure:"strategy"`
}

// WorkspaceConfig says where per-run worktrees live.
type WorkspaceConfig struct {
	Root string `mapstructure:"root"`
	Host string `mapstructure:"host"`
	// HostLostAfter is how long a host's queue may go unpolled before runs
	// on it say they wait for it.
	HostLostAfter time.Duration `mapstructure:"host_lost_after"`
	// AutoMoveAfter moves a run off a host lost this long when exactly
	// one other host is alive; 0 never moves.
	AutoMoveAfter time.Duration `mapstructure:"auto_move_after"`
}

// GitConfig controls how sub-agent branches are merged back.
type GitConfig struct {
	AutoMerge        bool   `mapstructure:"auto_merge"`
	ResolveConflicts bool   `mapstructure:"resolve_conflicts"`
	BranchPrefix     string `mapstructure:"branch_prefix"`
}

// VerifyConfig is the optional check command run against the result.
type VerifyConfig struct {
	// Command is run with bash in the worktree; "" disables verification.
	Command string `mapstructure:"command"`
	// Mode is "end" (once, after merging) or "each" (after every subtask).
	Mode string `mapstructure:"mode"`
}

// ToolsConfig configures the tools offered to sub-agents.
type ToolsConfig struct {
	Bash  BashConfig  `mapstructure:"bash"`
	Share ShareConfig `mapstructure:"share"`
	// Sandbox is "on" (bubblewrap confines every model-chosen command) or
	// "off" (unconfined; only ever by explicit choice).
	Sandbox string `mapstructure:"sandbox"`
	// MaxFileBytes caps a file the file tools read into the worker (read,
	// write, edit, multiedit).
	MaxFileBytes int `mapstructure:"max_file_bytes"`
}

// ShareConfig limits the swarm_share tool.
type ShareConfig struct {
	// MaxValueBytes caps a published value: values live in the run's history.
	MaxValueBytes int `mapstructure:"max_value_bytes"`
	// MaxKeys caps the distinct keys one run may publish.
	MaxKeys int `mapstructure:"max_keys"`
	// MaxTotalBytes caps the keys, values and tags one run's sub-agents
	// publish together: the store is carried across hand-overs.
	MaxTotalBytes int `mapstructure:"max_total_bytes"`
}

// BashConfig limits the bash tool.
type BashConfig struct {
	// Timeout applies when the model gives none; MaxTimeout caps what it asks for.
	Timeout        time.Duration `mapstructure:"timeout"`
	MaxTimeout     time.Duration `mapstructure:"max_timeout"`
	MaxOutputBytes int           `mapstructure:"max_output_bytes"`
	// Network is "off" (the sandbox has its own empty network namespace) or
	// "on" (the host's network).
	Network string `mapstructure:"network"`
	// EnvPassthrough names worker environment variables copied into the
	// sandbox's otherwise clean environment.
	EnvPassthrough []string `mapstructure:"env_passthrough"`
	// ReadOnlyPaths are extra host paths visible read-only in the sandbox
	// (toolchains under a hidden home, shared caches).
	ReadOnlyPaths []string `mapstructure:"read_only_paths"`
	// MemoryMaxBytes caps the memory of one call (a memory cgroup).
	MemoryMaxBytes int64 `mapstructure:"memory_max_bytes"`
	// TmpMaxBytes sizes the call's private /tmp.
	TmpMaxBytes int64 `mapstructure:"tmp_max_bytes"`
}

// LogConfig configures NewLogger.
type LogConfig struct {
	Level  string `mapstructure:"level"`
	Format string `mapstructure:"format"`
}

// redactedSecret replaces secrets in Redacted copies.
const redactedSecret = "***"

// Redacted returns a copy that is safe to print or log: the API key becomes
// "***" when set, and a password embedded in the base URL is masked too.
func (c *Config) Redacted() Config {
	out := *c
	if out.LLM.APIKey != "" {
		out.LLM.APIKey = redactedSecret
	}
	if out.Codec.Key != "" {
		out.Codec.Key = redactedSecret
	}
	if u, err := url.Parse(out.LLM.BaseURL); err == nil && u.User != nil {
		out.LLM.BaseURL = u.Redacted()
	}
	out.Embedded.DBURL = RedactURL(out.Embedded.DBURL)
	return out
}

// RedactURL masks the password of a URL such as embedded.db_url, for logs
// and errors; a value that does not parse is hidden whole.
func RedactURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return redactedSecret
	}
	return u.Redacted()
}

// Secrets lists every secret value in c, for scrubbing text that leaves the
// worker: the API key, the codec key as written and as the raw key bytes
// (a command can print either, in any encoding), and a password embedded in
// the base URL or in embedded.db_url.
func (c *Config) Secrets() []string {
	var out []string
	if c.LLM.APIKey != "" {
		out = append(out, c.LLM.APIKey)
	}
	if c.Codec.Key != "" {
		out = append(out, strings.TrimSpace(c.Codec.Key))
		if raw, err := codec.ParseKey(c.Codec.Key); err == nil {
			out = append(out, string(raw))
		}
	}
	for _, raw := range []string{c.LLM.BaseURL, c.Embedded.DBURL} {
		if p := urlPassword(raw); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// urlPassword is the password embedded in a URL, "" if none.
func urlPassword(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return ""
	}
	p, _ := u.User.Password()
	return p
}
