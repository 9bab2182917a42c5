// Package activities holds every Temporal activity of codeswarm and the
// input/result types that workflows exchange with them. It never imports
// workflows: the workflows package refers to these methods through a nil
// *Activities value.
package activities

import (
	"time"
)

// Names shared between workflows, activities and the CLI. They are part of
// the contract with running histories: renaming one breaks them.
const (
	// LLMQueueSuffix is appended to the main task queue to name the LLM queue.
	LLMQueueSuffix = "-llm"
	// WorkspaceQueueInfix names a host's workspace queue: <main>-ws-<host>.
	WorkspaceQueueInfix = "-ws-"
)

// Merge outcomes of a subtask, as they appear in the result JSON.
const (
	MergeMerged    = "merged"
	MergeConflict  = "conflict"
	MergeNoChanges = "no_changes"
	MergeSkipped   = "skipped"
)

// Subtask statuses, as they appear in the result JSON.
const (
	StatusCompleted = "completed"
	StatusFailed    = "failed"
	StatusBlocked   = "blocked"
	StatusPending   = "pending"
	StatusTimedOut  = "timed_out"
	StatusCancelled = "cancelled"
	// StatusNoBudget: never started because the swarm-wide step budget
	// (max_total_steps) was spent by the sub-agents that ran.
	StatusNoBudget = "budget_exhausted"
)

// Subtask is one unit of the plan.
type Subtask struct {
	ID            string   `json:"id"`
	Name          string   `json:"name"`
	Instruction   string   `json:"instruction"`
	Specialty     string   `json:"specialty,omitempty"`
	Dependencies  []string `json:"dependencies"` // subtask IDs
	Priority      int      `json:"priority"`
	NeedsWorktree bool     `json:"needs_worktree"`
	Stage         int      `json:"stage"`
}

// Limits bound a run; they come from config and CLI flags.
type Limits struct {
	MaxSubagents        int           `json:"max_subagents"`
	MaxConcurrent       int           `json:"max_concurrent"`
	MaxStepsPerSubagent int           `json:"max_steps_per_subagent"`
	MaxTotalSteps       int           `json:"max_total_steps"`
	SubagentTimeout     time.Duration `json:"subagent_timeout"`
	MaxRetries          int           `json:"max_retries"`
	ContextLimit        int           `json:"context_limit"`
	LLMTimeout          time.Duration `json:"llm_timeout"`
}

// ToolLimits bound tool execution in a sub-agent.
type ToolLimits struct {
	BashTimeout    time.Duration `json:"bash_timeout"`
	BashMaxTimeout time.Duration `json:"bash_max_timeout"`
	MaxOutputBytes int           `json:"max_output_bytes"`
	// ShareMaxValueBytes caps a swarm_share value (0: tools.DefaultShareMaxValueBytes).
	ShareMaxValueBytes int `json:"share_max_value_bytes,omitempty"`
	// ShareMaxKeys caps the distinct keys of a run's store (0:
	// tools.DefaultShareMaxKeys): every published value lands in the
	// parent's history.
	ShareMaxKeys int `json:"share_max_keys,omitempty"`
	// ShareMaxTotalBytes caps the keys, values and tags a run's sub-agents
	// publish together (0: tools.DefaultShareMaxTotalBytes).
	ShareMaxTotalBytes int `json:"share_max_total_bytes,omitempty"`
}

// Usage counts tokens.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	// CachedPromptTokens are the part of PromptTokens the provider served
	// from its prompt cache (usage.prompt_tokens_details.cached_tokens),
	// billed at Price.CachedPrompt.
	CachedPromptTokens int `json:"cached_prompt_tokens,omitempty"`
	// Estimated: some of these tokens were estimated from characters, the
	// server having sent no usage (see EstimateUsage).
	Estimated bool `json:"estimated,omitempty"`
}

// Add returns the sum of two usages.
func (u Usage) Add(o Usage) Usage {
	return Usage{
		PromptTokens:       u.PromptTokens + o.PromptTokens,
		CompletionTokens:   u.CompletionTokens + o.CompletionTokens,
		CachedPromptTokens: u.CachedPromptTokens + o.CachedPromptTokens,
		Estimated:          u.Estimated || o.Estimated,
	}
}

// ConvRef names one sub-agent conversation in the transcript store.
type ConvRef struct {
	RunID     string `json:"run_id"`
	SubtaskID string `json:"subtask_id"`
	Attempt   int    `json:"attempt"`
}

