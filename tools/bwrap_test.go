package tools

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// unconfined runs bash without the sandbox, for tests of the process-group
// machinery that tools.sandbox: off relies on.
var unconfined = NewSandbox(SandboxConfig{Off: true})

// host is a worker's world: a repository with a linked worktree under a
// workspace root next to another run's transcript, a home with credentials,
// a config file and a database directory.
type host struct {
	repo, wsRoot, worktree, other, home, config, dbDir string
}

func newHost(t *testing.T) host {
	t.Helper()
	// Not under /tmp: the sandbox's private tmpfs there would hide it all
	// and make the test prove nothing.
	base, err := os.MkdirTemp("/var/tmp", "codeswarm-sandbox-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	h := host{
		repo: filepath.Join(base, "repo"), wsRoot: filepath.Join(base, "ws"), home: filepath.Join(base, "home"),
		config: filepath.Join(base, "etc", "codeswarm.yaml"), dbDir: filepath.Join(base, "state"),
	}
	// The default layout: the workspace root inside the database's directory.
	h.wsRoot = filepath.Join(h.dbDir, "ws")
	h.worktree = filepath.Join(h.wsRoot, "run-1", "sub-1")
	h.other = filepath.Join(h.wsRoot, "run-0", ".state", "transcript.jsonl")
	writeTestFile(t, filepath.Join(h.repo, "main.txt"), "user's file\n")
	writeTestFile(t, h.other, "another run's transcript\n")
	writeTestFile(t, filepath.Join(h.home, ".ssh", "id_ed25519"), "PRIVATE KEY\n")
	writeTestFile(t, filepath.Join(h.home, ".git-credentials"), "https://u:pw@example.com\n")
	writeTestFile(t, h.config, "llm:\n  api_key: sk-in-config\n")
	writeTestFile(t, filepath.Join(h.dbDir, "temporal.db"), "sqlite\n")
	git(t, h.repo, "init", "-q", "-b", "main")
	git(t, h.repo, "add", ".")
	git(t, h.repo, "commit", "-q", "-m", "base")
	git(t, h.repo, "worktree", "add", "-q", "-b", "sub-1", h.worktree)
	t.Setenv("HOME", h.home)
	return h
}

func (h host) sandbox(t *testing.T, cfg SandboxConfig) *Sandbox {
	t.Helper()
	cfg.Hide = append(cfg.Hide, h.wsRoot, h.dbDir, h.config)
	sb := NewSandbox(cfg)
	t.Cleanup(sb.Close)
	if err := sb.Err(); err != nil {
		t.Fatalf("sandbox unusable: %v", err)
	}
	return sb
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@t"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// inBox runs command with bash in the host's worktree under sb.
func inBox(t *testing.T, h host, sb *Sandbox, env []string, command string) Result {
	t.Helper()
	if env == nil {
		env = testEnv()
	}
	return Run(t.Context(), Options{Root: h.worktree, Sandbox: sb, Env: env, BashTimeout: 20 * time.Second},
		ToolBash, jsonArgs(t, map[string]any{"command": command}))
}

func TestSandboxHidesWorkerState(t *testing.T) {
	h := newHost(t)
	sb := h.sandbox(t, SandboxConfig{})
	tests := []struct{ name, command, want string }{
		{"other run's transcript", "cat " + h.other, "No such file"},
		{"workspace root shows only the own run", "ls " + h.wsRoot + "; ls " + filepath.Dir(h.worktree), "run-1\nsub-1\n"},
		{"ssh key", "cat " + filepath.Join(h.home, ".ssh", "id_ed25519"), "No such file"},
		{"git credentials", "cat ~/.git-credentials " + filepath.Join(h.home, ".git-credentials"), "No such file"},
		{"home is the private tmp", `echo "$HOME $TMPDIR"`, "/tmp /tmp\n"},
		{"config file is empty", "wc -c < " + h.config, "0\n"},
		{"database dir", "ls " + h.dbDir, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := inBox(t, h, sb, nil, tt.command)
			if !strings.Contains(res.Output, tt.want) || strings.Contains(res.Output, "PRIVATE KEY") ||
				strings.Contains(res.Output, "sk-in-config") || strings.Contains(res.Output, "transcript\n") ||
				strings.Contains(res.Output, "temporal.db") {
				t.Errorf("output %q, want it to contain %q and nothing hidden", res.Output, tt.want)
			}
		})
	}
}

