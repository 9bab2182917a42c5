package scripted

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// DemoTask is the task text `codeswarm demo` runs against WriteDemoRepo.
const DemoTask = "Rename greet.Hello to greet.Greet, document the mathx package and add " +
	"mathx.Mean, then update main.go to print the greeting with greet.Greet and the mean of " +
	"the numbers with mathx.Mean. The module must build and its tests must pass."

// Demo subtask markers. Each is unique to its subtask's instruction and is
// the Match of its scripted agent. The stage-1 marker is the longest on
// purpose: if dependency context quoting a stage-0 instruction ends up in
// the first user message, the longest match still picks the right agent.
const (
	demoRenameGreet = "[demo:rename-greet]"
	demoMathxDocs   = "[demo:mathx-docs]"
	demoUpdateMain  = "[demo:update-main-after-merge]"
)

// demoFile is one file of the demo repository.
type demoFile struct{ path, content string }

func demoFiles() []demoFile {
	return []demoFile{
		{"go.mod", "module demo\n\ngo 1.22\n"},
		{"README.md", "# demo\n\nA tiny module that codeswarm's demo refactors.\n"},
		{"main.go", `package main

import (
	"fmt"

	"demo/greet"
	"demo/mathx"
)

func main() {
	nums := []int{1, 2, 3, 4}
	fmt.Println(greet.Hello("world"))
	fmt.Println("sum:", mathx.Sum(nums))
}
`},
		{"greet/greet.go", `package greet

import "fmt"

func Hello(name string) string {
	return fmt.Sprintf("Hello, %s!", name)
}
`},
		{"greet/greet_test.go", `package greet

import "testing"

func TestHello(t *testing.T) {
	if got := Hello("Ada"); got != "Hello, Ada!" {
		t.Fatalf("Hello(Ada) = %q", got)
	}
}
`},
		{"mathx/mathx.go", `package mathx

func Sum(xs []int) int {
	total := 0
	for _, x := range xs {
		total += x
	}
	return total
}
`},
		{"mathx/mathx_test.go", `package mathx

import "testing"

func TestSum(t *testing.T) {
	if got := Sum([]int{1, 2, 3}); got != 6 {
		t.Fatalf("Sum = %d, want 6", got)
	}
}
`},
	}
}

// WriteDemoRepo creates the demo Go module in dir (created if missing) as a
// git repository on branch "main" with one commit by "codeswarm".
func WriteDemoRepo(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, ".git")); err == nil {
		return fmt.Errorf("write demo repo: %s is already a git repository", dir)
	}
	for _, f := range demoFiles() {
		p := filepath.Join(dir, filepath.FromSlash(f.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("write demo repo: %w", err)
		}
		if err := os.WriteFile(p, []byte(f.content), 0o644); err != nil {
			return fmt.Errorf("write demo repo: %w", err)
		}
	}
	for _, args := range [][]string{
		{"init", "--quiet", "--initial-branch=main"},
		{"add", "--all"},
		{"commit", "--quiet", "--no-gpg-sign", "-m", "demo: initial commit"},
	} {
		if err := git(dir, args...); err != nil {
			return fmt.Errorf("write demo repo: %w", err)
		}
	}
	return nil
}

// git runs git in dir with a fixed identity and without the user's or the
// system's config, so hooks, signing or templates cannot interfere.
func git(dir string, args ...string) error {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=codeswarm", "GIT_AUTHOR_EMAIL=codeswarm@localhost",
		"GIT_COMMITTER_NAME=codeswarm", "GIT_COMMITTER_EMAIL=codeswarm@localhost",
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull,
	)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// DemoScript is the script for DemoTask on WriteDemoRepo: a two-stage plan
// (rename-greet and mathx-docs in parallel, then update-main) whose agents
// make exactly the edits the repository needs. mathx-docs sends one tool
// call with invalid JSON arguments and then the corrected call, to show
// recovery; update-main edits text that only exists once rename-greet has
// been merged, so it fails if it runs on a stale base.
func DemoScript() Script {
	return Script{
		Planner: []Reply{{Content: demoPlan()}},
		Agents: []Agent{
			{Match: demoRenameGreet, Turns: renameGreetTurns()},
			{Match: demoMathxDocs, Turns: mathxDocsTurns()},
			{Match: demoUpdateMain, Turns: updateMainTurns()},
		},
		Summary: &Reply{Content: "Summary: the command succeeded; no errors or warnings."},
	}
}

func demoPlan() string {
	type subtask struct {
		Name          string   `json:"name"`
		Instruction   string   `json:"instruction"`
		Specialty     string   `json:"specialty"`
		Dependencies  []string `json:"dependencies"`
		Priority      int      `json:"priority"`
		NeedsWorktree bool     `json:"needs_worktree"`
	}
	plan := struct {
		Subtasks []subtask `json:"subtasks"`
	}{Subtasks: []subtask{
		{"rename-greet", demoRenameGreet + " In greet/greet.go rename Hello to Greet and document it; " +
			"keep Hello as a deprecated wrapper so callers still build. Update greet's tests.",
			"Go refactoring", []string{}, 2, true},
		{"mathx-docs", demoMathxDocs + " Document package mathx and Sum, and add " +
			"func Mean(xs []int) float64 (0 for an empty slice) with a test.",
			"Go documentation", []string{}, 1, true},
		{"update-main", demoUpdateMain + " Make main.go call greet.Greet and print mathx.Mean of the " +
			"numbers, remove the deprecated greet.Hello, then run go build ./... && go test ./....",
			"Go integration", []string{"rename-greet", "mathx-docs"}, 1, true},
	}}
	return mustJSON(plan)
}

