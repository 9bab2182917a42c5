package config

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// maxShareBytes bounds tools.share.max_value_bytes and
// tools.share.max_total_bytes: the store rides in every continue-as-new
// carry of the parent, beside up to 1 MiB of subtask results
// (workflows.payloadTextBudget), under Temporal's 2 MB payload limit.
const maxShareBytes = 512 << 10

// envPrefix is prepended to every key's environment variable name.
const envPrefix = "CODESWARM"

// KeyDoc documents one config key, for rendering the README table.
type KeyDoc struct {
	Key         string // dotted key, as in codeswarm.yaml
	Default     string // default value as text; "" when empty
	Env         string // environment variables, highest priority first, comma-separated
	Description string
}

// keySpec is the single source of truth for a key: its default, its
// documentation and the ecosystem env vars that also feed it.
type keySpec struct {
	key     string
	def     any
	doc     string
	aliases []string // consulted after CODESWARM_*, in order
}

// keySpecs lists every key. stateDir is where on-disk state goes by default;
// Table passes a symbolic path so the docs show the rule, not this machine.
func keySpecs(stateDir string) []keySpec {
	return []keySpec{
		{key: "temporal.address", def: "", aliases: []string{"TEMPORAL_ADDRESS"},
			doc: `Temporal frontend host:port; "" uses 127.0.0.1:7233 if something listens there, else the embedded server`},
		{key: "temporal.namespace", def: "default", aliases: []string{"TEMPORAL_NAMESPACE"},
			doc: "Temporal namespace"},
		{key: "temporal.task_queue", def: "codeswarm", doc: "task queue the worker polls"},
		{key: "embedded.db_path", def: filepath.Join(stateDir, "temporal.db"),
			doc: "SQLite file of the embedded Temporal server ($XDG_STATE_HOME falls back to ~/.local/state)"},
		{key: "embedded.db_url", def: "",
			doc: `PostgreSQL URL (postgres://user:password@host:port/database?sslmode=disable) that replaces embedded.db_path: workflows in that database, visibility in <database>_visibility, both and their schema created or upgraded at start; "" uses the SQLite file (the password is a secret; never logged)`},
		{key: "embedded.ip", def: "127.0.0.1", doc: "IP address the embedded server and its Web UI listen on; workers on other hosts dial it"},
		{key: "embedded.port", def: 7233, doc: "gRPC port of the embedded Temporal server"},
		{key: "embedded.ui_port", def: 8233, doc: "Web UI port of the embedded Temporal server"},
		{key: "llm.base_url", def: "https://api.openai.com/v1", aliases: []string{"OPENAI_BASE_URL"},
			doc: "OpenAI-compatible API base URL"},
		{key: "llm.api_key", def: "", aliases: []string{"OPENAI_API_KEY"},
			doc: "API key (secret; never logged)"},
		{key: "llm.model", def: "gpt-4.1-mini", doc: "model for sub-agents"},
		{key: "llm.planner_model", def: "", doc: `model for the planner; "" uses llm.model`},
		{key: "llm.max_concurrent", def: 16, doc: "LLM requests in flight per worker"},
		{key: "llm.fair_share", def: true, doc: "while every llm.max_concurrent slot of a worker is busy, the next free one goes to the waiting run that has had the fewest (runs take turns); false: to the longest-waiting call, whatever its run"},
		{key: "llm.requests_per_second", def: 0.0, doc: "hard ceiling on LLM requests per second for the whole LLM task queue, across all workers (enforced by the server); 0: none, the rate adapts to the provider's 429s"},
		{key: "llm.timeout", def: 5 * time.Minute, doc: "timeout of one LLM request"},
		{key: "llm.context_limit", def: 256000, doc: "model context window in tokens"},
		{key: "llm.context_tokens", def: 60000, doc: "tokens a sub-agent's conversation may carry per model call (estimated, tool definitions included; at most what llm.context_limit allows). Past it, every tool result but the 8 most recent becomes a stub naming the tool and its size, then the oldest exchanges are dropped behind a note, down to half of it at once, so prompt tokens stay flat and the provider's prompt cache serves most of each call; 0: only llm.context_limit bounds it (the whole conversation is sent)"},
		{key: "llm.temperature", def: 0.7, doc: "sampling temperature, 0 to 2, sent to chat models (never to reasoning models, which reject it)"},
		{key: "llm.max_tokens", def: 8192, doc: "longest answer in tokens: max_tokens for chat models, max_completion_tokens for reasoning models"},
		{key: "llm.prices", def: "", doc: "model prices that add to or override the built-in table (see Budgets), as MODEL=PROMPT/COMPLETION[/CACHED] in USD per million tokens, e.g. my-model=0.5/1.5 or my-model=0.5/1.5/0.05 (CACHED: prompt tokens served from the provider's prompt cache; without it they cost PROMPT) (comma-separated in the env var)"},
		{key: "llm.reasoning", def: "auto", doc: "reasoning-model request form: auto (by model name: o1, o3, o4, gpt-5…), on or off; a parameter a server rejects is dropped and remembered per model either way"},
		{key: "swarm.max_subagents", def: 100, doc: "most sub-agents one run may spawn"},
		{key: "swarm.max_concurrent", def: 4, doc: "sub-agents running at once"},
		{key: "swarm.max_steps_per_subagent", def: 100, doc: "LLM turns one sub-agent may take"},
		{key: "swarm.max_total_steps", def: 1500, doc: "LLM turns across the whole run"},
		{key: "swarm.max_tokens", def: 0, doc: "prompt + completion tokens the whole run may spend (planner and every sub-agent); 0: no cap. On reaching it the run pauses until `resume --add-tokens`"},
		{key: "swarm.max_cost_usd", def: 0.0, doc: "USD the whole run may spend, priced by llm.prices; 0: no cap. On reaching it the run pauses until `resume --add-usd`"},
		{key: "swarm.max_tokens_per_subagent", def: 0, doc: "tokens one sub-agent may spend; it ends (failed, its work kept) before a call that could pass the cap; 0: no cap"},
		{key: "swarm.max_cost_usd_per_subagent", def: 0.0, doc: "USD one sub-agent may spend; it ends (failed, its work kept) before a call that could pass the cap; 0: no cap"},
		{key: "swarm.subagent_timeout", def: 10 * time.Minute, doc: "a sub-agent fails when it makes no progress for this long (the deadline resets after every step)"},
		{key: "swarm.max_retries", def: 3, doc: "retries of a failed tool or git activity, in sub-agents and in the run itself; 0 means one attempt, no retry (LLM calls retry until their 1 h window closes)"},
		{key: "swarm.strategy", def: "automatic",
			doc: "decomposition strategy: " + strings.Join(Strategies(), ", ")},
		{key: "workspace.root", def: filepath.Join(stateDir, "workspaces"),
			doc: "directory for run worktrees ($XDG_STATE_HOME falls back to ~/.local/state)"},
		{key: "workspace.host", def: "",
			doc: `this worker's host name for its workspace queue (<task_queue>-ws-<host>); "" uses the machine's hostname. Two workers sharing a name must share workspace.root`},
		{key: "workspace.host_lost_after", def: 90 * time.Second,
			doc: "a run's workspace host counts as lost (state waiting_for_host) when no worker has polled its queue for this long; keep it above the server's matching.longPollExpirationInterval (1 min by default); the workers and the CLI (whose workers command calls hosts lost by it) should use the same value"},
		{key: "workspace.auto_move_after", def: time.Duration(0),
			doc: "when a run's host has been lost this long and exactly one other host is polling, the run moves there by itself (as codeswarm move does; the repository must be at the same path there); 0 turns this off"},
		{key: "cache.enabled", def: true, doc: "the result cache: a sub-agent whose prompts, base tree, model, provider settings and tools equal those of one that completed reuses its commit, and a planner request equal to an earlier one its plan, with no model call (`run --no-cache` skips the lookups); entries live in <workspace.root>/.cache on the repository's host"},
		{key: "cache.max_entries", def: 1000, doc: "entries the result cache keeps of each kind (sub-agent results, plans); past it the least recently used go"},
		{key: "git.auto_merge", def: true, doc: "merge sub-agent branches into the run branch"},
		{key: "git.resolve_conflicts", def: true, doc: "re-run a subtask whose merge conflicts once, from the new integration head, with the conflict in its prompt"},
		{key: "git.branch_prefix", def: "codeswarm", doc: "prefix of branches codeswarm creates"},
		{key: "verify.command", def: "", doc: `shell command that checks the result; "" skips verification`},
		{key: "verify.mode", def: "end", doc: "when to verify: end (after merging) or each (after every subtask)"},
		{key: "tools.bash.timeout", def: 2 * time.Minute, doc: "default timeout of a bash tool call"},
		{key: "tools.bash.max_timeout", def: 10 * time.Minute, doc: "largest timeout a bash tool call may ask for"},
		{key: "tools.bash.max_output_bytes", def: 30000, doc: "bash output kept per call, in bytes"},
		{key: "tools.share.max_value_bytes", def: 16384, doc: fmt.Sprintf("largest value a swarm_share publish may carry, in bytes (at most %d and at most tools.share.max_total_bytes: values are kept in the run's Temporal history)", maxShareBytes)},
		{key: "tools.bash.network", def: "off", doc: "network inside the bash sandbox: off (own empty network namespace) or on (the host's network, for installs and module downloads)"},
		{key: "tools.bash.env_passthrough", def: "", doc: "names of worker environment variables passed into the bash sandbox (comma-separated in the env var); secret-looking names are never passed"},
		{key: "tools.bash.read_only_paths", def: "", doc: "extra absolute host paths the bash sandbox shows read-only (comma-separated in the env var), e.g. a toolchain under a hidden home; pyenv, nvm, rustup/cargo and Go homes are found by themselves"},
		{key: "tools.bash.memory_max_bytes", def: int64(2 << 30), doc: "memory one bash call may use, in bytes (a memory cgroup per call; the call is killed past it)"},
		{key: "tools.bash.tmp_max_bytes", def: int64(1 << 30), doc: "size of the private /tmp of one bash call, in bytes"},
		{key: "tools.max_file_bytes", def: 8 << 20, doc: "largest file read, write, edit and multiedit load into the worker, in bytes; larger and special files are refused"},
		{key: "tools.share.max_keys", def: 256, doc: "distinct swarm_share keys one run may publish (values are kept in the run's Temporal history)"},
		{key: "tools.share.max_total_bytes", def: 512 << 10, doc: fmt.Sprintf("bytes of keys, values and tags one run's swarm_share publishes may hold together (at most %d: the store is carried across the run's continue-as-new hand-overs); a publish past it is refused", maxShareBytes)},
		{key: "tools.sandbox", def: "on", doc: "run bash and verify.command in a bubblewrap sandbox: on, or off (unconfined; only when set explicitly)"},
		{key: "worker.deployment", def: "", doc: "Worker Versioning: the worker deployment this worker belongs to; every run is pinned to the build that started it and finishes on workers of that build, so a new build can roll out while runs go on (the first build of a deployment becomes its current version; make a later one current with `temporal worker deployment set-current-version`). \"\": unversioned workers, and every run must finish before an upgrade"},
		{key: "worker.build_id", def: "", doc: "this worker's build ID within worker.deployment; \"\": the binary's VCS revision, or a hash of the executable"},
		{key: "watch.slow_call_after", def: 30 * time.Second, doc: "watch and status flag a sub-agent's current model or tool call (CALL column) that has run longer than this"},
		{key: "log.level", def: "info", doc: "log level: debug, info, warn or error"},
		{key: "log.format", def: "console", doc: "log format: console or json"},
		{key: "codec.key", def: "", doc: `AES-256 key (32 bytes, base64 or hex) that encrypts every payload stored in Temporal; "" stores them in clear (secret; never logged)`},
		{key: "codec.port", def: 8234, doc: "port of the codec endpoint the Web UI uses to decode payloads (served with the embedded server when codec.key is set)"},
	}
}

