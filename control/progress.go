package control

import "time"

// Event is one line of a run's progress, read by the CLI through ProgressQueryName.
type Event struct {
	Seq     int       `json:"seq"`
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"` // planned, started, finished, merged, conflict, failed, blocked, verify, done
	Subtask string    `json:"subtask,omitempty"`
	Message string    `json:"message"`
}

// Progress is the answer to ProgressQueryName.
type Progress struct {
	Phase    string  `json:"phase"`
	Subtasks int     `json:"subtasks"`
	Events   []Event `json:"events"`
	// State is a RunState*; StateReason says why (a pause's reason, the cap
	// that was reached, the host waited for and since when).
	State       string        `json:"state,omitempty"`
	StateReason string        `json:"state_reason,omitempty"`
	Host        string        `json:"host,omitempty"` // the run's workspace host
	Budget      BudgetView    `json:"budget"`
	Rows        []SubtaskView `json:"rows,omitempty"`
}
