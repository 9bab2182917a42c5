package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"codeswarm/llm/scripted"
)

// planReply is a planner answer for the given subtasks.
func planReply(t *testing.T, subtasks ...map[string]any) scripted.Reply {
	t.Helper()
	b, err := json.Marshal(map[string]any{"subtasks": subtasks})
	if err != nil {
		t.Fatal(err)
	}
	return scripted.Reply{Content: string(b)}
}

func subtask(name, instruction string, deps ...string) map[string]any {
	if deps == nil {
		deps = []string{}
	}
	return map[string]any{"name": name, "instruction": instruction, "dependencies": deps, "specialty": "go"}
}

func toolCall(t *testing.T, name string, args map[string]any) scripted.ToolCall {
	t.Helper()
	b, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	return scripted.ToolCall{Name: name, Arguments: string(b)}
}

func done(summary string) scripted.Reply {
	return scripted.Reply{Content: summary + "\nSTATUS: completed"}
}

// newRepo makes a repository with the given files on branch main.
func newRepo(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	git(t, dir, "init", "-q", "-b", "main")
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "-m", "initial")
	return dir
}

// conflictScript: two independent subtasks change the same line of
// shared.txt. A re-run (its prompt carries the conflict note) writes a
// version that keeps both intents.
func conflictScript(t *testing.T) scripted.Script {
	edit := func(to string) []scripted.Reply {
		return []scripted.Reply{
			{ToolCalls: []scripted.ToolCall{toolCall(t, "edit", map[string]any{"path": "shared.txt", "old_string": "greeting = hello", "new_string": to})}},
			done("changed the greeting"),
		}
	}
	return scripted.Script{
		Planner: []scripted.Reply{planReply(t,
			subtask("left", "[conf:left] Set the greeting to left."),
			subtask("right", "[conf:right] Set the greeting to right."))},
		Agents: []scripted.Agent{
			{Match: "[conf:left]", Turns: edit("greeting = left")},
			{Match: "[conf:right]", Turns: edit("greeting = right")},
			{Match: "conflicted with changes merged meanwhile, in: shared.txt", Turns: []scripted.Reply{
				{ToolCalls: []scripted.ToolCall{toolCall(t, "read", map[string]any{"path": "shared.txt"})}},
				{ToolCalls: []scripted.ToolCall{toolCall(t, "write", map[string]any{"path": "shared.txt", "content": "greeting = left and right\n"})}},
				done("kept both intents"),
			}},
		},
	}
}

func TestParallelConflict(t *testing.T) {
	for _, resolve := range []bool{true, false} {
		name := "reported"
		if resolve {
			name = "resolved by re-run"
		}
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, conflictScript(t))
			if !resolve {
				t.Setenv("CODESWARM_GIT_RESOLVE_CONFLICTS", "false")
			}
			repo := newRepo(t, map[string]string{"shared.txt": "greeting = hello\n"})
			head := git(t, repo, "rev-parse", "HEAD")
			code, res := h.runJSON("run", "--repo", repo, "--task", "change the greeting", "--max-concurrent", "2")
			var merged, conflicted int
			for _, s := range res.SubtaskResults {
				switch {
				case s.Attempts == 1 && s.Merge == "merged" && len(s.Conflicts) == 0:
					merged++
				case len(s.Conflicts) == 1 && s.Conflicts[0] == "shared.txt":
					conflicted++
					// The first attempt's work is never lost.
					if s.Branch == "" || s.Commit == "" {
						t.Errorf("conflicted subtask lost its branch/commit: %+v", s)
					}
					if resolve && (s.Merge != "merged" || !s.Success || s.Attempts != 2) {
						t.Errorf("re-run did not resolve: %+v", s)
					}
					if !resolve && (s.Merge != "conflict" || s.Success) {
						t.Errorf("conflict not reported: %+v", s)
					}
				}
			}
			if merged != 1 || conflicted != 1 {
				t.Fatalf("want one merged and one conflicted subtask:\n%s\nlogs:\n%s", fmtResult(res), tail(h.logs.String(), 3000))
			}
			final := git(t, repo, "show", res.Branch+":shared.txt")
			if resolve {
				if code != 0 || final != "greeting = left and right" {
					t.Errorf("exit %d, shared.txt %q", code, final)
				}
			} else {
				if code != 1 || (final != "greeting = left" && final != "greeting = right") {
					t.Errorf("exit %d, shared.txt %q", code, final)
				}
				for _, s := range res.SubtaskResults {
					if s.Merge == "conflict" {
						mustContain(t, "conflicted branch", git(t, repo, "show", s.Branch+":shared.txt"), "greeting = ")
					}
				}
			}
			if got := git(t, repo, "rev-parse", "HEAD"); got != head {
				t.Errorf("user's HEAD moved")
			}
		})
	}
}

