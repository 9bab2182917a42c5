package control

import "time"

// The updates and queries of a run's workflows.
const (
	// PauseUpdateName pauses a run (PauseRequest → ControlReply): running
	// sub-agents stop after their current step, nothing new starts.
	PauseUpdateName = "pause"
	// ResumeUpdateName resumes a paused run, optionally raising its token or
	// cost cap (ResumeRequest → ControlReply).
	ResumeUpdateName = "resume"
	// ApproveUpdateName lets a run started with --approve-plan go on
	// (ApproveRequest → ControlReply).
	ApproveUpdateName = "approve"
	// RejectUpdateName ends a run waiting for approval with its reason
	// (RejectRequest → ControlReply).
	RejectUpdateName = "reject"
	// TellUpdateName delivers a steering note to one or every running
	// sub-agent before its next model call (TellRequest → ControlReply).
	TellUpdateName = "tell"
	// MoveUpdateName re-homes a run on another workspace host (MoveRequest
	// → ControlReply): its running subtasks restart there from their last
	// committed state; merged work stays merged.
	MoveUpdateName = "move"
	// ShareQueryName is the query on SwarmWorkflow that reads the swarm_share store.
	ShareQueryName = "swarm_share"
	// SharePublishUpdateName is the update on SwarmWorkflow that publishes into the store.
	SharePublishUpdateName = "swarm_share_publish"
	// ProgressQueryName is the query on SwarmWorkflow that returns the run's events.
	ProgressQueryName = "progress"
	// PlanQueryName returns the run's plan (PlanView).
	PlanQueryName = "plan"
	// AgentQueryName is the query on SubAgentWorkflow returning AgentView.
	AgentQueryName = "agent"
)

// Run states: what a run is doing besides its phase. The CLI's status, the
// Web UI's current details and the CodeswarmStatus search attribute show it.
const (
	RunStateRunning          = "running"
	RunStatePaused           = "paused"            // codeswarm pause
	RunStateBudgetPaused     = "paused_budget"     // a token or cost cap was reached
	RunStateAwaitingApproval = "awaiting_approval" // run --approve-plan: the plan waits for approve/reject
	RunStateWaitingHost      = "waiting_for_host"  // the run's workspace host stopped polling
	RunStateSucceeded        = "succeeded"
	RunStateFailed           = "failed"
	RunStateCancelled        = "cancelled"
	RunStateRejected         = "rejected"
	// RunStateTerminated and RunStateTimedOut are never set by a run (it
	// cannot act once Temporal ended it): the CLI derives them from the
	// workflow's status when the search attribute still shows a live state.
	RunStateTerminated = "terminated"
	RunStateTimedOut   = "timed_out"
)

// Search attribute names set on every run (registered by the embedded
// server and by `codeswarm` against a cluster at start-up).
const (
	SAStatus        = "CodeswarmStatus"        // Keyword: a RunState*
	SARepo          = "CodeswarmRepo"          // Keyword: repository path
	SATask          = "CodeswarmTask"          // Text: the task's first 200 characters
	SATokens        = "CodeswarmTokens"        // Int: prompt + completion tokens so far
	SACostUSD       = "CodeswarmCostUSD"       // Double: cost so far
	SASubtasksDone  = "CodeswarmSubtasksDone"  // Int
	SASubtasksTotal = "CodeswarmSubtasksTotal" // Int
	SAHost          = "CodeswarmHost"          // Keyword: the run's workspace host
)

// PauseRequest is the argument of PauseUpdateName.
type PauseRequest struct {
	Reason string `json:"reason,omitempty"`
}

// ResumeRequest is the argument of ResumeUpdateName. Negative values are
// refused by the update's validator.
type ResumeRequest struct {
	AddTokens int64   `json:"add_tokens,omitempty"`
	AddUSD    float64 `json:"add_usd,omitempty"`
}

// ApproveRequest is the argument of ApproveUpdateName.
type ApproveRequest struct{}

