package tools

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A UNIX socket under /run (where docker, dbus, postgres and ssh-agent
// keep theirs) is neither visible nor reachable from the sandbox.
func TestSandboxRunHasNoHostSockets(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("creating a socket under /run needs root")
	}
	sock := fmt.Sprintf("/run/codeswarm-test-%d.sock", rand.Uint64())
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Skipf("cannot listen under /run: %v", err)
	}
	t.Cleanup(func() { ln.Close(); _ = os.Remove(sock) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("host socket reached\n"))
			c.Close()
		}
	}()
	// The probe works outside the sandbox.
	probe := fmt.Sprintf(`ls -A /run /var/run; perl -MIO::Socket::UNIX -e '$s = IO::Socket::UNIX->new(Peer => "%s") or die "connect: $!\n"; print <$s>'`, sock)
	if out, _ := exec.Command("bash", "-c", probe).CombinedOutput(); !strings.Contains(string(out), "host socket reached") {
		t.Fatalf("probe does not reach the socket outside the sandbox: %s", out)
	}
	h := newHost(t)
	res := inBox(t, h, h.sandbox(t, SandboxConfig{}), nil, probe)
	if strings.Contains(res.Output, "host socket reached") || strings.Contains(res.Output, filepath.Base(sock)) ||
		!strings.Contains(res.Output, "connect: No such file") {
		t.Errorf("host socket visible in the sandbox: %q", res.Output)
	}
}

// /tmp stops at TmpMaxBytes with ENOSPC.
func TestSandboxTmpIsSized(t *testing.T) {
	h := newHost(t)
	sb := h.sandbox(t, SandboxConfig{TmpMaxBytes: 4 << 20})
	if !sb.tmpSize {
		t.Skip("this bwrap has no --size")
	}
	res := inBox(t, h, sb, nil, `head -c 16M /dev/zero > /tmp/fill; echo "status $?"; du -k /tmp/fill`)
	if !strings.Contains(res.Output, "No space left on device") || !strings.Contains(res.Output, "status 1") ||
		!strings.Contains(res.Output, "4096\t/tmp/fill") {
		t.Errorf("/tmp not capped at 4 MiB: %q", res.Output)
	}
	if !strings.Contains(sb.Describe(), "/tmp a private tmpfs of 4 MiB") {
		t.Errorf("Describe: %s", sb.Describe())
	}
}

// A call that allocates past MemoryMaxBytes is killed, and the output says
// which limit did it; the next call runs normally.
func TestSandboxMemoryLimit(t *testing.T) {
	h := newHost(t)
	sb := h.sandbox(t, SandboxConfig{MemoryMaxBytes: 64 << 20})
	if sb.pids.mem.base == "" {
		if os.Geteuid() == 0 {
			t.Fatalf("root worker without a memory cgroup: %s", sb.Describe())
		}
		t.Skipf("no writable memory cgroup: %s", sb.Describe())
	}
	start := time.Now()
	res := inBox(t, h, sb, nil, `x=$(head -c 300M /dev/zero | tr "\0" a); echo "survived ${#x}"`)
	if strings.Contains(res.Output, "survived 314572800") ||
		!strings.Contains(res.Output, "killed: memory limit tools.bash.memory_max_bytes (64 MiB) reached") {
		t.Errorf("balloon not stopped or not reported (%s): %q", time.Since(start), res.Output)
	}
	if res := inBox(t, h, sb, nil, "echo fine"); res.Output != "fine\nexit code: 0" {
		t.Errorf("next call: %q", res.Output)
	}
	if !strings.Contains(sb.Describe(), "at most 64 MiB of memory per call") {
		t.Errorf("Describe: %s", sb.Describe())
	}
}

