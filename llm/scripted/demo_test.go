package scripted_test

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	openai "github.com/sashabaranov/go-openai"

	"codeswarm/llm/scripted"
)

type planEntry struct {
	Name         string   `json:"name"`
	Instruction  string   `json:"instruction"`
	Dependencies []string `json:"dependencies"`
}

func demoPlan(t *testing.T, s scripted.Script) []planEntry {
	t.Helper()
	var plan struct {
		Subtasks []planEntry `json:"subtasks"`
	}
	if err := json.Unmarshal([]byte(s.Planner[0].Content), &plan); err != nil {
		t.Fatalf("planner reply is not a plan: %v", err)
	}
	return plan.Subtasks
}

// agentFor finds the agent a sub-agent with this instruction talks to.
func agentFor(t *testing.T, s scripted.Script, instruction string) scripted.Agent {
	t.Helper()
	var found []scripted.Agent
	for _, a := range s.Agents {
		if strings.Contains(instruction, a.Match) {
			found = append(found, a)
		}
	}
	if len(found) != 1 {
		t.Fatalf("instruction %q matches %d agents, want exactly 1", instruction, len(found))
	}
	return found[0]
}

func TestDemoScriptMatchesRepo(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go not on PATH")
	}
	base := t.TempDir()
	if err := scripted.WriteDemoRepo(base); err != nil {
		t.Fatalf("WriteDemoRepo: %v", err)
	}
	checkGit(t, base)
	s := scripted.DemoScript()
	plan := demoPlan(t, s)
	if len(plan) != 3 || len(plan[0].Dependencies)+len(plan[1].Dependencies) != 0 ||
		!slices.Equal(plan[2].Dependencies, []string{plan[0].Name, plan[1].Name}) {
		t.Fatalf("plan is not two independent subtasks then one depending on both: %+v", plan)
	}

	// Stage 0: each subtask in its own copy of the base, then merged.
	integration := copyTree(t, base)
	for _, st := range plan[:2] {
		tree := copyTree(t, base)
		if err := replay(tree, agentFor(t, s, st.Instruction)); err != nil {
			t.Fatalf("%s: %v", st.Name, err)
		}
		mergeInto(t, base, tree, integration)
	}
	runIn(t, integration, "go build ./...") // stage 0 alone leaves a building tree

	// Stage 1 on the merged result succeeds...
	final := agentFor(t, s, plan[2].Instruction)
	if err := replay(integration, final); err != nil {
		t.Fatalf("%s after merge: %v", plan[2].Name, err)
	}
	runIn(t, integration, "go build ./... && go vet ./... && go test ./...")
	// ...and fails on a base without stage 0's changes.
	if err := replay(copyTree(t, base), final); err == nil || !strings.Contains(err.Error(), "greet/greet.go") {
		t.Fatalf("%s without its dependencies' changes: err = %v, want its greet/greet.go edit to fail", plan[2].Name, err)
	}
	checkTurnShapes(t, s)
}

// replay applies an agent's tool calls to dir with the tools' semantics.
// A call with invalid JSON arguments is skipped: the tool would report it.
func replay(dir string, a scripted.Agent) error {
	for turn, r := range a.Turns {
		for _, tc := range r.ToolCalls {
			var args map[string]string
			if json.Unmarshal([]byte(tc.Arguments), &args) != nil {
				continue
			}
			if err := apply(dir, tc.Name, args); err != nil {
				return fmt.Errorf("turn %d %s: %w", turn, tc.Name, err)
			}
		}
	}
	return nil
}

func apply(dir, tool string, args map[string]string) error {
	p := filepath.Join(dir, filepath.FromSlash(args["path"]))
	switch tool {
	case "read", "list":
		_, err := os.Stat(p)
		return err
	case "write":
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, []byte(args["content"]), 0o644)
	case "edit":
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if n := strings.Count(string(data), args["old_string"]); n != 1 {
			return fmt.Errorf("%s: old_string occurs %d times, want 1", args["path"], n)
		}
		return os.WriteFile(p, []byte(strings.Replace(string(data), args["old_string"], args["new_string"], 1)), 0o644)
	case "bash":
		out, err := bashIn(dir, args["command"])
		if err != nil {
			return fmt.Errorf("%q: %w\n%s", args["command"], err, out)
		}
		return nil
	}
	return fmt.Errorf("unknown tool %q", tool)
}

func bashIn(dir, command string) ([]byte, error) {
	cmd := exec.Command("bash", "-c", command)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=", "GOTOOLCHAIN=local")
	return cmd.CombinedOutput()
}

func runIn(t *testing.T, dir, command string) {
	t.Helper()
	if out, err := bashIn(dir, command); err != nil {
		t.Fatalf("%s in %s: %v\n%s", command, dir, err, out)
	}
}

