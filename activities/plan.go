package activities

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

type rawPlan struct {
	Subtasks []rawSubtask `json:"subtasks"`
}

type rawSubtask struct {
	Name          string          `json:"name"`
	Instruction   string          `json:"instruction"`
	Specialty     string          `json:"specialty"`
	Dependencies  []string        `json:"dependencies"`
	Priority      json.RawMessage `json:"priority"`
	NeedsWorktree *bool           `json:"needs_worktree"`
}

// ParsePlan extracts, parses and validates a planner answer. It tolerates a
// ```json fence and prose around the JSON object. Errors say what to fix, so
// they can be sent back to the model in the repair round.
func ParsePlan(content string, maxSubtasks int) ([]Subtask, error) {
	body, err := extractJSON(content)
	if err != nil {
		return nil, err
	}
	var rp rawPlan
	dec := json.NewDecoder(strings.NewReader(body))
	if err := dec.Decode(&rp); err != nil {
		return nil, fmt.Errorf("plan is not valid JSON of the form {\"subtasks\":[...]}: %v", err)
	}
	return validatePlan(rp.Subtasks, maxSubtasks)
}

func extractJSON(content string) (string, error) {
	s := strings.TrimSpace(content)
	if i := strings.Index(s, "```"); i >= 0 {
		rest := s[i+3:]
		rest = strings.TrimPrefix(rest, "json")
		rest = strings.TrimPrefix(rest, "JSON")
		if j := strings.Index(rest, "```"); j >= 0 {
			s = strings.TrimSpace(rest[:j])
		}
	}
	start, end := strings.Index(s, "{"), strings.LastIndex(s, "}")
	if start < 0 || end < start {
		return "", errors.New("plan contains no JSON object; answer with {\"subtasks\":[...]} only")
	}
	return s[start : end+1], nil
}

func validatePlan(raw []rawSubtask, maxSubtasks int) ([]Subtask, error) {
	if len(raw) == 0 {
		return nil, errors.New("plan has no subtasks")
	}
	if maxSubtasks > 0 && len(raw) > maxSubtasks {
		return nil, fmt.Errorf("plan has %d subtasks; at most %d are allowed: merge related ones", len(raw), maxSubtasks)
	}
	index := make(map[string]int, len(raw))
	var problems []string
	for i, r := range raw {
		name := strings.TrimSpace(r.Name)
		switch {
		case name == "":
			problems = append(problems, fmt.Sprintf("subtask %d has an empty name", i+1))
		case index[name] != 0:
			problems = append(problems, fmt.Sprintf("subtask name %q is used twice", name))
		default:
			index[name] = i + 1
		}
		if strings.TrimSpace(r.Instruction) == "" {
			problems = append(problems, fmt.Sprintf("subtask %q has an empty instruction", name))
		}
	}
	for _, r := range raw {
		for _, d := range r.Dependencies {
			if index[strings.TrimSpace(d)] == 0 {
				problems = append(problems, fmt.Sprintf("subtask %q depends on unknown subtask %q", r.Name, d))
			}
		}
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	subtasks := make([]Subtask, len(raw))
	ids := make(map[string]string, len(raw))
	for i, r := range raw {
		ids[strings.TrimSpace(r.Name)] = SubtaskID(i, r.Name)
	}
	for i, r := range raw {
		needs := true
		if r.NeedsWorktree != nil {
			needs = *r.NeedsWorktree
		}
		deps := make([]string, 0, len(r.Dependencies))
		for _, d := range r.Dependencies {
			id := ids[strings.TrimSpace(d)]
			if !slices.Contains(deps, id) {
				deps = append(deps, id)
			}
		}
		subtasks[i] = Subtask{
			ID:            ids[strings.TrimSpace(r.Name)],
			Name:          strings.TrimSpace(r.Name),
			Instruction:   r.Instruction,
			Specialty:     r.Specialty,
			Dependencies:  deps,
			Priority:      parsePriority(r.Priority),
			NeedsWorktree: needs,
		}
	}
	if err := assignStages(subtasks); err != nil {
		return nil, err
	}
	return subtasks, nil
}

// assignStages sets Stage = 1 + max(stage of dependencies) and rejects cycles.
func assignStages(subtasks []Subtask) error {
	pos := make(map[string]int, len(subtasks))
	for i, s := range subtasks {
		pos[s.ID] = i
	}
	const unvisited, visiting, done = 0, 1, 2
	state := make([]int, len(subtasks))
	var visit func(i int, path []string) error
	visit = func(i int, path []string) error {
		switch state[i] {
		case done:
			return nil
		case visiting:
			return fmt.Errorf("plan has a dependency cycle: %s -> %s", strings.Join(path, " -> "), subtasks[i].Name)
		}
		state[i] = visiting
		stage := 0
		for _, d := range subtasks[i].Dependencies {
			j := pos[d]
			if err := visit(j, append(path, subtasks[i].Name)); err != nil {
				return err
			}
			stage = max(stage, subtasks[j].Stage+1)
		}
		subtasks[i].Stage = stage
		state[i] = done
		return nil
	}
	for i := range subtasks {
		if err := visit(i, nil); err != nil {
			return err
		}
	}
	return nil
}

func parsePriority(raw json.RawMessage) int {
	if len(raw) == 0 {
		return 0
	}
	var n float64
	if json.Unmarshal(raw, &n) == nil {
		return int(n)
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "critical", "highest":
			return 4
		case "high":
			return 3
		case "medium", "normal":
			return 2
		case "low":
			return 1
		}
		if v, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
			return v
		}
	}
	return 0
}

// SubtaskID derives a stable, branch-safe ID from the plan position and name.
func SubtaskID(index int, name string) string {
	return fmt.Sprintf("%02d-%s", index+1, Slug(name, 40))
}

// Slug lowercases s and keeps [a-z0-9], joining runs of anything else with '-'.
func Slug(s string, maxLen int) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
		if b.Len() >= maxLen {
			break
		}
	}
	out := strings.Trim(b.String(), "-")
	if out == "" {
		return "task"
	}
	return out
}

// SingleTaskPlan is the fallback plan: the whole task as one subtask.
func SingleTaskPlan(task string) []Subtask {
	return []Subtask{{
		ID:            SubtaskID(0, "main"),
		Name:          "main",
		Instruction:   task,
		Specialty:     "generalist",
		Dependencies:  []string{},
		NeedsWorktree: true,
	}}
}