// A root worker's commands run as an unprivileged uid: root-only files are
// unreadable, and what the commands and the file tools create belongs to
// that uid, so both can change each other's files.
func TestSandboxRunsUnprivilegedForRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the worker is not root: commands keep its uid")
	}
	h := newHost(t)
	f, err := os.CreateTemp("/var/tmp", "codeswarm-root-only-") // 0600, in a directory open to all
	if err != nil {
		t.Fatal(err)
	}
	secret := f.Name()
	t.Cleanup(func() { _ = os.Remove(secret) })
	_, _ = f.WriteString("root secret\n")
	f.Close()
	sb := h.sandbox(t, SandboxConfig{})
	if err := sb.PrepareWorktree(h.worktree); err != nil {
		t.Fatal(err)
	}
	if uid, gid, ok := sb.FileOwner(); !ok || uid != sandboxUID || gid != sandboxUID {
		t.Fatalf("FileOwner = %d %d %v", uid, gid, ok)
	}
	res := inBox(t, h, sb, nil, "id -u; cat /etc/shadow; cat "+secret+"; echo made > made.txt && mkdir -p d/e && echo x > d/e/f")
	if !strings.HasPrefix(res.Output, "65534\n") || strings.Contains(res.Output, "root secret") ||
		strings.Count(res.Output, "Permission denied") != 2 || !strings.HasSuffix(res.Output, "exit code: 0") {
		t.Errorf("commands not unprivileged: %q", res.Output)
	}
	for _, p := range []string{"made.txt", "d/e/f", "main.txt"} {
		if uid := ownerOf(t, filepath.Join(h.worktree, p)); uid != sandboxUID {
			t.Errorf("%s belongs to %d", p, uid)
		}
	}
	// The file tools create files and directories as the sandbox's uid...
	opts := Options{Root: h.worktree, Sandbox: sb, Env: testEnv(), BashTimeout: 20 * time.Second}
	if res := Run(t.Context(), opts, ToolWrite, jsonArgs(t, map[string]any{"path": "new/dir/w.txt", "content": "w\n"})); res.IsError {
		t.Fatal(res.Output)
	}
	for _, p := range []string{"new", "new/dir", "new/dir/w.txt"} {
		if uid := ownerOf(t, filepath.Join(h.worktree, p)); uid != sandboxUID {
			t.Errorf("file tool made %s as %d", p, uid)
		}
	}
	// ...which the commands can change, and the file tools edit theirs.
	res = inBox(t, h, sb, nil, "echo more >> new/dir/w.txt && touch new/dir/x && rm made.txt")
	if !strings.HasSuffix(res.Output, "exit code: 0") {
		t.Errorf("command cannot change the file tools' files: %q", res.Output)
	}
	if res := Run(t.Context(), opts, ToolEdit, jsonArgs(t, map[string]any{"path": "d/e/f", "old_string": "x", "new_string": "y"})); res.IsError {
		t.Errorf("edit of a command's file: %s", res.Output)
	}
	// The top directory and .git stay the worker's: codeswarm's own git,
	// running as root, does not refuse the worktree as another user's.
	if uid := ownerOf(t, h.worktree); uid != 0 {
		t.Errorf("worktree top directory belongs to %d", uid)
	}
	git(t, h.worktree, "add", "-A")
	git(t, h.worktree, "commit", "-qm", "by codeswarm")
}

func ownerOf(t *testing.T, p string) int {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return int(fi.Sys().(*syscall.Stat_t).Uid)
}

const gitSecret = "ghp_SECRETTOKEN0123456789"

