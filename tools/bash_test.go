package tools

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// testEnv is a minimal sanitized environment that still finds bash tools.
func testEnv() []string {
	return SanitizeEnv([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")})
}

func runBashTool(t *testing.T, ctx context.Context, opts Options, args map[string]any) Result {
	t.Helper()
	if opts.Root == "" {
		opts.Root = t.TempDir()
	}
	if opts.Env == nil {
		opts.Env = testEnv()
	}
	return Run(ctx, opts, ToolBash, jsonArgs(t, args))
}

func TestBashExitCodes(t *testing.T) {
	tests := []struct {
		command string
		want    string
	}{
		{"echo hi", "hi\nexit code: 0"},
		{"echo out; echo err >&2; exit 3", "out\nerr\nexit code: 3"},
		{"printf 'no newline'", "no newline\nexit code: 0"},
		{"true", "exit code: 0"},
		{"pwd", "ROOT\nexit code: 0"},
		{"kill -9 $$", "exit code: 137"}, // bwrap reports a signal as a shell does
	}
	root := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.command, func(t *testing.T) {
			res := runBashTool(t, t.Context(), Options{Root: root}, map[string]any{"command": tt.command})
			if want := strings.ReplaceAll(tt.want, "ROOT", root); mustOK(t, res).Output != want {
				t.Errorf("output %q, want %q", res.Output, want)
			}
		})
	}
	res := runBashTool(t, t.Context(), Options{Root: root, Sandbox: unconfined}, map[string]any{"command": "kill -9 $$"})
	if want := "command was killed by signal killed\nexit code: -1"; res.Output != want {
		t.Errorf("unconfined: output %q, want %q", res.Output, want)
	}
	mustErr(t, runBashTool(t, t.Context(), Options{}, map[string]any{"command": "  "}), "command is empty")
	mustErr(t, runBashTool(t, t.Context(), Options{}, map[string]any{}), `missing required argument "command"`)
}