func renameGreetTurns() []Reply {
	return []Reply{
		{ToolCalls: []ToolCall{
			call("list", map[string]string{"path": "greet"}),
			call("read", map[string]string{"path": "greet/greet.go"}),
		}},
		{Content: "Renaming Hello to Greet, keeping a deprecated wrapper.", ToolCalls: []ToolCall{
			editCall("greet/greet.go",
				"package greet\n\nimport \"fmt\"\n\nfunc Hello(name string) string {\n\treturn fmt.Sprintf(\"Hello, %s!\", name)\n}\n",
				"// Package greet builds greetings.\npackage greet\n\nimport \"fmt\"\n\n"+
					"// Greet returns a friendly greeting for name.\nfunc Greet(name string) string {\n\treturn fmt.Sprintf(\"Hello, %s!\", name)\n}\n\n"+
					deprecatedHello),
		}},
		{ToolCalls: []ToolCall{
			call("write", map[string]string{"path": "greet/greet_test.go", "content": "package greet\n\nimport \"testing\"\n\n" +
				"func TestGreet(t *testing.T) {\n\tif got := Greet(\"Ada\"); got != \"Hello, Ada!\" {\n\t\tt.Fatalf(\"Greet(Ada) = %q\", got)\n\t}\n}\n"}),
		}},
		{ToolCalls: []ToolCall{call("bash", map[string]string{"command": "go test ./greet/"})}},
		{Content: "Renamed greet.Hello to greet.Greet with a doc comment; Hello remains as a deprecated wrapper.\nSTATUS: completed"},
	}
}

// deprecatedHello is the wrapper rename-greet leaves and update-main removes.
const deprecatedHello = "// Hello returns a friendly greeting for name.\n//\n" +
	"// Deprecated: use Greet.\nfunc Hello(name string) string {\n\treturn Greet(name)\n}\n"

func mathxDocsTurns() []Reply {
	const oldSum = "package mathx\n\nfunc Sum(xs []int) int {"
	const newSum = "// Package mathx has small integer helpers.\npackage mathx\n\n" +
		"// Sum returns the sum of xs.\nfunc Sum(xs []int) int {"
	return []Reply{
		{ToolCalls: []ToolCall{call("read", map[string]string{"path": "mathx/mathx.go"})}},
		// Cut off mid-object, as models sometimes do: the tool must report it
		// and the next turn retries with valid JSON.
		{ToolCalls: []ToolCall{{Name: "edit", Arguments: `{"path": "mathx/mathx.go", "old_string": "package mathx\n\nfunc Sum(`}}},
		{Content: "The previous call was malformed; retrying.", ToolCalls: []ToolCall{editCall("mathx/mathx.go", oldSum, newSum)}},
		{ToolCalls: []ToolCall{
			call("write", map[string]string{"path": "mathx/mean.go", "content": "package mathx\n\n" +
				"// Mean returns the arithmetic mean of xs, or 0 for an empty slice.\n" +
				"func Mean(xs []int) float64 {\n\tif len(xs) == 0 {\n\t\treturn 0\n\t}\n" +
				"\treturn float64(Sum(xs)) / float64(len(xs))\n}\n"}),
			call("write", map[string]string{"path": "mathx/mean_test.go", "content": "package mathx\n\nimport \"testing\"\n\n" +
				"func TestMean(t *testing.T) {\n\tif got := Mean([]int{1, 2, 3, 4}); got != 2.5 {\n\t\tt.Fatalf(\"Mean = %v, want 2.5\", got)\n\t}\n" +
				"\tif got := Mean(nil); got != 0 {\n\t\tt.Fatalf(\"Mean(nil) = %v, want 0\", got)\n\t}\n}\n"}),
		}},
		{ToolCalls: []ToolCall{call("bash", map[string]string{"command": "go test ./mathx/"})}},
		{Content: "Documented package mathx and Sum, added Mean with a test.\nSTATUS: completed"},
	}
}

func updateMainTurns() []Reply {
	return []Reply{
		{ToolCalls: []ToolCall{
			call("read", map[string]string{"path": "main.go"}),
			call("read", map[string]string{"path": "greet/greet.go"}),
		}},
		{ToolCalls: []ToolCall{editCall("main.go",
			"\tfmt.Println(greet.Hello(\"world\"))\n\tfmt.Println(\"sum:\", mathx.Sum(nums))\n",
			"\tfmt.Println(greet.Greet(\"world\"))\n\tfmt.Println(\"sum:\", mathx.Sum(nums), \"mean:\", mathx.Mean(nums))\n")}},
		// Only present after rename-greet is merged: on a stale base this
		// edit fails and so does the build below.
		{ToolCalls: []ToolCall{editCall("greet/greet.go", "}\n\n"+deprecatedHello, "}\n")}},
		{ToolCalls: []ToolCall{call("bash", map[string]string{"command": "go build ./... && go test ./..."})}},
		{Content: "main.go now uses greet.Greet and mathx.Mean; the deprecated Hello is gone; build and tests pass.\nSTATUS: completed"},
	}
}

func call(name string, args any) ToolCall {
	return ToolCall{Name: name, Arguments: mustJSON(args)}
}

func editCall(path, oldString, newString string) ToolCall {
	return call("edit", map[string]string{"path": path, "old_string": oldString, "new_string": newString})
}

// mustJSON encodes values built from literals in this file, which cannot
// fail to encode; a failure is a programming error.
func mustJSON(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(errors.Join(errors.New("scripted: encode demo JSON"), err))
	}
	return strings.TrimSuffix(b.String(), "\n")
}