// RejectRequest is the argument of RejectUpdateName.
type RejectRequest struct {
	Reason string `json:"reason"`
}

// TellRequest is the argument of TellUpdateName: Subtask empty means every
// running sub-agent.
type TellRequest struct {
	Subtask string `json:"subtask,omitempty"`
	Message string `json:"message"`
}

// MoveRequest is the argument of MoveUpdateName: Host is a workspace.host
// whose workers poll <task_queue>-ws-<host>.
type MoveRequest struct {
	Host string `json:"host"`
}

// ControlReply answers every steering update: the run's state after it and
// a line for the user.
type ControlReply struct {
	State   string `json:"state"`
	Message string `json:"message"`
}

// BudgetView is what a run may spend and has spent (0 max: no cap).
type BudgetView struct {
	MaxTokens  int64   `json:"max_tokens"`
	MaxCostUSD float64 `json:"max_cost_usd"`
	Tokens     int64   `json:"tokens"`
	CostUSD    float64 `json:"cost_usd"`
	MaxSteps   int     `json:"max_steps"`
	Steps      int     `json:"steps"`
}

// SubtaskView is one row of a run's live table: the progress query, the
// parent's Web UI current details, `status` and `watch` all show it.
type SubtaskView struct {
	ID          string  `json:"id"`
	Name        string  `json:"name"`
	Stage       int     `json:"stage"`
	Status      string  `json:"status"` // pending, running, paused, or a Status* once done
	Attempt     int     `json:"attempt"`
	Step        int     `json:"step"`
	MaxSteps    int     `json:"max_steps"`
	Tokens      int64   `json:"tokens"`
	CostUSD     float64 `json:"cost_usd"`
	CurrentTool string  `json:"current_tool,omitempty"`
	// CurrentKind ("model", "tool" or "git") and CurrentSince say what
	// kind of call is in progress and since when (from the sub-agent).
	CurrentKind  string    `json:"current_kind,omitempty"`
	CurrentSince time.Time `json:"current_since,omitzero"`
	LastStatus   string    `json:"last_status,omitempty"`
	StartedAt    time.Time `json:"started_at,omitempty"`
	EndedAt      time.Time `json:"ended_at,omitempty"`
	LastEvent    string    `json:"last_event,omitempty"`
	Merge        string    `json:"merge,omitempty"`
	// Cached: the sub-agent's work came from the result cache.
	Cached bool `json:"cached,omitempty"`
}

// AgentView is the answer to AgentQueryName: what one sub-agent does now.
type AgentView struct {
	Subtask     string  `json:"subtask"`
	Attempt     int     `json:"attempt"`
	Step        int     `json:"step"`
	MaxSteps    int     `json:"max_steps"`
	Tokens      int64   `json:"tokens"`
	CostUSD     float64 `json:"cost_usd"`
	CurrentTool string  `json:"current_tool,omitempty"`
	// CurrentKind is "model", "tool" or "git"; CurrentSince is when the
	// call in progress started (workflow time).
	CurrentKind  string    `json:"current_kind,omitempty"`
	CurrentSince time.Time `json:"current_since,omitzero"`
	LastStatus   string    `json:"last_status,omitempty"`
	Paused       bool      `json:"paused"`
	StartedAt    time.Time `json:"started_at"`
	// Recent are the sub-agent's latest tool calls, oldest first, at most
	// RecentToolCalls of them; `watch --verbose` prints those it has not
	// printed yet (by Seq).
	Recent []ToolEvent `json:"recent,omitempty"`
}

// RecentToolCalls bounds AgentView.Recent.
const RecentToolCalls = 32

// ToolEvent is one tool call of a sub-agent, numbered in the order it ran.
type ToolEvent struct {
	Seq   int       `json:"seq"`
	Step  int       `json:"step"`
	Time  time.Time `json:"time"`
	Brief string    `json:"brief"`
}
