package workflows

import (
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"codeswarm/activities"
)

// taskState is where a subtask is: waiting, running or ended.
type taskState int

const (
	statePending taskState = iota
	stateRunning
	stateDone
)

// Task is the run's record of one subtask: its plan entry, its current
// attempt and its result. A run that continues as new carries its tasks as
// they are (the exported fields; their JSON names are those of v0.1.0).
type Task struct {
	Sub      activities.Subtask       `json:"sub"`
	State    taskState                `json:"state"`
	Attempt  int                      `json:"attempt,omitempty"`
	Reserved int                      `json:"reserved,omitempty"` // steps held by its running sub-agent
	Conflict *activities.ConflictInfo `json:"conflict,omitempty"`
	// First is the first attempt when a conflict caused a re-run, without
	// its result text (the result counts only its figures and branch).
	First *SubAgentResult `json:"first,omitempty"`
	// LastWorktree is the worktree of the attempt that ended last.
	LastWorktree string                   `json:"last_worktree,omitempty"`
	Res          activities.SubtaskResult `json:"res"`
	// Started and Ended time the current attempt; LastEvent is the
	// subtask's latest event, for the live table.
	Started   time.Time `json:"started"`
	Ended     time.Time `json:"ended"`
	LastEvent string    `json:"last_event,omitempty"`
	// ChildID and Branch name the running sub-agent; ResumeFrom is its
	// branch on the host the run left.
	ChildID    string      `json:"child_id,omitempty"`
	Branch     string      `json:"branch,omitempty"`
	ResumeFrom string      `json:"resume_from,omitempty"`
	Control    TaskControl `json:"ctl"`

	// future is the sub-agent this run started (nil for one an earlier
	// run started, and for a subtask not running).
	future workflow.ChildWorkflowFuture
	// last is the result of the attempt that ended last, which its merge
	// and a conflict re-run read in the same workflow task.
	last SubAgentResult
}

// TaskControl is the run's ledger of one running sub-agent (its allowance
// and what it last reported) and the notes waiting for a subtask that has
// not started.
type TaskControl struct {
	GrantTokens int64            `json:"grant_tokens,omitempty"`
	GrantUSD    float64          `json:"grant_usd,omitempty"`
	Usage       activities.Usage `json:"usage"`
	Step        int              `json:"step,omitempty"`
	Ask         *BudgetReport    `json:"ask,omitempty"`
	Notes       []string         `json:"notes,omitempty"`
}

// removableWorktrees are the worktrees whose work is safely merged.
func (t *Task) removableWorktrees() []string {
	var out []string
	if t.Res.Merge == activities.MergeMerged && t.LastWorktree != "" {
		out = append(out, t.LastWorktree)
	}
	if t.First != nil && t.Res.Merge == activities.MergeMerged && t.First.Worktree != "" {
		out = append(out, t.First.Worktree) // its commit stays on its branch
	}
	return out
}

// inherited: t's sub-agent runs, started by an earlier run of the chain.
func (t *Task) inherited() bool { return t.State == stateRunning && t.future == nil }

// tableState is the part of the plan a run carries on.
type tableState struct {
	Tasks   []*Task `json:"tasks"`
	Running int     `json:"running"`
	Spawned int     `json:"spawned"`
}

// taskTable is the run's plan: its subtasks in plan order and how many
// sub-agents run and have been started.
type taskTable struct {
	tableState
	// progressed counts sub-agents started and ended by this run (not
	// carried: a new run has to move on before it hands over again).
	progressed int
}

func (p *taskTable) byID(id string) *Task {
	for _, t := range p.Tasks {
		if t.Sub.ID == id {
			return t
		}
	}
	return nil
}

// depsSatisfied: every dependency finished successfully (and, with
// auto-merge, its change is on the integration branch).
func (p *taskTable) depsSatisfied(t *Task) bool {
	for _, d := range t.Sub.Dependencies {
		dep := p.byID(d)
		if dep == nil || dep.State != stateDone || !dep.Res.Success {
			return false
		}
	}
	return true
}

// ready lists pending subtasks whose dependencies are met, highest priority
// first, then plan order.
func (p *taskTable) ready() []*Task {
	var out []*Task
	for _, t := range p.Tasks {
		if t.State == statePending && p.depsSatisfied(t) {
			out = append(out, t)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Sub.Priority > out[j].Sub.Priority })
	return out
}

func (p *taskTable) count(st taskState) int {
	n := 0
	for _, t := range p.Tasks {
		if t.State == st {
			n++
		}
	}
	return n
}

func (p *taskTable) hasPending() bool { return p.count(statePending) > 0 }

func (p *taskTable) countRunning() int { return p.count(stateRunning) }

// running lists the subtasks whose sub-agent runs.
func (p *taskTable) running() []*Task {
	var out []*Task
	for _, t := range p.Tasks {
		if t.State == stateRunning {
			out = append(out, t)
		}
	}
	return out
}

func (p *taskTable) knownIDs() string {
	ids := make([]string, len(p.Tasks))
	for i, t := range p.Tasks {
		ids[i] = t.Sub.ID
	}
	if len(ids) == 0 {
		return "none yet: the run has not planned"
	}
	return strings.Join(ids, ", ")
}

func (p *taskTable) anyMerged() bool {
	for _, t := range p.Tasks {
		if t.Res.Merge == activities.MergeMerged {
			return true
		}
	}
	return false
}

// allSucceeded: the run planned, and every subtask succeeded.
func (p *taskTable) allSucceeded() bool {
	if len(p.Tasks) == 0 {
		return false
	}
	for _, t := range p.Tasks {
		if !t.Res.Success {
			return false
		}
	}
	return true
}

// rerunFits reports whether a sub-agent beyond the plan (a conflict
// re-run) fits under maxSubagents, counting the ones already spawned and
// a slot for every planned subtask that has not started yet.
func (p *taskTable) rerunFits(maxSubagents int) bool {
	return p.Spawned+p.count(statePending) < maxSubagents
}

// inherited finds the running subtask whose sub-agent an earlier run
// started (it has no future in this run).
func (p *taskTable) inherited(childID string) *Task {
	for _, t := range p.Tasks {
		if t.inherited() && t.ChildID == childID {
			return t
		}
	}
	return nil
}

// ownRunning counts the running sub-agents this run started (an
// inherited one has no future here).
func (p *taskTable) ownRunning() int {
	n := 0
	for _, t := range p.Tasks {
		if t.State == stateRunning && t.future != nil {
			n++
		}
	}
	return n
}

// hasInherited: a sub-agent an earlier run started is running.
func (p *taskTable) hasInherited() bool {
	for _, t := range p.Tasks {
		if t.inherited() {
			return true
		}
	}
	return false
}

// endWaiting reports whether a sub-agent this run started, other than
// except, has ended and its end is not recorded yet.
func (p *taskTable) endWaiting(except *Task) bool {
	for _, t := range p.Tasks {
		if t != except && t.State == stateRunning && t.future != nil && t.future.IsReady() {
			return true
		}
	}
	return false
}