// The result cache (<workspace.root>/.cache) is the worker's state too: a
// model-run command can neither read an entry nor plant one, and the file
// tools do not reach it either.
func TestSandboxHidesResultCache(t *testing.T) {
	h := newHost(t)
	entry := filepath.Join(h.wsRoot, ".cache", "agents", strings.Repeat("ab", 32)+".json")
	writeTestFile(t, entry, `{"result":"cached secret answer"}`)
	sb := h.sandbox(t, SandboxConfig{})
	cacheDir := filepath.Join(h.wsRoot, ".cache")
	for _, command := range []string{
		"ls -a " + h.wsRoot,
		"cat " + entry,
		"cat ../../.cache/agents/*.json",
		"mkdir -p " + cacheDir + "/plans && echo planted > " + cacheDir + "/plans/" + strings.Repeat("cd", 32) + ".json; echo planted > " + entry,
	} {
		res := inBox(t, h, sb, nil, command)
		if strings.Contains(res.Output, ".cache") && strings.HasPrefix(command, "ls") || strings.Contains(res.Output, "cached secret") {
			t.Errorf("%s: output %q shows the cache", command, res.Output)
		}
	}
	for _, call := range []struct{ tool, args string }{
		{ToolRead, `{"path":"../../.cache/agents/` + filepath.Base(entry) + `"}`},
		{ToolRead, `{"path":"` + entry + `"}`},
		{ToolWrite, `{"path":"../../.cache/plans/` + strings.Repeat("cd", 32) + `.json","content":"planted"}`},
	} {
		res := Run(t.Context(), Options{Root: h.worktree, Sandbox: sb, Env: testEnv(), BashTimeout: 20 * time.Second}, call.tool, call.args)
		if strings.Contains(res.Output, "cached secret") || !res.IsError {
			t.Errorf("%s %s: %q (error %v); want it refused", call.tool, call.args, res.Output, res.IsError)
		}
	}
	if got := readTestFile(t, entry); got != `{"result":"cached secret answer"}` {
		t.Errorf("the entry on the host changed: %q", got)
	}
	if exists(filepath.Join(cacheDir, "plans")) {
		t.Error("a plan entry was planted on the host")
	}
}

func TestSandboxWritesOnlyWorktreeAndTmp(t *testing.T) {
	h := newHost(t)
	sb := h.sandbox(t, SandboxConfig{})
	res := inBox(t, h, sb, nil, "echo ok > new.txt && echo ok > /tmp/scratch && cat /tmp/scratch")
	if res.Output != "ok\nexit code: 0" || readTestFile(t, filepath.Join(h.worktree, "new.txt")) != "ok\n" {
		t.Fatalf("worktree or tmp not writable: %q", res.Output)
	}
	for _, target := range []string{
		filepath.Join(h.repo, "main.txt"), "../../run-0/x", filepath.Join(h.home, "x"), "/etc/codeswarm-x",
		"/proc/sys/kernel/core_pattern", filepath.Join(h.repo, ".git", "hooks", "pre-commit"),
	} {
		res := inBox(t, h, sb, nil, "echo pwned > "+target)
		if strings.HasSuffix(res.Output, "exit code: 0") {
			t.Errorf("write to %s succeeded: %q", target, res.Output)
		}
	}
	if got := readTestFile(t, filepath.Join(h.repo, "main.txt")); got != "user's file\n" {
		t.Errorf("user's working tree changed: %q", got)
	}
	if exists(filepath.Join(h.repo, ".git", "hooks", "pre-commit")) {
		t.Error("hook written")
	}
}

