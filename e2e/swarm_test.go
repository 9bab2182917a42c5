package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"codeswarm/llm/scripted"
)

// TestDemoSwarmEndToEnd runs the two-stage demo refactor through the CLI on a
// real repository: every subtask's change lands on the integration branch,
// the dependent subtask starts from its dependencies' merges, the user's
// branch and working tree are untouched, and the API key is nowhere in
// Temporal.
func TestDemoSwarmEndToEnd(t *testing.T) {
	h := newHarness(t, scripted.DemoScript())
	repo := t.TempDir()
	if err := scripted.WriteDemoRepo(repo); err != nil {
		t.Fatal(err)
	}
	userHead := git(t, repo, "rev-parse", "HEAD")
	userBranch := git(t, repo, "symbolic-ref", "--short", "HEAD")
	// Uncommitted work of the user's, in a file the swarm also changes.
	mainGo := filepath.Join(repo, "main.go")
	dirty := append(must(os.ReadFile(mainGo)), []byte("\n// user's uncommitted note\n")...)
	if err := os.WriteFile(mainGo, dirty, 0o644); err != nil {
		t.Fatal(err)
	}
	statusBefore := git(t, repo, "status", "--porcelain")

	code, res := h.runJSON("run", "--repo", repo, "--task", scripted.DemoTask, "--id", "e2e-demo")
	if code != 0 || !res.Success {
		t.Fatalf("run failed (exit %d):\n%s\nlogs:\n%s", code, fmtResult(res), tail(h.logs.String(), 6000))
	}

	t.Run("result JSON", func(t *testing.T) {
		if res.RunID != "e2e-demo" || res.BaseCommit != userHead || res.HeadCommit == "" || res.HeadCommit == userHead {
			t.Errorf("run_id/base/head = %q/%q/%q", res.RunID, res.BaseCommit, res.HeadCommit)
		}
		if len(res.SubtaskResults) != 3 {
			t.Fatalf("want 3 subtasks, got %d", len(res.SubtaskResults))
		}
		stages := map[int]int{}
		for _, s := range res.SubtaskResults {
			stages[s.Stage]++
			if !s.Success || s.Status != "completed" || s.Merge != "merged" || s.Commit == "" || s.Branch == "" || len(s.FilesChanged) == 0 || s.Steps == 0 {
				t.Errorf("subtask %s: %+v", s.ID, s)
			}
			if s.Conflicts == nil || s.FilesChanged == nil || s.Dependencies == nil {
				t.Errorf("subtask %s: nil list in result JSON", s.ID)
			}
		}
		if stages[0] != 2 || stages[1] != 1 {
			t.Errorf("stages = %v, want two in stage 0 and one in stage 1", stages)
		}
		st := res.Stats
		if st.SubagentsSpawned != 3 || st.SubagentsCompleted != 3 || st.SubagentsFailed != 0 {
			t.Errorf("stats counts: %+v", st)
		}
		steps := 0
		for _, s := range res.SubtaskResults {
			steps += s.Steps
		}
		if st.TotalLLMCalls < steps+1 || st.TotalToolCalls == 0 || st.PromptTokens == 0 || len(st.Stages) != 2 {
			t.Errorf("stats: llm %d (steps %d), tools %d, tokens %d, stages %d", st.TotalLLMCalls, steps, st.TotalToolCalls, st.PromptTokens, len(st.Stages))
		}
		if st.CriticalPathLength != st.Stages[0].MaxSteps+st.Stages[1].MaxSteps {
			t.Errorf("critical path %d, stage maxima %d+%d", st.CriticalPathLength, st.Stages[0].MaxSteps, st.Stages[1].MaxSteps)
		}
	})

	t.Run("integration branch holds every change", func(t *testing.T) {
		if head := git(t, repo, "rev-parse", res.Branch); head != res.HeadCommit {
			t.Errorf("branch %s at %s, result says %s", res.Branch, head, res.HeadCommit)
		}
		mustContain(t, "greet/greet.go", git(t, repo, "show", res.Branch+":greet/greet.go"), "func Greet(")
		mustContain(t, "mathx/mean.go", git(t, repo, "show", res.Branch+":mathx/mean.go"), "func Mean(")
		mustContain(t, "mathx/mathx.go", git(t, repo, "show", res.Branch+":mathx/mathx.go"), "// Package mathx")
		main := git(t, repo, "show", res.Branch+":main.go")
		mustContain(t, "main.go", main, "greet.Greet")
		mustContain(t, "main.go", main, "mathx.Mean")
	})

	t.Run("dependent subtask started from its dependencies' merges", func(t *testing.T) {
		subs := byID(res)
		var dependent string
		for id, s := range subs {
			if len(s.Dependencies) == 2 {
				dependent = id
			}
		}
		if dependent == "" {
			t.Fatalf("no subtask with two dependencies in %v", subs)
		}
		for _, dep := range subs[dependent].Dependencies {
			mc := subs[dep].MergeCommit
			if mc == "" {
				t.Fatalf("dependency %s has no merge commit", dep)
			}
			git(t, repo, "merge-base", "--is-ancestor", mc, subs[dependent].Commit)
		}
	})

	t.Run("user's branch and working tree untouched", func(t *testing.T) {
		if got := git(t, repo, "rev-parse", "HEAD"); got != userHead {
			t.Errorf("HEAD moved: %s -> %s", userHead, got)
		}
		if got := git(t, repo, "symbolic-ref", "--short", "HEAD"); got != userBranch {
			t.Errorf("checked-out branch changed: %s -> %s", userBranch, got)
		}
		if got := git(t, repo, "status", "--porcelain"); got != statusBefore {
			t.Errorf("status changed:\nbefore %q\nafter  %q", statusBefore, got)
		}
		if got := must(os.ReadFile(mainGo)); string(got) != string(dirty) {
			t.Error("the user's uncommitted main.go was changed")
		}
	})

	t.Run("merged worktrees removed, branches kept", func(t *testing.T) {
		for _, s := range res.SubtaskResults {
			if _, err := os.Stat(s.Worktree); !os.IsNotExist(err) {
				t.Errorf("worktree of merged %s still exists: %s", s.ID, s.Worktree)
			}
			git(t, repo, "rev-parse", "--verify", s.Branch)
		}
		if v, _ := gitMaybe(repo, "config", "--get", "gc.auto"); v != "" {
			t.Errorf("gc.auto left set to %q", v)
		}
	})

	t.Run("result, status, list and watch read the finished run", func(t *testing.T) {
		code, again := h.runJSON("result", "e2e-demo")
		if code != 0 || again.HeadCommit != res.HeadCommit || len(again.SubtaskResults) != 3 {
			t.Errorf("result --json: exit %d, head %s", code, again.HeadCommit)
		}
		code, out := h.run("status", "e2e-demo")
		if code != 0 {
			t.Errorf("status: exit %d", code)
		}
		mustContain(t, "status", out, "completed")
		mustContain(t, "status", out, "SUCCEEDED")
		code, out = h.run("list")
		if code != 0 {
			t.Errorf("list: exit %d", code)
		}
		mustContain(t, "list", out, "e2e-demo")
		mustContain(t, "list", out, "Rename greet.Hello")
		code, out = h.run("watch", "e2e-demo")
		if code != 0 {
			t.Errorf("watch: exit %d", code)
		}
		mustContain(t, "watch", out, "merged 03-update-main")
		mustContain(t, "watch", out, "SUCCEEDED")
		if code, out := h.run("status", "no-such-run"); code == 0 || out != "" {
			t.Errorf("status of an unknown run: exit %d, %q", code, out)
		}
	})

	t.Run("API key appears in no history, result or log", func(t *testing.T) {
		for id, hist := range exportHistories(t, h.client) {
			if strings.Contains(hist, testAPIKey) {
				t.Errorf("history of %s contains the API key", id)
			}
		}
		if strings.Contains(fmtResult(res), testAPIKey) || strings.Contains(h.logs.String(), testAPIKey) {
			t.Error("result or logs contain the API key")
		}
		if n := h.model.Count("agent"); n == 0 {
			t.Error("the scripted model saw no agent requests")
		}
		for _, r := range h.model.Requests() {
			if r.Authorization != "Bearer "+testAPIKey {
				t.Fatalf("request without the key: %q", r.Authorization)
			}
		}
	})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func gitMaybe(dir string, args ...string) (string, error) {
	out, err := execGit(dir, args...)
	return strings.TrimSpace(out), err
}

// exportHistories returns every workflow history of the namespace as JSON.
func exportHistories(t *testing.T, c client.Client) map[string]string {
	t.Helper()
	ctx := context.Background()
	resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{PageSize: 1000})
	if err != nil {
		t.Fatalf("list workflows: %v", err)
	}
	out := map[string]string{}
	for _, e := range resp.GetExecutions() {
		id, run := e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId()
		out[id+"/"+run] = historyJSON(t, c, id, run)
	}
	if len(out) == 0 {
		t.Fatal("no workflows listed")
	}
	return out
}
