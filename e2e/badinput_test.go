package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"

	"codeswarm/llm/scripted"
)

// TestBadInputStartsNothing: every kind of bad input to `run` exits with
// code 2 and a one-line error naming the problem, and no workflow starts.
func TestBadInputStartsNothing(t *testing.T) {
	h := newHarness(t, scripted.DemoScript())
	repo := faultRepo(t)
	dir := t.TempDir()
	notGit := filepath.Join(dir, "plain")
	noCommits := filepath.Join(dir, "fresh")
	emptyTask := filepath.Join(dir, "empty.txt")
	blankTask := filepath.Join(dir, "blank.txt")
	unknownKey := filepath.Join(dir, "codeswarm.yaml")
	for _, d := range []string{notGit, noCommits} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	git(t, noCommits, "init", "--quiet")
	writeInputFiles(t, map[string]string{
		emptyTask:  "",
		blankTask:  " \n\t\n",
		unknownKey: "swarm:\n  max_concurrent: 2\n  max_concurency: 3\n",
	})

	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string // in the error line
	}{
		{"repo path missing", nil, []string{"--repo", filepath.Join(dir, "nope"), "--task", "x"}, "--repo"},
		{"not a git repository", nil, []string{"--repo", notGit, "--task", "x"}, "--repo"},
		{"repository without commits", nil, []string{"--repo", noCommits, "--task", "x"}, "has no commits"},
		{"unknown base ref", nil, []string{"--repo", repo, "--task", "x", "--base", "no-such-branch"}, "no-such-branch"},
		{"empty task", nil, []string{"--repo", repo, "--task", ""}, "task is empty"},
		{"blank task", nil, []string{"--repo", repo, "--task", "  \n "}, "task is empty"},
		{"empty task file", nil, []string{"--repo", repo, "--task-file", emptyTask}, "empty.txt is empty"},
		{"blank task file", nil, []string{"--repo", repo, "--task-file", blankTask}, "blank.txt is empty"},
		{"missing task file", nil, []string{"--repo", repo, "--task-file", filepath.Join(dir, "missing.txt")}, "--task-file"},
		{"unreadable task file (a directory)", nil, []string{"--repo", repo, "--task-file", dir}, "--task-file"},
		{"task and task file together", nil, []string{"--repo", repo, "--task", "x", "--task-file", emptyTask}, "not both"},
		{"unknown strategy in env", map[string]string{"CODESWARM_SWARM_STRATEGY": "foo"}, []string{"--repo", repo, "--task", "x"}, "swarm.strategy"},
		{"unknown strategy flag", nil, []string{"--repo", repo, "--task", "x", "--strategy", "foo"}, "swarm.strategy"},
		{"negative max_concurrent in env", map[string]string{"CODESWARM_SWARM_MAX_CONCURRENT": "-1"}, []string{"--repo", repo, "--task", "x"}, "swarm.max_concurrent"},
		{"negative --max-concurrent", nil, []string{"--repo", repo, "--task", "x", "--max-concurrent", "-1"}, "swarm.max_concurrent"},
		{"bad duration in env", map[string]string{"CODESWARM_LLM_TIMEOUT": "soon"}, []string{"--repo", repo, "--task", "x"}, "llm.timeout"},
		{"not a number in env", map[string]string{"CODESWARM_SWARM_MAX_STEPS_PER_SUBAGENT": "many"}, []string{"--repo", repo, "--task", "x"}, "swarm.max_steps_per_subagent"},
		{"unknown key in config file", nil, []string{"--config", unknownKey, "--repo", repo, "--task", "x"}, "max_concurency"},
		{"missing config file", nil, []string{"--config", filepath.Join(dir, "nope.yaml"), "--repo", repo, "--task", "x"}, "nope.yaml"},
		{"unknown flag", nil, []string{"--repo", repo, "--task", "x", "--max-agents", "3"}, "--max-agents"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			// A fixed ID per case, so "not started" is checked on the
			// execution itself.
			id := fmt.Sprintf("bad-input-%02d", i)
			expectUsageError(t, h, tt.want, append([]string{"run", "--id", id}, tt.args...)...)
			assertNotStarted(t, h, id)
		})
	}
	t.Run("invalid run ID", func(t *testing.T) {
		expectUsageError(t, h, "--id", "run", "--repo", repo, "--task", "x", "--id", "has space")
	})
	// Visibility may lag a start, so this only backs up the per-ID checks.
	t.Run("no workflow listed", func(t *testing.T) {
		resp, err := h.client.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{PageSize: 100})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(resp.GetExecutions()); n != 0 {
			t.Errorf("%d workflows were started by bad input", n)
		}
	})
}

// expectUsageError runs the CLI and expects exit code 2 with one line on
// stderr that contains want.
func expectUsageError(t *testing.T, h *harness, want string, args ...string) {
	t.Helper()
	h.logs.Reset()
	code, out := h.run(args...)
	stderr := strings.TrimSpace(h.logs.String())
	t.Logf("exit %d: %s", code, stderr)
	if code != 2 {
		t.Errorf("exit code %d, want 2; stdout %q", code, out)
	}
	if strings.Contains(stderr, "\n") || !strings.HasPrefix(stderr, "codeswarm: ") {
		t.Errorf("want one line \"codeswarm: ...\" on stderr, got:\n%s", stderr)
	}
	if !strings.Contains(stderr, want) {
		t.Errorf("error %q does not name %q", stderr, want)
	}
}

// assertNotStarted checks the run ID directly: visibility may lag, the
// execution store does not.
func assertNotStarted(t *testing.T, h *harness, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := h.client.DescribeWorkflowExecution(ctx, id, "")
	var nf *serviceerror.NotFound
	if !errors.As(err, &nf) {
		t.Errorf("workflow %s: describe gave %v, want not found", id, err)
	}
}

func writeInputFiles(t *testing.T, files map[string]string) {
	t.Helper()
	for p, content := range files {
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