func TestSandboxGitReadOnly(t *testing.T) {
	h := newHost(t)
	sb := h.sandbox(t, SandboxConfig{})
	mainBefore := git(t, h.repo, "rev-parse", "main")
	writeTestFile(t, filepath.Join(h.worktree, "main.txt"), "changed\n")
	res := inBox(t, h, sb, nil, "git status --short && git diff --stat && git log --oneline && git show --stat HEAD | head -1")
	if !strings.Contains(res.Output, " M main.txt") || !strings.Contains(res.Output, "base") || !strings.HasSuffix(res.Output, "exit code: 0") {
		t.Fatalf("read-only git does not work: %q", res.Output)
	}
	for _, cmd := range []string{
		"git update-ref refs/heads/main HEAD~0^{tree}", "git -c user.name=a -c user.email=a@a commit -qam x",
		"git config core.hooksPath /tmp", "git gc --prune=now", "git branch evil", "echo 'gitdir: /tmp' > .git",
	} {
		if res := inBox(t, h, sb, nil, cmd); strings.HasSuffix(res.Output, "exit code: 0") {
			t.Errorf("%s succeeded: %q", cmd, res.Output)
		}
	}
	if got := git(t, h.repo, "rev-parse", "main"); got != mainBefore {
		t.Errorf("main moved from %s to %s", mainBefore, got)
	}
	if out, err := exec.Command("git", "-C", h.repo, "config", "--get", "core.hooksPath").Output(); err == nil {
		t.Errorf("core.hooksPath set to %q", out)
	}
	if strings.Contains(git(t, h.repo, "branch"), "evil") {
		t.Error("branch created")
	}
	// codeswarm's own commit, outside the sandbox, still works.
	git(t, h.worktree, "commit", "-qam", "by codeswarm")
}

func TestSandboxCleanEnvironment(t *testing.T) {
	h := newHost(t)
	sb := h.sandbox(t, SandboxConfig{EnvPassthrough: []string{"GOFLAGS", "MY_TOKEN"}})
	env := append(testEnv(), "DATABASE_URL=postgres://u:hunter2@db", "GOFLAGS=-mod=mod", "MY_TOKEN=tok-123")
	res := inBox(t, h, sb, env, `env | cut -d= -f1 | sort | tr '\n' ' '; echo; tr '\0' '\n' < /proc/$PPID/environ; ps e 2>/dev/null; cat /proc/*/environ 2>/dev/null`)
	for _, leak := range []string{"hunter2", "tok-123", "DATABASE_URL"} {
		if strings.Contains(res.Output, leak) {
			t.Errorf("%s visible in the sandbox: %q", leak, res.Output)
		}
	}
	if !strings.Contains(res.Output, "GOFLAGS") || !strings.Contains(res.Output, "PATH") {
		t.Errorf("passthrough or PATH missing: %q", res.Output)
	}
}

func TestSandboxPIDNamespace(t *testing.T) {
	h := newHost(t)
	sb := h.sandbox(t, SandboxConfig{})
	res := inBox(t, h, sb, nil, fmt.Sprintf("setsid sleep %d.5 & ls /proc | grep -c '^[0-9]'", os.Getpid()))
	if n := firstPid(t, res.Output); n > 5 {
		t.Errorf("%d processes visible in the sandbox: %q", n, res.Output)
	}
	if !hostProcessGone(t, fmt.Sprintf("%d.5", os.Getpid())) {
		t.Error("setsid daemon survived the call")
	}
}