// Keys returns every known config key, sorted.
func Keys() []string {
	specs := keySpecs("")
	keys := make([]string, 0, len(specs))
	for _, s := range specs {
		keys = append(keys, s.key)
	}
	slices.Sort(keys)
	return keys
}

// Table documents every key, sorted by key.
func Table() []KeyDoc {
	specs := keySpecs(filepath.Join("$XDG_STATE_HOME", "codeswarm"))
	docs := make([]KeyDoc, 0, len(specs))
	for _, s := range specs {
		docs = append(docs, KeyDoc{
			Key:         s.key,
			Default:     formatDefault(s.def),
			Env:         strings.Join(s.envNames(), ", "),
			Description: s.doc,
		})
	}
	slices.SortFunc(docs, func(a, b KeyDoc) int { return strings.Compare(a.Key, b.Key) })
	return docs
}

// Strategies lists the accepted values of swarm.strategy.
func Strategies() []string {
	return []string{"automatic", "by_domain", "by_data", "by_stage", "none"}
}

// EnvName returns the CODESWARM_* variable for key, e.g.
// "swarm.max_concurrent" -> "CODESWARM_SWARM_MAX_CONCURRENT".
func EnvName(key string) string {
	return envPrefix + "_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// envNames lists the variables that feed the key, highest priority first.
func (s keySpec) envNames() []string {
	return append([]string{EnvName(s.key)}, s.aliases...)
}

// formatDefault renders durations as written in the file ("5m", not "5m0s").
func formatDefault(v any) string {
	d, ok := v.(time.Duration)
	if !ok {
		return fmt.Sprint(v)
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
