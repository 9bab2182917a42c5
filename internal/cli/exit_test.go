package cli

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"codeswarm/activities"
	"codeswarm/control"
	"codeswarm/gitops"
)

func TestResultErr(t *testing.T) {
	tests := []struct {
		name string
		res  activities.SwarmResult
		want error
	}{
		{"succeeded", activities.SwarmResult{Success: true}, nil},
		{"applied", activities.SwarmResult{Success: true, Applied: true}, nil},
		{"apply refused", activities.SwarmResult{Success: true, ApplyError: "not applied: the working tree has uncommitted changes"}, ErrApplyRefused},
		{"failed", activities.SwarmResult{ApplyError: "not applied: the run did not succeed"}, ErrRunFailed},
		{"cancelled", activities.SwarmResult{State: control.RunStateCancelled}, ErrRunCancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := resultErr(tt.res); !errors.Is(got, tt.want) || (tt.want == nil) != (got == nil) {
				t.Errorf("resultErr = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNoteDirty(t *testing.T) {
	dir := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@t"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q")
	git("commit", "-q", "--allow-empty", "-m", "base")
	ctx := context.Background()
	repo, err := gitops.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	sha, err := repo.ResolveCommit(ctx, "HEAD")
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	noteDirty(ctx, repo, "HEAD", sha, IO{Out: io.Discard, Err: &out})
	if out.Len() != 0 {
		t.Fatalf("clean tree got a note: %q", out.String())
	}
	if err := os.WriteFile(filepath.Join(dir, "wip.go"), []byte("package wip\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	noteDirty(ctx, repo, "HEAD", sha, IO{Out: io.Discard, Err: &out})
	want := "note: your working tree has uncommitted changes; the run starts from HEAD " + activities.ShortSHA(sha) + " and does not see them\n"
	if out.String() != want {
		t.Fatalf("note = %q, want %q", out.String(), want)
	}
}
