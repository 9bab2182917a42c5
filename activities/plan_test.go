package activities

import (
	"reflect"
	"strings"
	"testing"

	"codeswarm/config"
)

const twoStepPlan = `{"subtasks":[
 {"name":"rename api","instruction":"Rename Foo to Bar in api/","specialty":"api","dependencies":[],"priority":2},
 {"name":"update docs","instruction":"Update the docs for Bar","dependencies":["rename api"],"priority":"high","needs_worktree":false}
]}`

func TestParsePlanAccepts(t *testing.T) {
	want := []Subtask{
		{ID: "01-rename-api", Name: "rename api", Instruction: "Rename Foo to Bar in api/", Specialty: "api",
			Dependencies: []string{}, Priority: 2, NeedsWorktree: true, Stage: 0},
		{ID: "02-update-docs", Name: "update docs", Instruction: "Update the docs for Bar",
			Dependencies: []string{"01-rename-api"}, Priority: 3, NeedsWorktree: false, Stage: 1},
	}
	tests := []struct {
		name    string
		content string
	}{
		{"plain JSON", twoStepPlan},
		{"json fence", "```json\n" + twoStepPlan + "\n```"},
		{"fence with prose", "Here is the plan:\n```json\n" + twoStepPlan + "\n```\nGood luck!"},
		{"bare fence", "```\n" + twoStepPlan + "\n```"},
		{"prose around the object", "Sure. " + twoStepPlan + " That is all."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePlan(tt.content, 5)
			if err != nil {
				t.Fatalf("ParsePlan: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("ParsePlan =\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestParsePlanPriority(t *testing.T) {
	tests := []struct {
		raw  string
		want int
	}{
		{`5`, 5}, {`2.0`, 2}, {`"high"`, 3}, {`"HIGH"`, 3}, {`"critical"`, 4}, {`"medium"`, 2},
		{`"low"`, 1}, {`"7"`, 7}, {`"whenever"`, 0}, {`null`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			got, err := ParsePlan(`{"subtasks":[{"name":"a","instruction":"do a","priority":`+tt.raw+`}]}`, 0)
			if err != nil {
				t.Fatalf("ParsePlan: %v", err)
			}
			if got[0].Priority != tt.want {
				t.Errorf("priority %s = %d, want %d", tt.raw, got[0].Priority, tt.want)
			}
		})
	}
	got, err := ParsePlan(`{"subtasks":[{"name":"a","instruction":"do a"}]}`, 0)
	if err != nil || got[0].Priority != 0 || !got[0].NeedsWorktree {
		t.Errorf("missing priority/needs_worktree = %+v, %v; want priority 0, needs_worktree true", got, err)
	}
}

func TestParsePlanStages(t *testing.T) {
	// a, b independent; c needs both; d needs c and a (duplicate dep listed
	// twice, by name with spaces); e needs b only.
	plan := `{"subtasks":[
	 {"name":"a","instruction":"x"},
	 {"name":"b","instruction":"x"},
	 {"name":"c","instruction":"x","dependencies":["a","b"]},
	 {"name":"d","instruction":"x","dependencies":["c"," a ","c"]},
	 {"name":"e","instruction":"x","dependencies":["b"]}]}`
	got, err := ParsePlan(plan, 10)
	if err != nil {
		t.Fatalf("ParsePlan: %v", err)
	}
	stages := map[string]int{}
	deps := map[string][]string{}
	for _, s := range got {
		stages[s.Name], deps[s.Name] = s.Stage, s.Dependencies
	}
	wantStages := map[string]int{"a": 0, "b": 0, "c": 1, "d": 2, "e": 1}
	if !reflect.DeepEqual(stages, wantStages) {
		t.Errorf("stages = %v, want %v", stages, wantStages)
	}
	if want := []string{"03-c", "01-a"}; !reflect.DeepEqual(deps["d"], want) {
		t.Errorf("deps of d = %v, want %v (IDs, deduplicated, in order)", deps["d"], want)
	}
}

func TestParsePlanRejects(t *testing.T) {
	tests := []struct {
		name    string
		content string
		max     int
		want    []string // substrings of the error
	}{
		{"no subtasks", `{"subtasks":[]}`, 5, []string{"no subtasks"}},
		{"missing subtasks key", `{"tasks":[{"name":"a"}]}`, 5, []string{"no subtasks"}},
		{"too many", `{"subtasks":[{"name":"a","instruction":"x"},{"name":"b","instruction":"x"},{"name":"c","instruction":"x"}]}`, 2,
			[]string{"3 subtasks", "at most 2"}},
		{"empty name", `{"subtasks":[{"name":"a","instruction":"x"},{"name":"  ","instruction":"x"}]}`, 5, []string{"subtask 2 has an empty name"}},
		{"empty instruction", `{"subtasks":[{"name":"a","instruction":" "}]}`, 5, []string{`"a" has an empty instruction`}},
		{"duplicate name", `{"subtasks":[{"name":"a","instruction":"x"},{"name":"a","instruction":"y"}]}`, 5, []string{`"a" is used twice`}},
		{"unknown dependency", `{"subtasks":[{"name":"a","instruction":"x","dependencies":["ghost"]}]}`, 5, []string{`"a" depends on unknown subtask "ghost"`}},
		{"cycle", `{"subtasks":[{"name":"a","instruction":"x","dependencies":["b"]},{"name":"b","instruction":"x","dependencies":["a"]}]}`, 5,
			[]string{"cycle", "a -> b -> a"}},
		{"self dependency", `{"subtasks":[{"name":"a","instruction":"x","dependencies":["a"]}]}`, 5, []string{"cycle", "a -> a"}},
		{"invalid JSON", `{"subtasks":[{"name":"a",}]}`, 5, []string{"not valid JSON"}},
		{"no object at all", "I cannot plan this task.", 5, []string{"no JSON object"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePlan(tt.content, tt.max)
			if err == nil {
				t.Fatalf("ParsePlan = %+v, want an error", got)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestSubtaskIDAndSlug(t *testing.T) {
	ids := []struct {
		index int
		name  string
		want  string
	}{
		{0, "Rename API", "01-rename-api"},
		{9, "  Add tests: unit & e2e!  ", "10-add-tests-unit-e2e"},
		{2, "!!!", "03-task"},
		{0, strings.Repeat("abcdefghij", 10), "01-" + strings.Repeat("abcdefghij", 4)},
	}
	for _, tt := range ids {
		if got := SubtaskID(tt.index, tt.name); got != tt.want {
			t.Errorf("SubtaskID(%d, %q) = %q, want %q", tt.index, tt.name, got, tt.want)
		}
		if again := SubtaskID(tt.index, tt.name); again != SubtaskID(tt.index, tt.name) {
			t.Errorf("SubtaskID(%d, %q) is not stable", tt.index, tt.name)
		}
	}
	slugs := []struct {
		in   string
		max  int
		want string
	}{
		{"Hello, World", 40, "hello-world"},
		{"--a--b--", 40, "a-b"},
		{"ab cd", 3, "ab"}, // a cut that ends on a separator loses it
		{"", 10, "task"},
		{"日本語", 10, "task"},
	}
	for _, tt := range slugs {
		if got := Slug(tt.in, tt.max); got != tt.want {
			t.Errorf("Slug(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}

func TestSingleTaskPlan(t *testing.T) {
	got := SingleTaskPlan("do everything")
	if len(got) != 1 || got[0].Instruction != "do everything" || !got[0].NeedsWorktree || got[0].ID != "01-main" {
		t.Errorf("SingleTaskPlan = %+v", got)
	}
}

func TestParseStatus(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{"last line", "I renamed it.\nSTATUS: completed", StatusCompleted},
		{"trailing blank lines", "Done.\nSTATUS: blocked\n\n", StatusBlocked},
		{"markdown bold line", "Done.\n**STATUS: completed**", StatusCompleted},
		{"markdown bold label", "Done.\n**STATUS:** pending", StatusPending},
		{"lowercase", "done\nstatus: completed", StatusCompleted},
		{"capitalised value with period", "Done.\nStatus: Completed.", StatusCompleted},
		{"missing", "I did some things.", ""},
		{"unknown value", "Done.\nSTATUS: done", ""},
		{"too far from the end", "STATUS: completed\n1\n2\n3\n4", ""},
		{"last status wins", "STATUS: completed\nActually no.\nSTATUS: blocked", StatusBlocked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseStatus(tt.text); got != tt.want {
				t.Errorf("ParseStatus(%q) = %q, want %q", tt.text, got, tt.want)
			}
		})
	}
}

func TestSubAgentUserPrompt(t *testing.T) {
	instr := "Rename `Foo` to `Bar`.\n\n  Keep the *exact* spacing.  "
	dep := "01-api: renamed the API (files: api.go)"
	got := SubAgentUserPrompt(instr, dep, "")
	if !strings.HasPrefix(got, "Complete this task:\n\n"+instr) {
		t.Fatalf("prompt does not start with the verbatim instruction:\n%s", got)
	}
	i, j := strings.Index(got, instr), strings.Index(got, dep)
	if j < 0 || j < i+len(instr) {
		t.Errorf("dependency context at %d, want after the instruction (ends at %d):\n%s", j, i+len(instr), got)
	}
	if plain := SubAgentUserPrompt(instr, "", ""); strings.Contains(plain, "Context from prior work") {
		t.Errorf("prompt without dependencies mentions prior work:\n%s", plain)
	}
	withConflict := SubAgentUserPrompt(instr, dep, "NOTE: conflict in a.go")
	if strings.Index(withConflict, "NOTE: conflict") < strings.Index(withConflict, dep) {
		t.Errorf("conflict note comes before the dependency context:\n%s", withConflict)
	}
}

func TestPlannerMessages(t *testing.T) {
	task := "Migrate every handler from net/http to chi; keep the tests green."
	sys, user := PlannerMessages(task, "by_domain", "main.go\napi/handler.go\n", 7)
	if !strings.Contains(user, task) {
		t.Errorf("user message lacks the task text:\n%s", user)
	}
	if !strings.Contains(user, "api/handler.go") {
		t.Errorf("user message lacks the repository listing:\n%s", user)
	}
	if !strings.Contains(sys, "At most 7 subtasks") {
		t.Errorf("system message lacks the subtask limit:\n%s", sys)
	}
	if !strings.Contains(sys, strategyGuidance["by_domain"]) {
		t.Errorf("system message lacks the by_domain guidance:\n%s", sys)
	}
	sys2, user2 := PlannerMessages(task, "no-such-strategy", "", 3)
	if !strings.Contains(sys2, strategyGuidance["automatic"]) {
		t.Errorf("unknown strategy does not fall back to automatic:\n%s", sys2)
	}
	if strings.Contains(user2, "Repository files") {
		t.Errorf("empty listing still announced:\n%s", user2)
	}
	for _, s := range config.Strategies() {
		if s != "none" && strategyGuidance[s] == "" {
			t.Errorf("strategy %q has no guidance", s)
		}
	}
}

func TestSubAgentSystemPrompt(t *testing.T) {
	st := Subtask{ID: "01-api", Specialty: "api"}
	got := SubAgentSystemPrompt(st, "/ws/run/01-api", "Run gofmt before finishing.")
	for _, w := range []string{"api specialist", "01-api", "/ws/run/01-api", "PROJECT INSTRUCTIONS (from AGENTS.md)", "Run gofmt before finishing.", "STATUS: completed"} {
		if !strings.Contains(got, w) {
			t.Errorf("system prompt lacks %q", w)
		}
	}
	if none := SubAgentSystemPrompt(Subtask{ID: "x"}, "/w", " \n"); strings.Contains(none, "AGENTS.md):") || !strings.Contains(none, "general specialist") {
		t.Errorf("system prompt without AGENTS.md or specialty is wrong:\n%s", none)
	}
}