// The repository's git config is shown without credentials, the stash is
// hidden, and git still works in the worktree.
func TestSandboxGitConfigView(t *testing.T) {
	h := newHost(t)
	git(t, h.repo, "config", "remote.origin.url", "https://x-access-token:"+gitSecret+"@github.com/o/r.git")
	git(t, h.repo, "config", "remote.mirror.url", "https://"+gitSecret+"@example.com/r.git")
	git(t, h.repo, "config", "http.https://github.com/.extraheader", "AUTHORIZATION: basic "+gitSecret)
	git(t, h.repo, "config", "credential.helper", "store --file /x/"+gitSecret)
	git(t, h.repo, "config", "include.path", "/etc/"+gitSecret)
	git(t, h.repo, "config", "url.https://u:"+gitSecret+"@github.com/.insteadOf", "gh:")
	git(t, h.repo, "config", "github.token", gitSecret)
	writeTestFile(t, filepath.Join(h.repo, "main.txt"), "stashed "+gitSecret+"\n")
	git(t, h.repo, "stash", "push", "-q", "-m", "wip "+gitSecret)
	sb := h.sandbox(t, SandboxConfig{})
	res := inBox(t, h, sb, nil, `set -x
git config --get remote.origin.url; git config --get remote.mirror.url
git config --list --show-origin
cat "$(git rev-parse --git-common-dir)/config"
git stash list; git show stash@{0}; cat "$(git rev-parse --git-common-dir)/logs/refs/stash"
git log --all --oneline; grep -r `+gitSecret[:8]+` "$(git rev-parse --git-common-dir)" --include=config --include=packed-refs
echo changed >> main.txt; git status --short; git diff --stat; git log --oneline -1`)
	if strings.Contains(res.Output, gitSecret) {
		t.Errorf("secret visible in the sandbox: %q", res.Output)
	}
	for _, want := range []string{"\nhttps://github.com/o/r.git\n", "\nhttps://example.com/r.git\n", "url.https://github.com/.insteadof=gh:",
		" M main.txt\n", "main.txt | 1 +", " base\n"} {
		if !strings.Contains(res.Output, want) {
			t.Errorf("output lacks %q: %q", want, res.Output)
		}
	}
	for _, gone := range []string{"extraheader", "credential.helper", "include.path", "github.token", "wip"} {
		if strings.Contains(res.Output, gone) {
			t.Errorf("output shows %q: %q", gone, res.Output)
		}
	}
	// Outside, the user's config and stash are intact.
	if got := git(t, h.repo, "config", "--get", "remote.origin.url"); !strings.Contains(got, gitSecret) {
		t.Errorf("user's config changed: %s", got)
	}
	if got := git(t, h.repo, "stash", "list"); !strings.Contains(got, "wip") {
		t.Errorf("user's stash changed: %s", got)
	}
}

func TestFilterGitConfig(t *testing.T) {
	in := `# a comment with ` + gitSecret + `
[core]
	bare = false
[remote "origin"]
	url = https://user:` + gitSecret + `@host/r.git
	fetch = +refs/heads/*:refs/remotes/origin/*
[http "https://host/"]
	extraHeader = Authorization: Bearer ` + gitSecret + `
	sslVerify = true
[Credential]
	helper = x
[includeIf "gitdir:/x/"]
	path = /y
[url "ssh://git:` + gitSecret + `@host/"] insteadOf = h:
[hub] oauthtoken = \
` + gitSecret + `
[user]
	password = ` + gitSecret + `
	name = n
`
	out := string(filterGitConfig([]byte(in)))
	if strings.Contains(out, gitSecret) || strings.Contains(strings.ToLower(out), "extraheader") ||
		strings.Contains(strings.ToLower(out), "credential") || strings.Contains(out, "/y") {
		t.Errorf("filtered config keeps secrets:\n%s", out)
	}
	for _, want := range []string{"bare = false", "url = https://host/r.git", "sslVerify = true", `[url "ssh://host/"]`, "insteadOf = h:", "name = n", "fetch = +refs"} {
		if !strings.Contains(out, want) {
			t.Errorf("filtered config lacks %q:\n%s", want, out)
		}
	}
}