// SubtaskResult is one entry of the result JSON's subtask_results. For a
// subtask re-run after a conflict, steps, tool calls, execution time, tokens
// and LLM calls count both attempts; the rest describes the last one.
type SubtaskResult struct {
	ID              string   `json:"id"`
	Name            string   `json:"name"`
	Stage           int      `json:"stage"`
	Dependencies    []string `json:"dependencies"`
	Success         bool     `json:"success"`
	Status          string   `json:"status"`
	Result          string   `json:"result"`
	Steps           int      `json:"steps"`
	ToolCalls       int      `json:"tool_calls"`
	ExecutionTimeMs int64    `json:"execution_time_ms"`
	Error           string   `json:"error,omitempty"`
	Branch          string   `json:"branch,omitempty"`
	Commit          string   `json:"commit,omitempty"`
	FilesChanged    []string `json:"files_changed"`
	// FilesOmitted counts changed files left out of FilesChanged to keep
	// a very large run's result within Temporal's payload limit (the
	// commit has them all); ConflictsOmitted the same for Conflicts.
	FilesOmitted     int      `json:"files_changed_omitted,omitempty"`
	Merge            string   `json:"merge"`
	Conflicts        []string `json:"conflicts"`
	ConflictsOmitted int      `json:"conflicts_omitted,omitempty"`
	ExitReason       string   `json:"exit_reason,omitempty"`
	Attempts         int      `json:"attempts,omitempty"`
	Worktree         string   `json:"worktree,omitempty"`
	PromptTokens     int      `json:"prompt_tokens"`
	CompletionTokens int      `json:"completion_tokens"`
	// CachedPromptTokens are the prompt tokens the provider served from
	// its prompt cache (part of PromptTokens).
	CachedPromptTokens int    `json:"cached_prompt_tokens,omitempty"`
	LLMCalls           int    `json:"llm_calls"`
	MergeCommit        string `json:"merge_commit,omitempty"`
	VerifyFailed       bool   `json:"verify_failed,omitempty"`
	// CostUSD prices the tokens above by llm.prices (0 when unpriced).
	CostUSD float64 `json:"cost_usd"`
	// UsageEstimated: the server sent no usage for some answers; their
	// tokens are estimated from characters (~4 a token).
	UsageEstimated bool `json:"usage_estimated,omitempty"`
	// Cached: the result cache held this sub-agent's work (same prompts,
	// base tree, model and tools as one that completed before); its commit
	// was reused and it made no model call.
	Cached bool `json:"cached,omitempty"`
}

// StageStats is the seed's per-stage statistics.
type StageStats struct {
	Stage           int   `json:"stage"`
	SubagentCount   int   `json:"subagent_count"`
	MaxSteps        int   `json:"max_steps"`
	TotalSteps      int   `json:"total_steps"`
	ExecutionTimeMs int64 `json:"execution_time_ms"`
}

// Stats is the seed's swarm statistics plus token and call counts.
type Stats struct {
	SubagentsSpawned   int `json:"subagents_spawned"`
	SubagentsCompleted int `json:"subagents_completed"`
	SubagentsFailed    int `json:"subagents_failed"`
	TotalToolCalls     int `json:"total_tool_calls"`
	TotalLLMCalls      int `json:"total_llm_calls"`
	PromptTokens       int `json:"prompt_tokens"`
	CompletionTokens   int `json:"completion_tokens"`
	// CachedPromptTokens: the part of PromptTokens served from the
	// provider's prompt cache.
	CachedPromptTokens       int          `json:"cached_prompt_tokens,omitempty"`
	CostUSD                  float64      `json:"cost_usd"` // planner and every sub-agent, by llm.prices
	CriticalPathLength       int          `json:"critical_path_length"`
	ExecutionTimeMs          int64        `json:"execution_time_ms"`
	SequentialTimeEstimateMs int64        `json:"sequential_time_estimate_ms"`
	SpeedupFactor            float64      `json:"speedup_factor"`
	Stages                   []StageStats `json:"stages"`
	// UsageEstimated: the server sent no usage for some answers; their
	// tokens are estimated from characters (~4 a token), and the caps bind
	// on the estimate.
	UsageEstimated bool `json:"usage_estimated,omitempty"`
	// SubagentsCached counts the sub-agents whose work came from the
	// result cache; PlanCached says the plan did.
	SubagentsCached int  `json:"subagents_cached,omitempty"`
	PlanCached      bool `json:"plan_cached,omitempty"`
}

// VerifyReport is the outcome of the verification command.
type VerifyReport struct {
	Command  string `json:"command"`
	Commit   string `json:"commit"`
	OK       bool   `json:"ok"`
	ExitCode int    `json:"exit_code"`
	Output   string `json:"output"`
	// BrokenBy names the subtask whose merge first made the command fail (mode "each").
	BrokenBy string `json:"broken_by,omitempty"`
}

// SwarmResult is the result JSON of a run (run --json, result --json).
type SwarmResult struct {
	RunID   string `json:"run_id"`
	Success bool   `json:"success"`
	// State is how the run ended: succeeded, failed, cancelled or rejected
	// (a RunState*).
	State          string          `json:"state,omitempty"`
	Branch         string          `json:"branch"`
	BaseCommit     string          `json:"base_commit"`
	HeadCommit     string          `json:"head_commit"`
	Result         string          `json:"result"`
	Error          string          `json:"error"`
	SubtaskResults []SubtaskResult `json:"subtask_results"`
	// SubtaskResultsPacked holds SubtaskResults as gzip-compressed JSON
	// while the result travels through Temporal, when they are too large
	// to go as they are (see Pack); clients read results with RunResult or
	// ResultOf, which unpack them, so it is never set in what they get.
	SubtaskResultsPacked []byte        `json:"subtask_results_packed,omitempty"`
	Stats                Stats         `json:"stats"`
	Verify               *VerifyReport `json:"verify,omitempty"`
	Applied              bool          `json:"applied"`
	ApplyError           string        `json:"apply_error,omitempty"`
	KeptWorktrees        []string      `json:"kept_worktrees,omitempty"`
	// KeptWorktreesPacked holds KeptWorktrees as gzip-compressed JSON
	// when there are too many to go as they are (see Pack), like
	// SubtaskResultsPacked; clients never see it set.
	KeptWorktreesPacked []byte `json:"kept_worktrees_packed,omitempty"`
	PlanNote            string `json:"plan_note,omitempty"`
	// Sandbox is "on" when model-run commands were confined, "off" when
	// tools.sandbox was off.
	Sandbox string `json:"sandbox,omitempty"`
}