// hostProcessGone waits until no process on the host has arg in its command line.
func hostProcessGone(t *testing.T, arg string) bool {
	t.Helper()
	for range 100 {
		found := false
		dirs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, f := range dirs {
			b, _ := os.ReadFile(f)
			if bytes.Contains(b, []byte("\x00"+arg+"\x00")) {
				found = true
			}
		}
		if !found {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

func TestSandboxNetwork(t *testing.T) {
	h := newHost(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	probe := fmt.Sprintf("timeout 5 bash -c 'echo > /dev/tcp/127.0.0.1/%d' && echo connected", port)
	if res := inBox(t, h, h.sandbox(t, SandboxConfig{}), nil, probe); strings.Contains(res.Output, "connected") {
		t.Errorf("network off, yet connected: %q", res.Output)
	}
	if res := inBox(t, h, h.sandbox(t, SandboxConfig{Network: true}), nil, probe); !strings.Contains(res.Output, "connected") {
		t.Errorf("network on, yet not connected: %q", res.Output)
	}
}

func TestSandboxForkBombIsBounded(t *testing.T) {
	h := newHost(t)
	sb := h.sandbox(t, SandboxConfig{MaxProcesses: 64})
	if sb.pids.base == "" && os.Geteuid() == 0 {
		t.Skipf("no process limit on this host: %s", sb.Describe())
	}
	// bash retries a failed fork with growing pauses, so the call may well
	// end at its timeout; either way it ends, and everything in it dies.
	start := time.Now()
	res := Run(t.Context(), Options{Root: h.worktree, Sandbox: sb, Env: testEnv(), BashTimeout: 5 * time.Second},
		ToolBash, jsonArgs(t, map[string]any{"command": ":(){ :|:& };: ; sleep 2; echo bomb-done"}))
	if !strings.Contains(res.Output, "Resource temporarily unavailable") {
		t.Errorf("the fork bomb did not hit the limit: %q", res.Output)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the call took %s, past its 5 s timeout and the drain grace", took)
	}
	if out, err := exec.Command("true").CombinedOutput(); err != nil {
		t.Errorf("the worker cannot fork after the bomb: %v %s", err, out)
	}
	sb.pids.wait()
	if calls, _ := filepath.Glob(filepath.Join(sb.pids.base, "call-*")); len(calls) > 0 {
		t.Errorf("per-call cgroups left behind: %v", calls)
	}
}

func TestSandboxGoBuildOffline(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go toolchain")
	}
	caches := map[string]string{}
	for _, name := range []string{"GOCACHE", "GOMODCACHE"} {
		out, err := exec.Command("go", "env", name).Output()
		if err != nil {
			t.Fatal(err)
		}
		caches[name] = strings.TrimSpace(string(out))
	}
	h := newHost(t)
	for name, dir := range caches { // the caches of the real home, not the test's
		t.Setenv(name, dir)
	}
	writeTestFile(t, filepath.Join(h.worktree, "tiny", "go.mod"), "module tiny\n\ngo 1.21\n")
	writeTestFile(t, filepath.Join(h.worktree, "tiny", "main.go"), "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"tiny ok\") }\n")
	warm := exec.Command("go", "build", "-o", os.DevNull, ".")
	warm.Dir = filepath.Join(h.worktree, "tiny")
	if out, err := warm.CombinedOutput(); err != nil {
		t.Fatalf("warm the cache: %v %s", err, out)
	}
	sb := h.sandbox(t, SandboxConfig{})
	env := append(testEnv(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOTOOLCHAIN=local")
	sb.cfg.EnvPassthrough = []string{"GOFLAGS", "GOPROXY", "GOTOOLCHAIN"}
	res := inBox(t, h, sb, env, "cd tiny && go build -o /tmp/tiny . && /tmp/tiny && echo 'package main' > x_test.go && go test -count=1 .")
	if !strings.Contains(res.Output, "tiny ok") || !strings.HasSuffix(res.Output, "exit code: 0") {
		t.Errorf("go build in the sandbox: %q", res.Output)
	}
}

func TestSandboxUnavailableRefusesBash(t *testing.T) {
	sb := NewSandbox(SandboxConfig{Bwrap: "/nonexistent/bwrap"})
	if sb.Err() == nil || sb.Mode() != "on" {
		t.Fatalf("broken sandbox not detected: %v", sb.Err())
	}
	res := Run(t.Context(), Options{Root: t.TempDir(), Sandbox: sb}, ToolBash, `{"command":"echo ran > ran.txt"}`)
	mustErr(t, res, "does not work on this host", "apt-get install bubblewrap", "user namespaces", "tools.sandbox: off")
	if off := NewSandbox(SandboxConfig{Off: true, Bwrap: "/nonexistent/bwrap"}); off.Err() != nil || off.Mode() != "off" {
		t.Errorf("an explicit off must not probe: %v %s", off.Err(), off.Mode())
	}
}

func TestSandboxesInOneProcessAreIndependent(t *testing.T) {
	h := newHost(t)
	first := NewSandbox(SandboxConfig{})
	second := h.sandbox(t, SandboxConfig{})
	first.Close() // a worker of the same process stopping
	if res := inBox(t, h, second, nil, "echo still works"); res.Output != "still works\nexit code: 0" {
		t.Errorf("the other sandbox broke: %q", res.Output)
	}
	if first.pids.base != "" && first.pids.base == second.pids.base {
		t.Errorf("both use cgroup %s", first.pids.base)
	}
	if first.pids.base != "" && exists(first.pids.base) {
		t.Errorf("closed sandbox left %s", first.pids.base)
	}
}