// pidGone waits until pid no longer runs (absent or zombie).
func pidGone(t *testing.T, pid int) bool {
	t.Helper()
	for range 100 {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if errors.Is(err, os.ErrNotExist) {
			return true
		}
		if err == nil {
			if fields := strings.Fields(string(stat)); len(fields) > 2 && fields[2] == "Z" {
				return true
			}
		} else if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// firstPid parses the pid printed on the first output line.
func firstPid(t *testing.T, out string) int {
	t.Helper()
	line, _, _ := strings.Cut(out, "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("no pid in output %q", out)
	}
	return pid
}

func TestBashBackgroundChildKilled(t *testing.T) {
	res := mustOK(t, runBashTool(t, t.Context(), Options{Sandbox: unconfined}, map[string]any{"command": "sleep 1000 & echo $!"}))
	if !strings.HasSuffix(res.Output, "exit code: 0") {
		t.Errorf("output %q", res.Output)
	}
	if pid := firstPid(t, res.Output); !pidGone(t, pid) {
		t.Errorf("background child %d still running after bash returned", pid)
	}
}

func TestBashTimeoutKillsGroup(t *testing.T) {
	res := mustOK(t, runBashTool(t, t.Context(), Options{Sandbox: unconfined}, map[string]any{
		"command": "sleep 1000 & echo $!; sleep 1000", "timeout": 0.3,
	}))
	if !strings.Contains(res.Output, "timed out after 300ms") || !strings.HasSuffix(res.Output, "exit code: 124") {
		t.Errorf("output %q", res.Output)
	}
	if pid := firstPid(t, res.Output); !pidGone(t, pid) {
		t.Errorf("child %d survived the timeout", pid)
	}
}

func TestBashTimeoutCappedByMax(t *testing.T) {
	opts := Options{BashTimeout: time.Hour, BashMaxTimeout: 200 * time.Millisecond}
	res := runBashTool(t, t.Context(), opts, map[string]any{"command": "sleep 1000", "timeout": 3600})
	if !strings.Contains(res.Output, "timed out after 200ms") {
		t.Errorf("output %q", res.Output)
	}
	res = runBashTool(t, t.Context(), Options{BashTimeout: 200 * time.Millisecond}, map[string]any{"command": "sleep 1000"})
	if !strings.Contains(res.Output, "timed out after 200ms") {
		t.Errorf("default timeout not used: %q", res.Output)
	}
}

func TestBashCancellation(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	var beats atomic.Int32
	root := t.TempDir()
	// The cancel comes at the fifth heartbeat after the child has started
	// (its pid file exists): on a loaded machine bash may take longer
	// than five heartbeats to get there.
	opts := Options{
		Root:              root,
		Sandbox:           unconfined,
		HeartbeatInterval: 10 * time.Millisecond,
		Heartbeat: func() {
			if _, err := os.Stat(filepath.Join(root, "started")); err == nil && beats.Add(1) == 5 {
				cancel()
			}
		},
	}
	res := runBashTool(t, ctx, opts, map[string]any{"command": "sleep 1000 & echo $!; touch started; wait"})
	mustErr(t, res, "cancelled", "exit code: -1")
	if pid := firstPid(t, res.Output); !pidGone(t, pid) {
		t.Errorf("child %d survived cancellation", pid)
	}
	if beats.Load() < 5 {
		t.Errorf("heartbeat called %d times", beats.Load())
	}
}

func TestBashOutputCapped(t *testing.T) {
	const limit = 1000
	res := mustOK(t, runBashTool(t, t.Context(), Options{MaxOutputBytes: limit}, map[string]any{
		"command": "echo START; head -c 20000000 /dev/zero | tr '\\0' x; echo; echo END",
	}))
	if !strings.HasPrefix(res.Output, "START\n") || !strings.HasSuffix(res.Output, "END\nexit code: 0") {
		t.Errorf("head or tail lost: %q ... %q", res.Output[:20], res.Output[len(res.Output)-30:])
	}
	if !strings.Contains(res.Output, "bytes of output omitted") || len(res.Output) > limit+100 {
		t.Errorf("output not capped: %d bytes", len(res.Output))
	}
}

func TestBashEnvSanitized(t *testing.T) {
	env := SanitizeEnv([]string{
		"PATH=" + os.Getenv("PATH"), "OPENAI_API_KEY=sk-live", "GITHUB_TOKEN=ghp", "MYVAR=hunter2",
	}, "hunter2")
	res := mustOK(t, runBashTool(t, t.Context(), Options{Env: env}, map[string]any{
		"command": `echo "key=$OPENAI_API_KEY tok=$GITHUB_TOKEN my=$MYVAR"; command -v ls >/dev/null && echo path-ok`,
	}))
	if want := "key= tok= my=\npath-ok\nexit code: 0"; res.Output != want {
		t.Errorf("output %q, want %q", res.Output, want)
	}
}

func TestBashNilEnvDoesNotLeak(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "sk-should-not-leak")
	res := mustOK(t, Run(t.Context(), Options{Root: t.TempDir()}, ToolBash, `{"command":"echo \"[$OPENAI_API_KEY]\"; test -n \"$PATH\" && echo path"}`))
	if res.Output != "[]\npath\nexit code: 0" {
		t.Errorf("output %q", res.Output)
	}
}

func TestBashEscapedDaemonDoesNotHang(t *testing.T) {
	// setsid leaves bash's process group, so killing the group cannot reach
	// it; Run must still return once the drain grace ends.
	res := mustOK(t, runBashTool(t, t.Context(), Options{Sandbox: unconfined}, map[string]any{"command": "setsid sleep 1000 & echo $!"}))
	pid := firstPid(t, res.Output)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if !strings.HasSuffix(res.Output, "exit code: 0") {
		t.Errorf("output %q", res.Output)
	}
}
