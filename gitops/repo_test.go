package gitops

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckVersionOutput(t *testing.T) {
	tests := []struct {
		out     string
		version string
		wantErr string
	}{
		{out: "git version 2.39.5\n", version: "2.39.5"},
		{out: "git version 2.38.0", version: "2.38.0"},
		{out: "git version 2.45.1.windows.1", version: "2.45.1.windows.1"},
		{out: "git version 3.0.0", version: "3.0.0"},
		{out: "git version 2.37.1 (Apple Git-1)", version: "2.37.1", wantErr: "git 2.37.1 is too old: codeswarm needs git >= 2.38"},
		{out: "git version 1.99.9", version: "1.99.9", wantErr: "too old"},
		{out: "hub version 2.14", wantErr: "unrecognised git version output"},
		{out: "git version x.y", wantErr: "unrecognised git version"},
		{out: "", wantErr: "unrecognised"},
	}
	for _, tt := range tests {
		t.Run(tt.out, func(t *testing.T) {
			version, err := checkVersionOutput(tt.out)
			if version != tt.version {
				t.Errorf("version = %q, want %q", version, tt.version)
			}
			if tt.wantErr == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestCheckGitVersionInstalled(t *testing.T) {
	version, err := CheckGitVersion(context.Background())
	if err != nil {
		t.Fatalf("CheckGitVersion: %v", err)
	}
	if version == "" {
		t.Fatal("empty version")
	}
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t)
	writeFile(t, filepath.Join(tr.dir, "sub", "dir", "f.txt"), "x")
	empty := filepath.Join(t.TempDir(), "empty")
	runGit(t, "", nil, "init", "--quiet", empty)
	plain := t.TempDir()
	missing := filepath.Join(t.TempDir(), "missing")

	tests := []struct {
		name    string
		path    string
		kind    error
		wantErr string
	}{
		{name: "missing path", path: missing, kind: fs.ErrNotExist, wantErr: "repository path " + quote(missing) + " does not exist"},
		{name: "not a repository", path: plain, kind: ErrNotRepository, wantErr: quote(plain) + " is not a git repository"},
		{name: "no commits", path: empty, kind: ErrNoCommits, wantErr: "has no commits"},
		{name: "git dir", path: filepath.Join(tr.dir, ".git"), kind: ErrNotRepository, wantErr: "is not a git repository with a working tree"},
		{name: "top level", path: tr.dir},
		{name: "subdirectory", path: filepath.Join(tr.dir, "sub", "dir")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Open(ctx, tt.path)
			if tt.kind != nil {
				if !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Open(%q) error = %v, want %v containing %q", tt.path, err, tt.kind, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open(%q): %v", tt.path, err)
			}
			if r.Root != realPath(tr.dir) {
				t.Errorf("Root = %q, want %q", r.Root, tr.dir)
			}
			if r.CommonDir != realPath(filepath.Join(tr.dir, ".git")) {
				t.Errorf("CommonDir = %q, want %q", r.CommonDir, filepath.Join(tr.dir, ".git"))
			}
		})
	}
}

func quote(s string) string { return `"` + s + `"` }

func TestResolveCommit(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t)
	head := tr.head("HEAD")
	tr.git("tag", "-a", "-m", "annotated", "v1")

	for _, rev := range []string{"HEAD", "main", "refs/heads/main", "v1", head[:10], head} {
		got, err := tr.repo.ResolveCommit(ctx, rev)
		if err != nil || got != head {
			t.Errorf("ResolveCommit(%q) = %q, %v; want %q", rev, got, err, head)
		}
	}
	for _, rev := range []string{"nope", "", "--output=/tmp/x", head + "x"} {
		_, err := tr.repo.ResolveCommit(ctx, rev)
		if !errors.Is(err, ErrUnknownRef) || !strings.Contains(err.Error(), "unknown base ref "+quote(rev)) {
			t.Errorf("ResolveCommit(%q) error = %v, want unknown base ref", rev, err)
		}
	}
}

func TestCurrentBranchAndRefSHA(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t)
	head := tr.head("HEAD")

	if got, err := tr.repo.CurrentBranch(ctx); err != nil || got != "main" {
		t.Fatalf("CurrentBranch = %q, %v; want main", got, err)
	}
	for ref, want := range map[string]string{"main": head, "refs/heads/main": head, "absent": "", "refs/heads/absent": ""} {
		if got, err := tr.repo.RefSHA(ctx, ref); err != nil || got != want {
			t.Errorf("RefSHA(%q) = %q, %v; want %q", ref, got, err, want)
		}
	}

	tr.git("checkout", "--quiet", "--detach")
	if got, err := tr.repo.CurrentBranch(ctx); err != nil || got != "" {
		t.Fatalf("CurrentBranch detached = %q, %v; want empty", got, err)
	}
}

