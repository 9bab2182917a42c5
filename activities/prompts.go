package activities

import (
	"fmt"
	"strings"
)

var strategyGuidance = map[string]string{
	"automatic": "Choose the decomposition that maximises safe parallelism: independent subtasks run at the same time, each in its own copy of the repository.",
	"by_domain": "Decompose by domain or specialty (for example API, storage, CLI, tests, docs): one subtask per area of the code base.",
	"by_data":   "Decompose by data partition: split the files, packages or modules the task touches into disjoint groups and give each group to one subtask.",
	"by_stage":  "Decompose by workflow stage (for example analyse, implement, test, document), chaining the stages through dependencies.",
}

// PlannerMessages builds the planner conversation (no tools). The task text is
// the user message; repo is a short listing of the repository.
func PlannerMessages(task, strategy, repo string, maxSubtasks int) (system, user string) {
	guide := strategyGuidance[strategy]
	if guide == "" {
		guide = strategyGuidance["automatic"]
	}
	system = fmt.Sprintf(`You are the planner of codeswarm, which runs a refactor as a swarm of sub-agents. Each sub-agent works alone in its own git worktree with tools to read, edit and run commands; finished subtasks are merged one by one into an integration branch, and a subtask starts only after every subtask it depends on has been merged.

%s

Rules:
- At most %d subtasks. Prefer few, substantial subtasks over many tiny ones.
- Subtasks that run in parallel must not edit the same lines of the same files; otherwise make one depend on the other.
- "dependencies" lists the names of earlier subtasks whose merged changes this one needs.
- "instruction" is complete and self-contained: the sub-agent sees only it and its dependencies' summaries.
- "needs_worktree" is false only for read-only work (analysis, review) that must not change files.
- "priority" is an integer; higher runs first when several subtasks are ready.

Answer with JSON only, no prose:
{"subtasks":[{"name":"short-name","instruction":"...","specialty":"...","dependencies":[],"priority":1,"needs_worktree":true}]}`, guide, maxSubtasks)
	user = "Task:\n" + task
	if strings.TrimSpace(repo) != "" {
		user += "\n\nRepository files (partial listing):\n" + repo
	}
	return system, user
}

// RepairMessage asks the planner to fix an invalid plan.
func RepairMessage(problem string) string {
	return "Your plan is invalid: " + problem + "\nReply with the corrected plan as JSON only, in the same format."
}

// SubAgentSystemPrompt is the sub-agent's system message.
func SubAgentSystemPrompt(st Subtask, workdir, agentsMD string) string {
	specialty := st.Specialty
	if specialty == "" {
		specialty = "general"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `You are a %s specialist sub-agent (ID: %s) of codeswarm. You work alone in your own git worktree; other sub-agents work in parallel in theirs, and your changes are merged into the integration branch after you finish.

WORKING DIRECTORY: %s
All paths are relative to this directory; nothing outside it is reachable.

IMPORTANT: You MUST use tools to make changes. Do not just describe what to do - do it.

Available tools:
- read: read a file (numbered lines; offset/limit for large files)
- write: create or overwrite a file
- edit: replace one exact occurrence of old_string with new_string (or every occurrence with replace_all)
- multiedit: several edits to one file, all or nothing
- glob: find files by pattern (** matches directories)
- grep: search file contents with a regular expression
- bash: run a shell command in the working directory (builds, tests, formatters)
- list: list a directory
- swarm_share: share results with the other sub-agents of this run

SHARING RESULTS:
- swarm_share({action: "publish", key: "my-finding", value: "...", tags: ["research"]})
- swarm_share({action: "get", key: "some-key"})
- swarm_share({action: "query_tags", tags: ["research"]}), swarm_share({action: "query_prefix", prefix: "api/"}), swarm_share({action: "list"})

Do not run git commit, git checkout or git reset: codeswarm commits your work when you finish.

When you are done, reply without tool calls: a brief summary of what you did, whose last line is exactly one of
STATUS: completed
STATUS: blocked
STATUS: pending
(completed = the task is fully done; blocked = you cannot proceed, say why; pending = work remains).`, specialty, st.ID, workdir)
	if strings.TrimSpace(agentsMD) != "" {
		b.WriteString("\n\nPROJECT INSTRUCTIONS (from AGENTS.md):\n")
		b.WriteString(agentsMD)
	}
	return b.String()
}

// SubAgentUserPrompt puts the instruction first, verbatim, then the context.
func SubAgentUserPrompt(instruction, depContext, conflict string) string {
	var b strings.Builder
	b.WriteString("Complete this task:\n\n")
	b.WriteString(instruction)
	if depContext != "" {
		b.WriteString("\n\nContext from prior work:\n")
		b.WriteString(depContext)
	}
	if conflict != "" {
		b.WriteString("\n\n")
		b.WriteString(conflict)
	}
	return b.String()
}

// ParseStatus finds the STATUS line at the end of a final message.
func ParseStatus(text string) string {
	lines := strings.Split(strings.TrimSpace(text), "\n")
	for i := len(lines) - 1; i >= 0 && i >= len(lines)-3; i-- {
		l := strings.TrimSpace(strings.Trim(lines[i], "*`_ "))
		up := strings.ToUpper(l)
		if idx := strings.Index(up, "STATUS:"); idx >= 0 {
			v := strings.ToLower(strings.TrimSpace(strings.Trim(l[idx+len("STATUS:"):], "*`_ .")))
			switch v {
			case StatusCompleted, StatusBlocked, StatusPending:
				return v
			}
			return ""
		}
	}
	return ""
}