// checkTurnShapes checks what the demo promises about its agents: each
// ends with a completed final message, and exactly one call is malformed
// and directly followed by a valid call to the same tool.
func checkTurnShapes(t *testing.T, s scripted.Script) {
	t.Helper()
	malformed := 0
	tools := map[string]bool{}
	for _, a := range s.Agents {
		last := a.Turns[len(a.Turns)-1]
		if len(last.ToolCalls) != 0 || !strings.HasSuffix(last.Content, "STATUS: completed") {
			t.Errorf("%s: last turn %+v is not a final completed message", a.Match, last)
		}
		for i, r := range a.Turns {
			for _, tc := range r.ToolCalls {
				tools[tc.Name] = true
				if json.Valid([]byte(tc.Arguments)) {
					continue
				}
				malformed++
				next := a.Turns[i+1].ToolCalls
				if len(next) == 0 || next[0].Name != tc.Name || !json.Valid([]byte(next[0].Arguments)) {
					t.Errorf("%s turn %d: malformed call not followed by a corrected %s call", a.Match, i, tc.Name)
				}
			}
		}
	}
	if malformed != 1 {
		t.Errorf("%d malformed tool calls, want 1", malformed)
	}
	if got := slices.Sorted(maps.Keys(tools)); !slices.Equal(got, []string{"bash", "edit", "list", "read", "write"}) {
		t.Errorf("tools used: %v", got)
	}
}

func checkGit(t *testing.T, dir string) {
	t.Helper()
	for cmd, want := range map[string]string{
		"git rev-parse --abbrev-ref HEAD":        "main",
		"git rev-list --count HEAD":              "1",
		"git log -1 --format=%an":                "codeswarm",
		"git status --porcelain --untracked=all": "",
	} {
		out, err := bashIn(dir, cmd)
		if err != nil || strings.TrimSpace(string(out)) != want {
			t.Errorf("%s = %q (%v), want %q", cmd, out, err, want)
		}
	}
	if err := scripted.WriteDemoRepo(dir); err == nil {
		t.Error("WriteDemoRepo over an existing repository: no error")
	}
}

// copyTree copies src (without .git) into a new temporary directory.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			if d.Name() == ".git" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
	return dst
}

// mergeInto copies the files tree changed relative to base into dst,
// failing on a file dst already changed differently (a merge conflict).
func mergeInto(t *testing.T, base, tree, dst string) {
	t.Helper()
	err := filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(tree, p)
		mine, _ := os.ReadFile(p)
		orig, baseErr := os.ReadFile(filepath.Join(base, rel))
		if baseErr == nil && string(orig) == string(mine) {
			return nil
		}
		theirs, dstErr := os.ReadFile(filepath.Join(dst, rel))
		if dstErr == nil && string(theirs) != string(orig) && string(theirs) != string(mine) {
			return fmt.Errorf("conflict on %s", rel)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dst, rel)), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), mine, 0o644)
	})
	if err != nil {
		t.Fatalf("merge %s: %v", tree, err)
	}
}

// TestDemoScriptOverHTTP runs each demo subtask's conversation against the
// server the way a sub-agent loop does, answering every tool call.
func TestDemoScriptOverHTTP(t *testing.T) {
	s := scripted.DemoScript()
	srv := start(t, s)
	c := client(srv)
	planMsg := content(t, c, openai.ChatCompletionRequest{Model: "m", Messages: []openai.ChatCompletionMessage{
		{Role: "user", Content: scripted.DemoTask}}})
	if planMsg.Content != s.Planner[0].Content {
		t.Fatalf("planner got %q", planMsg.Content)
	}
	for _, st := range demoPlan(t, s) {
		req := openai.ChatCompletionRequest{Model: "m", Tools: []openai.Tool{readTool}, Messages: []openai.ChatCompletionMessage{
			{Role: "system", Content: "You are a sub-agent."},
			{Role: "user", Content: st.Instruction},
		}}
		turns := 0
		for ; turns < 20; turns++ {
			msg := content(t, c, req)
			req.Messages = append(req.Messages, msg)
			if len(msg.ToolCalls) == 0 {
				if !strings.HasSuffix(msg.Content, "STATUS: completed") {
					t.Fatalf("%s: final message %q", st.Name, msg.Content)
				}
				break
			}
			for _, tc := range msg.ToolCalls {
				req.Messages = append(req.Messages, openai.ChatCompletionMessage{Role: "tool", ToolCallID: tc.ID, Content: "ok"})
			}
		}
		if want := len(agentFor(t, s, st.Instruction).Turns) - 1; turns != want {
			t.Fatalf("%s: finished after %d tool turns, want %d", st.Name, turns, want)
		}
	}
}