func TestEnsureBranch(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t)
	base := tr.head("HEAD")
	other := tr.commitOn("other", "main", map[string]string{"a.txt": "changed\n"})

	if err := tr.repo.EnsureBranch(ctx, "codeswarm/run-1", base); err != nil {
		t.Fatalf("EnsureBranch: %v", err)
	}
	// A retry, even with another SHA, must not move the branch.
	if err := tr.repo.EnsureBranch(ctx, "codeswarm/run-1", other); err != nil {
		t.Fatalf("EnsureBranch again: %v", err)
	}
	if got := tr.head("codeswarm/run-1"); got != base {
		t.Errorf("branch at %s, want %s", got, base)
	}
	if err := tr.repo.EnsureBranch(ctx, "bad..name", base); err == nil {
		t.Error("EnsureBranch accepted an invalid branch name")
	}
}

func TestUpdateRefCAS(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t)
	base := tr.head("HEAD")
	next := tr.commitOn("scratch", "main", map[string]string{"a.txt": "next\n"})
	tr.git("branch", "target", base)

	if err := tr.repo.UpdateRefCAS(ctx, "target", next, base); err != nil {
		t.Fatalf("UpdateRefCAS: %v", err)
	}
	// The same call again (a retry after it landed) succeeds.
	if err := tr.repo.UpdateRefCAS(ctx, "target", next, base); err != nil {
		t.Fatalf("UpdateRefCAS retry: %v", err)
	}
	// A stale expected value loses the race and leaves the ref alone.
	err := tr.repo.UpdateRefCAS(ctx, "refs/heads/target", base, base)
	if !errors.Is(err, ErrRefMoved) {
		t.Fatalf("stale UpdateRefCAS error = %v, want ErrRefMoved", err)
	}
	if got := tr.head("target"); got != next {
		t.Errorf("target = %s after failed CAS, want %s", got, next)
	}
	// "" as expected old value means "must not exist".
	if err := tr.repo.UpdateRefCAS(ctx, "target", base, ""); !errors.Is(err, ErrRefMoved) {
		t.Fatalf("create-only UpdateRefCAS on existing ref error = %v, want ErrRefMoved", err)
	}
}

func TestSetConfigRestore(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		existing string // "" = unset
	}{
		{name: "unset before", existing: ""},
		{name: "set before", existing: "200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTestRepo(t)
			if tt.existing != "" {
				tr.git("config", "gc.auto", tt.existing)
			}
			configBefore := readFile(t, filepath.Join(tr.dir, ".git", "config"))

			for attempt := range 2 { // the second call is a retry
				prev, had, err := tr.repo.SetConfig(ctx, "gc.auto", "0")
				if err != nil {
					t.Fatalf("SetConfig attempt %d: %v", attempt, err)
				}
				if prev != tt.existing || had != (tt.existing != "") {
					t.Fatalf("attempt %d: prev, had = %q, %v; want %q, %v", attempt, prev, had, tt.existing, tt.existing != "")
				}
				if got := tr.git("config", "gc.auto"); got != "0" {
					t.Fatalf("gc.auto = %q, want 0", got)
				}
			}
			for range 2 {
				if err := tr.repo.UnsetOrRestoreConfig(ctx, "gc.auto", tt.existing, tt.existing != ""); err != nil {
					t.Fatalf("UnsetOrRestoreConfig: %v", err)
				}
			}
			if got := readFile(t, filepath.Join(tr.dir, ".git", "config")); got != configBefore {
				t.Errorf("config not restored:\n%s\nwant:\n%s", got, configBefore)
			}
		})
	}
}

func TestGitEnvIsBuiltFromScratch(t *testing.T) {
	env := gitEnv([]string{"PATH=/bin", "GIT_DIR=/elsewhere", "LC_ALL=de_DE", "GIT_INDEX_FILE=/x",
		"OPENAI_API_KEY=sk-secret", "CODESWARM_LLM_API_KEY=k", "HOME=/home/user", "GIT_CONFIG_PARAMETERS='core.fsmonitor'='x'"}, true)
	joined := strings.Join(env, "\n")
	for _, bad := range []string{"GIT_DIR=", "LC_ALL=de_DE", "GIT_INDEX_FILE", "OPENAI", "sk-secret", "CODESWARM", "/home/user", "GIT_CONFIG_PARAMETERS"} {
		if strings.Contains(joined, bad) {
			t.Errorf("env keeps %q: %v", bad, env)
		}
	}
	for _, want := range []string{"PATH=/bin", "LC_ALL=C", "GIT_TERMINAL_PROMPT=0", "GIT_AUTHOR_NAME=codeswarm",
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=" + os.DevNull, "GIT_ATTR_NOSYSTEM=1", "HOME=" + os.DevNull} {
		if !strings.Contains(joined, want) {
			t.Errorf("env lacks %q: %v", want, env)
		}
	}
}
