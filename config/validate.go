package config

import (
	"codeswarm/internal/codec"

	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// KeyError is one bad config value. Load and Validate return these, joined.
type KeyError struct {
	Key     string // dotted key, e.g. "swarm.strategy"
	Value   any    // the offending value
	Problem string // predicate that follows the value, e.g. "must be at least 1"
}

// Error renders `key: value problem`; the API key's value is never shown.
func (e *KeyError) Error() string {
	return fmt.Sprintf("%s: %s %s", e.Key, e.shownValue(), e.Problem)
}

func (e *KeyError) shownValue() string {
	switch e.Key {
	case "llm.api_key":
		return redactedSecret
	case "embedded.db_url":
		if v, ok := e.Value.(string); ok {
			return fmt.Sprintf("%q", RedactURL(v))
		}
	}
	switch v := e.Value.(type) {
	case string:
		return fmt.Sprintf("%q", v)
	case time.Duration:
		return v.String()
	default:
		return fmt.Sprint(v)
	}
}

// Validate reports every bad value at once; each error is a *KeyError.
func (c *Config) Validate() error {
	var errs []error
	for _, check := range c.checks() {
		if err := check(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// checks lists one check per rule, so Validate stays a loop.
func (c *Config) checks() []func() error {
	return []func() error{
		func() error { return checkAddress("temporal.address", c.Temporal.Address) },
		func() error { return notEmpty("temporal.namespace", c.Temporal.Namespace) },
		func() error { return notEmpty("temporal.task_queue", c.Temporal.TaskQueue) },
		func() error { return notEmpty("embedded.db_path", c.Embedded.DBPath) },
		func() error { return checkPostgresURL("embedded.db_url", c.Embedded.DBURL) },
		func() error { return checkIP("embedded.ip", c.Embedded.IP) },
		func() error { return checkPort("embedded.port", c.Embedded.Port) },
		func() error { return checkPort("embedded.ui_port", c.Embedded.UIPort) },
		c.checkDistinctPorts,
		c.checkWorkerVersion,
		func() error { return checkHTTPURL("llm.base_url", c.LLM.BaseURL) },
		func() error { return notEmpty("llm.model", c.LLM.Model) },
		func() error { return atLeast("llm.max_concurrent", c.LLM.MaxConcurrent, 1) },
		func() error { return nonNegativeFloat("llm.requests_per_second", c.LLM.RequestsPerSecond) },
		func() error { return positiveDuration("llm.timeout", c.LLM.Timeout) },
		func() error { return atLeast("llm.context_limit", c.LLM.ContextLimit, 1) },
		func() error { return atLeast("llm.context_tokens", c.LLM.ContextTokens, 0) },
		func() error { return checkTemperature("llm.temperature", c.LLM.Temperature) },
		func() error { return atLeast("llm.max_tokens", c.LLM.MaxTokens, 1) },
		func() error { return oneOf("llm.reasoning", c.LLM.Reasoning, "auto", "on", "off") },
		func() error { return atLeast("swarm.max_subagents", c.Swarm.MaxSubagents, 1) },
		func() error { return atLeast("swarm.max_concurrent", c.Swarm.MaxConcurrent, 1) },
		func() error { return atLeast("swarm.max_steps_per_subagent", c.Swarm.MaxStepsPerSubagent, 1) },
		func() error { return atLeast("swarm.max_total_steps", c.Swarm.MaxTotalSteps, 1) },
		func() error { return positiveDuration("swarm.subagent_timeout", c.Swarm.SubagentTimeout) },
		func() error { return positiveDuration("workspace.host_lost_after", c.Workspace.HostLostAfter) },
		func() error { return nonNegativeDuration("workspace.auto_move_after", c.Workspace.AutoMoveAfter) },
		func() error { return atLeast("swarm.max_retries", c.Swarm.MaxRetries, 0) },
		func() error { return atLeast("swarm.max_tokens", c.Swarm.MaxTokens, 0) },
		func() error { return nonNegativeFloat("swarm.max_cost_usd", c.Swarm.MaxCostUSD) },
		func() error { return atLeast("swarm.max_tokens_per_subagent", c.Swarm.MaxTokensPerSubagent, 0) },
		func() error {
			return nonNegativeFloat("swarm.max_cost_usd_per_subagent", c.Swarm.MaxCostUSDPerSubagent)
		},
		c.checkPrices,
		func() error { return oneOf("swarm.strategy", c.Swarm.Strategy, Strategies()...) },
		func() error { return notEmpty("workspace.root", c.Workspace.Root) },
		func() error { return checkHostName("workspace.host", c.Workspace.Host) },
		func() error { return checkBranchPrefix("git.branch_prefix", c.Git.BranchPrefix) },
		func() error { return oneOf("verify.mode", c.Verify.Mode, "end", "each") },
		func() error { return positiveDuration("tools.bash.timeout", c.Tools.Bash.Timeout) },
		func() error { return positiveDuration("tools.bash.max_timeout", c.Tools.Bash.MaxTimeout) },
		c.checkBashTimeouts,
		func() error { return atLeast("tools.bash.max_output_bytes", c.Tools.Bash.MaxOutputBytes, 1) },
		func() error {
			return between("tools.share.max_value_bytes", c.Tools.Share.MaxValueBytes, 1, maxShareBytes)
		},
		func() error {
			return between("tools.share.max_total_bytes", c.Tools.Share.MaxTotalBytes, 1, maxShareBytes)
		},
		c.checkShareValueFits,
		func() error { return oneOf("tools.bash.network", c.Tools.Bash.Network, "off", "on") },
		c.checkEnvPassthrough,
		c.checkReadOnlyPaths,
		func() error { return atLeast64("tools.bash.memory_max_bytes", c.Tools.Bash.MemoryMaxBytes, 16<<20) },
		func() error { return atLeast64("tools.bash.tmp_max_bytes", c.Tools.Bash.TmpMaxBytes, 1<<20) },
		func() error { return atLeast("tools.max_file_bytes", c.Tools.MaxFileBytes, 1024) },
		func() error { return atLeast("tools.share.max_keys", c.Tools.Share.MaxKeys, 1) },
		func() error { return oneOf("tools.sandbox", c.Tools.Sandbox, "on", "off") },
		func() error { return positiveDuration("watch.slow_call_after", c.Watch.SlowCallAfter) },
		func() error { return atLeast("cache.max_entries", c.Cache.MaxEntries, 1) },
		func() error { return oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error") },
		func() error { return oneOf("log.format", c.Log.Format, "console", "json") },
		c.checkCodecKey,
		func() error { return checkPort("codec.port", c.Codec.Port) },
	}
}

func (c *Config) checkDistinctPorts() error {
	if c.Embedded.Port != c.Embedded.UIPort {
		return nil
	}
	return &KeyError{
		Key:     "embedded.ui_port",
		Value:   c.Embedded.UIPort,
		Problem: "must differ from embedded.port",
	}
}

func (c *Config) checkBashTimeouts() error {
	if c.Tools.Bash.MaxTimeout >= c.Tools.Bash.Timeout {
		return nil
	}
	return &KeyError{
		Key:     "tools.bash.max_timeout",
		Value:   c.Tools.Bash.MaxTimeout,
		Problem: fmt.Sprintf("must be at least tools.bash.timeout (%s)", c.Tools.Bash.Timeout),
	}
}

// checkShareValueFits refuses a value cap that the total cap would refuse
// on the first publish of such a value (caps out of range have their own
// error).
func (c *Config) checkShareValueFits() error {
	sh := c.Tools.Share
	if sh.MaxValueBytes <= sh.MaxTotalBytes || sh.MaxValueBytes > maxShareBytes || sh.MaxTotalBytes < 1 {
		return nil
	}
	return &KeyError{
		Key:     "tools.share.max_value_bytes",
		Value:   c.Tools.Share.MaxValueBytes,
		Problem: fmt.Sprintf("must be at most tools.share.max_total_bytes (%d)", c.Tools.Share.MaxTotalBytes),
	}
}

// envNamePattern is what a POSIX shell accepts as a variable name.
var envNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (c *Config) checkEnvPassthrough() error {
	for _, name := range c.Tools.Bash.EnvPassthrough {
		if !envNamePattern.MatchString(name) {
			return &KeyError{
				Key:     "tools.bash.env_passthrough",
				Value:   name,
				Problem: "is not an environment variable name (letters, digits and _, not starting with a digit)",
			}
		}
	}
	return nil
}

var hostNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// checkHostName accepts "" (the machine's hostname) or a name that is a
// task queue suffix as it is.
func checkHostName(key, v string) error {
	if v == "" || hostNameRE.MatchString(v) {
		return nil
	}
	return &KeyError{
		Key:     key,
		Value:   v,
		Problem: "must be letters, digits, '.', '_' or '-', starting with a letter or digit",
	}
}

// checkWorkerVersion: a deployment name cannot hold ".", which Temporal
// reserves to join it with the build ID, and a build ID needs a deployment.
func (c *Config) checkWorkerVersion() error {
	w := c.Worker
	switch {
	case strings.Contains(w.Deployment, "."):
		return &KeyError{
			Key:     "worker.deployment",
			Value:   w.Deployment,
			Problem: `must not contain "."`,
		}
	case w.Deployment != strings.TrimSpace(w.Deployment):
		return &KeyError{
			Key:     "worker.deployment",
			Value:   w.Deployment,
			Problem: "must not start or end with spaces",
		}
	case w.BuildID != "" && w.Deployment == "":
		return &KeyError{
			Key:     "worker.build_id",
			Value:   w.BuildID,
			Problem: "needs worker.deployment (a build ID names a build within a deployment)",
		}
	}
	return nil
}

func notEmpty(key, v string) error {
	if strings.TrimSpace(v) != "" {
		return nil
	}
	return &KeyError{Key: key, Value: v, Problem: "must not be empty"}
}

func oneOf(key, v string, allowed ...string) error {
	if slices.Contains(allowed, v) {
		return nil
	}
	return &KeyError{Key: key, Value: v, Problem: "is not one of " + strings.Join(allowed, ", ")}
}

func atLeast(key string, v, lowest int) error {
	if v >= lowest {
		return nil
	}
	return &KeyError{Key: key, Value: v, Problem: fmt.Sprintf("must be at least %d", lowest)}
}

func between(key string, v, lowest, highest int) error {
	if v >= lowest && v <= highest {
		return nil
	}
	return &KeyError{
		Key:     key,
		Value:   v,
		Problem: fmt.Sprintf("must be between %d and %d", lowest, highest),
	}
}

func nonNegativeFloat(key string, v float64) error {
	if v >= 0 {
		return nil
	}
	return &KeyError{Key: key, Value: v, Problem: "must be 0 (no limit) or more"}
}

// checkTemperature accepts OpenAI's range; other servers use a subset.
func checkTemperature(key string, v float64) error {
	if v >= 0 && v <= 2 {
		return nil
	}
	return &KeyError{Key: key, Value: v, Problem: "is not in 0..2"}
}

func nonNegativeDuration(key string, v time.Duration) error {
	if v < 0 {
		return &KeyError{Key: key, Value: v, Problem: "must not be negative (0 turns it off)"}
	}
	return nil
}

func positiveDuration(key string, v time.Duration) error {
	if v > 0 {
		return nil
	}
	return &KeyError{Key: key, Value: v, Problem: "must be greater than 0"}
}

func checkPort(key string, v int) error {
	if v >= 1 && v <= 65535 {
		return nil
	}
	return &KeyError{Key: key, Value: v, Problem: "is not a port in 1..65535"}
}

// checkAddress accepts "" (auto), host:port, or a gRPC target with a scheme
// such as "dns:///host:port", which the Temporal client also dials.
func checkAddress(key, v string) error {
	if v == "" || strings.Contains(v, "://") {
		return nil
	}
	if _, port, err := net.SplitHostPort(v); err == nil && port != "" {
		return nil
	}
	return &KeyError{Key: key, Value: v, Problem: `is not host:port, e.g. "127.0.0.1:7233"`}
}

// checkPostgresURL accepts "" (SQLite) or postgres://user[:password]@host[:port]/database.
func checkPostgresURL(key, v string) error {
	if v == "" {
		return nil
	}
	const want = "is not a PostgreSQL URL: want postgres://user:password@host:port/database"
	u, err := url.Parse(v)
	switch {
	case err != nil, u.Scheme != "postgres" && u.Scheme != "postgresql", u.Hostname() == "":
		return &KeyError{Key: key, Value: v, Problem: want}
	case u.User == nil || u.User.Username() == "":
		return &KeyError{Key: key, Value: v, Problem: want + " (no user)"}
	case strings.Trim(u.Path, "/") == "" || strings.Contains(strings.Trim(u.Path, "/"), "/"):
		return &KeyError{Key: key, Value: v, Problem: want + " (no database name)"}
	}
	return nil
}

func checkIP(key, v string) error {
	if net.ParseIP(v) != nil {
		return nil
	}
	return &KeyError{Key: key, Value: v, Problem: `is not an IP address, e.g. "127.0.0.1"`}
}

func checkHTTPURL(key, v string) error {
	u, err := url.Parse(v)
	if err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		return nil
	}
	return &KeyError{Key: key, Value: v, Problem: "is not an http(s) URL"}
}

// checkBranchPrefix applies the parts of git-check-ref-format a prefix can
// break on its own.
func checkBranchPrefix(key, v string) error {
	switch {
	case v == "":
		return &KeyError{Key: key, Value: v, Problem: "must not be empty"}
	case strings.ContainsAny(v, " \t\n~^:?*[\\") || strings.Contains(v, ".."),
		strings.HasPrefix(v, "/"), strings.HasPrefix(v, "-"), strings.HasSuffix(v, "/"),
		strings.HasSuffix(v, "."), strings.Contains(v, "@{"):
		return &KeyError{Key: key, Value: v, Problem: "is not a valid git branch name prefix"}
	}
	return nil
}

func (c *Config) checkCodecKey() error {
	if c.Codec.Key == "" {
		return nil
	}
	if _, err := codec.ParseKey(c.Codec.Key); err != nil {
		return &KeyError{Key: "codec.key", Value: redactedSecret, Problem: err.Error()}
	}
	return nil
}

func atLeast64(key string, v, lowest int64) error {
	if v >= lowest {
		return nil
	}
	return &KeyError{Key: key, Value: v, Problem: fmt.Sprintf("must be at least %d", lowest)}
}

// checkReadOnlyPaths wants absolute paths: a relative one would depend on
// the worker's working directory.
func (c *Config) checkReadOnlyPaths() error {
	for _, p := range c.Tools.Bash.ReadOnlyPaths {
		if !filepath.IsAbs(p) {
			return &KeyError{
				Key:     "tools.bash.read_only_paths",
				Value:   p,
				Problem: "is not an absolute path",
			}
		}
	}
	return nil
}