func TestCleanKeepsUnmergedWork(t *testing.T) {
	script := scripted.Script{
		Planner: []scripted.Reply{planReply(t,
			subtask("good", "[clean:good] Add good.txt."),
			subtask("bad", "[clean:bad] Add bad.txt, then give up."))},
		Agents: []scripted.Agent{
			{Match: "[clean:good]", Turns: []scripted.Reply{
				{ToolCalls: []scripted.ToolCall{toolCall(t, "write", map[string]any{"path": "good.txt", "content": "good\n"})}},
				done("added good.txt")}},
			{Match: "[clean:bad]", Turns: []scripted.Reply{
				{ToolCalls: []scripted.ToolCall{toolCall(t, "write", map[string]any{"path": "bad.txt", "content": "half done\n"})}},
				{Content: "I cannot finish this.\nSTATUS: blocked"}}},
		},
	}
	h := newHarness(t, script)
	repo := newRepo(t, map[string]string{"README": "x\n"})
	code, res := h.runJSON("run", "--repo", repo, "--task", "two files", "--id", "clean-run")
	if code != 1 || res.Success {
		t.Fatalf("want a failed run, got exit %d:\n%s", code, fmtResult(res))
	}
	subs := byID(res)
	var bad, good string
	for id := range subs {
		if strings.Contains(id, "bad") {
			bad = id
		} else {
			good = id
		}
	}
	if subs[bad].Status != "blocked" || subs[bad].Commit == "" || subs[good].Merge != "merged" {
		t.Fatalf("unexpected subtasks:\n%s", fmtResult(res))
	}
	if _, err := os.Stat(subs[bad].Worktree); err != nil {
		t.Errorf("the failed subtask's worktree was not kept: %v", err)
	}
	mustContain(t, "kept_worktrees", strings.Join(res.KeptWorktrees, "\n"), subs[bad].Worktree)

	code, out := h.run("clean", "clean-run")
	if code != 1 {
		t.Errorf("clean with unmerged work: exit %d, want 1\n%s", code, out)
	}
	mustContain(t, "clean output", out, "kept branch "+subs[bad].Branch)
	mustContain(t, "clean output", out, "deleted branch "+subs[good].Branch)
	if got := git(t, repo, "rev-parse", subs[bad].Branch); got != subs[bad].Commit {
		t.Errorf("unmerged branch moved or vanished: %s", got)
	}
	git(t, repo, "rev-parse", "--verify", res.Branch)
	if _, err := os.Stat(subs[bad].Worktree); !os.IsNotExist(err) {
		t.Errorf("clean worktree not removed (its commits are safe on the branch): %v", err)
	}

	// On request, clean undoes the run entirely: no branch of it is left,
	// the user's branch and working tree are untouched.
	userHead := git(t, repo, "rev-parse", "HEAD")
	code, out = h.run("clean", "clean-run", "--all")
	if code != 0 {
		t.Fatalf("clean --all: exit %d\n%s\n%s", code, out, tail(h.logs.String(), 2000))
	}
	if left := git(t, repo, "branch", "--list", "codeswarm/clean-run/*"); left != "" {
		t.Errorf("branches left after clean --all: %s", left)
	}
	if got := git(t, repo, "rev-parse", "HEAD"); got != userHead {
		t.Errorf("the user's HEAD moved: %s, was %s", got, userHead)
	}
	if _, err := os.Stat(filepath.Join(h.root, "clean-run")); !os.IsNotExist(err) {
		t.Errorf("the run's workspace directory is still there: %v", err)
	}
}
