package cli

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"codeswarm/config"
)

// TestCheckNoLeftovers covers a run ID Temporal no longer knows: it is free
// only when neither its state directory nor its branches are left.
func TestCheckNoLeftovers(t *testing.T) {
	ctx := context.Background()
	repo := filepath.Join(t.TempDir(), "repo")
	gitRun(t, "", "init", "--quiet", "--initial-branch=main", repo)
	gitRun(t, repo, "commit", "--quiet", "--allow-empty", "-m", "initial")
	cfg := &config.Config{Workspace: config.WorkspaceConfig{Root: t.TempDir()}, Git: config.GitConfig{BranchPrefix: "codeswarm"}}

	if err := checkNoLeftovers(ctx, cfg, "fresh", repo); err != nil {
		t.Fatalf("fresh ID refused: %v", err)
	}

	dir := filepath.Join(cfg.Workspace.Root, "old-dir")
	if err := os.MkdirAll(filepath.Join(dir, "transcripts"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := checkNoLeftovers(ctx, cfg, "old-dir", repo)
	if err == nil || !strings.Contains(err.Error(), "state is still in "+dir) || !strings.Contains(err.Error(), "codeswarm clean old-dir --repo "+repo) {
		t.Errorf("leftover state dir: err = %v", err)
	}

	gitRun(t, repo, "branch", "codeswarm/old-branch/integration")
	err = checkNoLeftovers(ctx, cfg, "old-branch", repo)
	if err == nil || !strings.Contains(err.Error(), "codeswarm/old-branch/integration") {
		t.Errorf("leftover branch: err = %v", err)
	}
	// A prefix of another run's ID is a different run.
	if err := checkNoLeftovers(ctx, cfg, "old", repo); err != nil {
		t.Errorf("ID old refused for old-branch's branches: %v", err)
	}
}

func gitRun(t *testing.T, dir string, args ...string) {
	t.Helper()
	if dir != "" {
		args = append([]string{"-C", dir}, args...)
	}
	cmd := exec.Command("git", args...)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}
