package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"codeswarm/llm/scripted"
)

// agentSpec is one scripted sub-agent: calls model requests (the last one
// is the final answer), each answered after latency.
type agentSpec struct {
	name  string
	deps  []string
	calls int
}

// workload is one benchmark's plan.
type workload struct {
	agents  []agentSpec
	latency time.Duration
	// readOnly makes every tool step a read (B4); otherwise steps alternate
	// read and edit of the agent's own file.
	readOnly bool
	// lean: the scripted model keeps no request bodies (B8's 150,000
	// conversations) and the server keeps its state in a SQLite file, as
	// `codeswarm run` does, not in memory: the process's RSS is then the
	// server's, the worker's and the CLI's own.
	lean bool
	// files, when more than the agents, pads the repository with the
	// files of agents that are not in the plan (B8 at a smaller width on
	// the same tree: CODESWARM_BENCH_B8_AGENTS).
	files int
}

func (w workload) match(i int) string { return fmt.Sprintf("[bench:%s]", w.agents[i].name) }

// agentFile is the file agent i reads and edits: one line per edit token,
// so every edit is distinct and no merge conflicts with another agent.
func agentFile(i int) string { return fmt.Sprintf("agents/a%04d.txt", i) }

func token(step int) string { return fmt.Sprintf("tok-%04d-old", step) }

// repoFiles is the repository every run starts from.
func (w workload) repoFiles() map[string]string {
	files := map[string]string{"README.md": "# bench fixture\n"}
	for i := range max(len(w.agents), w.files) {
		a := w.agents[min(i, len(w.agents)-1)]
		var b strings.Builder
		for s := 0; s < a.calls; s++ {
			fmt.Fprintf(&b, "line %d: %s some text that a model would read\n", s, token(s))
		}
		files[agentFile(i)] = b.String()
	}
	return files
}

// script is what the scripted model answers: the plan, then each agent's
// tool steps and final answer, every reply after w.latency.
func (w workload) script() scripted.Script {
	type entry struct {
		Name         string   `json:"name"`
		Instruction  string   `json:"instruction"`
		Specialty    string   `json:"specialty"`
		Dependencies []string `json:"dependencies"`
		Priority     int      `json:"priority"`
		NeedsWT      bool     `json:"needs_worktree"`
	}
	delay := scripted.Duration(w.latency)
	var plan []entry
	var agents []scripted.Agent
	for i, a := range w.agents {
		deps := a.deps
		if deps == nil {
			deps = []string{}
		}
		plan = append(plan, entry{Name: a.name, Instruction: w.match(i) + " work through " + agentFile(i), Dependencies: deps, NeedsWT: !w.readOnly})
		turns := make([]scripted.Reply, 0, a.calls)
		for s := 0; s < a.calls-1; s++ {
			turns = append(turns, scripted.Reply{ToolCalls: []scripted.ToolCall{w.step(i, s)}, Delay: delay})
		}
		turns = append(turns, scripted.Reply{Content: "Done.\nSTATUS: completed", Delay: delay})
		agents = append(agents, scripted.Agent{Match: w.match(i), Turns: turns})
	}
	planJSON, err := json.Marshal(map[string]any{"subtasks": plan})
	if err != nil {
		panic(err)
	}
	return scripted.Script{Planner: []scripted.Reply{{Content: string(planJSON), Delay: delay}}, Agents: agents}
}

// step is agent i's tool call at step s: a read of two lines at a moving
// offset (so the stuck-loop breaker stays quiet), or an edit of this step's
// token.
func (w workload) step(i, s int) scripted.ToolCall {
	if w.readOnly || s%2 == 0 {
		return call("read", map[string]any{"path": agentFile(i), "offset": 1 + s%max(1, w.agents[i].calls-2), "limit": 2})
	}
	return call("edit", map[string]any{"path": agentFile(i), "old_string": token(s), "new_string": fmt.Sprintf("tok-%04d-new", s)})
}

func call(name string, args map[string]any) scripted.ToolCall {
	b, err := json.Marshal(args)
	if err != nil {
		panic(err)
	}
	return scripted.ToolCall{Name: name, Arguments: string(b)}
}

// task is the task text of a run (the scripted planner ignores it).
const task = "benchmark: run the scripted plan"

// newRepo creates a git repository holding files, committed on main.
func newRepo(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	for rel, content := range files {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gitCmd(t, dir, "init", "--quiet", "--initial-branch=main")
	gitCmd(t, dir, "add", "-A")
	gitCmd(t, dir, "commit", "--quiet", "-m", "fixture")
	return dir
}

func gitCmd(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=b", "GIT_AUTHOR_EMAIL=b@b", "GIT_COMMITTER_NAME=b", "GIT_COMMITTER_EMAIL=b@b")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}