// Real work in a repository whose files are a day old: git status, writing
// files and a go build, as the sandbox's uid.
func TestSandboxRealWorkOnOldFiles(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go toolchain")
	}
	h := newHost(t)
	writeTestFile(t, filepath.Join(h.worktree, "tiny", "go.mod"), "module tiny\n\ngo 1.21\n")
	writeTestFile(t, filepath.Join(h.worktree, "tiny", "main.go"), "package main\n\nimport \"os\"\n\nfunc main() { os.Stdout.WriteString(\"tiny ok\\n\") }\n")
	git(t, h.worktree, "add", "-A")
	git(t, h.worktree, "commit", "-qm", "tiny")
	old := time.Now().Add(-24 * time.Hour)
	_ = filepath.Walk(h.worktree, func(p string, _ os.FileInfo, err error) error {
		if err == nil {
			_ = os.Chtimes(p, old, old)
		}
		return nil
	})
	sb := h.sandbox(t, SandboxConfig{})
	sb.cfg.EnvPassthrough = []string{"GOFLAGS", "GOPROXY", "GOTOOLCHAIN", "GOCACHE"}
	env := append(testEnv(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOTOOLCHAIN=local", "GOCACHE=/tmp/go-build")
	res := Run(t.Context(), Options{Root: h.worktree, Sandbox: sb, Env: env, BashTimeout: 120 * time.Second},
		ToolBash, jsonArgs(t, map[string]any{"command": "git status --short && echo new > tiny/new.txt && cd tiny && go build -o /tmp/tiny . && /tmp/tiny && git status --short"}))
	if !strings.Contains(res.Output, "tiny ok") || !strings.Contains(res.Output, "?? new.txt") || !strings.HasSuffix(res.Output, "exit code: 0") {
		t.Errorf("work in the sandbox: %q", res.Output)
	}
}

// TestPreparePathsGivesOnlyWhatItNames: PreparePaths gives the named
// files, and the directories above them, to the sandbox's uid; it leaves
// alone what it was not given, what is already owned (no ctime change, or
// git would read the file again), and every hostile name: outside the
// worktree, absolute, into .git, at a symlink's target; one through a
// symlink out of the worktree is refused.
func TestPreparePathsGivesOnlyWhatItNames(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the worker is not root: commands keep its uid")
	}
	h := newHost(t)
	sb := h.sandbox(t, SandboxConfig{})
	victim := filepath.Join(filepath.Dir(h.worktree), "victim.txt")
	writeTestFile(t, victim, "not the worktree's\n")
	wt := h.worktree
	writeTestFile(t, filepath.Join(wt, "d", "e", "f.txt"), "new\n")
	writeTestFile(t, filepath.Join(wt, "other.txt"), "not named\n")
	writeTestFile(t, filepath.Join(wt, "owned.txt"), "already the sandbox's\n")
	if err := os.Lchown(filepath.Join(wt, "owned.txt"), sandboxUID, sandboxUID); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(wt, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Dir(victim), filepath.Join(wt, "up")); err != nil {
		t.Fatal(err)
	}
	ctime := func(p string) syscall.Timespec {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Ctim
	}
	before := ctime(filepath.Join(wt, "owned.txt"))
	if err := sb.PreparePaths(wt, []string{"d/e/f.txt", "owned.txt", "link", "gone.txt", "../victim.txt", "/etc/hostname", ".git", "d/../../victim.txt"}); err != nil {
		t.Fatalf("PreparePaths: %v", err)
	}
	// Through a symlink out of the worktree: refused (the caller then
	// walks the worktree, which changes symlinks and never follows them).
	if err := sb.PreparePaths(wt, []string{"up/victim.txt"}); err == nil || !strings.Contains(err.Error(), "escapes") {
		t.Errorf("a path through a symlink out: %v, want refused", err)
	}
	for _, p := range []string{"d", "d/e", "d/e/f.txt", "link", "owned.txt"} {
		if uid := ownerOf(t, filepath.Join(wt, p)); uid != sandboxUID {
			t.Errorf("%s belongs to %d, want %d", p, uid, sandboxUID)
		}
	}
	for _, p := range []string{filepath.Join(wt, "other.txt"), filepath.Join(wt, ".git"), victim, "/etc/hostname", filepath.Dir(victim)} {
		if uid := ownerOf(t, p); uid != 0 {
			t.Errorf("%s belongs to %d: PreparePaths reached what it was not given", p, uid)
		}
	}
	if ctime(filepath.Join(wt, "owned.txt")) != before {
		t.Error("an owned file was changed again")
	}
	if fi, err := os.Lstat(wt); err != nil || fi.Mode().Perm()&0o070 != 0o070 || ownerOf(t, wt) != 0 {
		t.Errorf("the worktree's top: %v, %v; want the worker's, open to the sandbox's group", fi.Mode(), err)
	}
}
