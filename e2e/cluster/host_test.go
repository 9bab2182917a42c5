package cluster

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// host is one worker "machine": a `worker` process in its own network
// namespace (the server is reached only over its veth), its own UTS
// hostname (= workspace.host) and its own mount namespace, in which every
// other host's workspace.root is covered by an empty read-only tmpfs: a
// host that needed another host's disk would fail.
type host struct {
	c    *cluster
	n    int
	name string // hostname and workspace.host
	root string // workspace.root
	home string // HOME and XDG_STATE_HOME of the process
	ns   *netns
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{} // closed when the process has exited
}

// addHost prepares host n (directories only); start runs it.
func (c *cluster) addHost(n int) *host {
	c.t.Helper()
	name := fmt.Sprintf("node%d", n)
	dir := filepath.Join(c.dir, "hosts", name)
	h := &host{c: c, n: n, name: name, root: filepath.Join(dir, "workspaces"), home: filepath.Join(dir, "home"), logs: &syncBuffer{}}
	for _, d := range []string{h.root, h.home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			c.t.Fatal(err)
		}
	}
	c.hosts = append(c.hosts, h)
	return h
}

// start creates the host's namespace and starts its worker; with the
// namespace already there (a restart after kill), it makes it anew.
func (h *host) start() {
	t := h.c.t
	t.Helper()
	h.ns = h.c.lan.addNetns(t, h.n, h.name)
	var hide []string
	for _, o := range h.c.hosts {
		if o != h {
			hide = append(hide, "mount -t tmpfs -o ro,size=64k tmpfs "+shellQuote(o.root))
		}
	}
	script := strings.Join(append(append([]string{"set -e", "hostname " + shellQuote(h.name)}, hide...),
		"exec "+shellQuote(h.c.bin.worker)), "\n")
	h.cmd = exec.Command("ip", "netns", "exec", h.ns.name,
		"unshare", "--uts", "--mount", "--propagation", "private", "--", "sh", "-c", script)
	h.cmd.Dir = h.home
	h.cmd.Env = append(h.c.baseEnv(h.home),
		"CODESWARM_TEMPORAL_ADDRESS="+h.c.frontend,
		"CODESWARM_WORKSPACE_ROOT="+h.root,
		"CODESWARM_WORKSPACE_HOST="+h.name,
	)
	h.cmd.Stdout, h.cmd.Stderr = h.logs, h.logs
	// Its own process group: kill reaches whatever the worker started.
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := h.cmd.Start(); err != nil {
		t.Fatalf("start host %s: %v", h.name, err)
	}
	h.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(h.cmd, h.done)
	t.Cleanup(h.kill)
}

// kill is a host lost for good: SIGKILL its worker (no shutdown, no
// goodbye to the server) and delete its network namespace. Idempotent;
// start brings the host back with the same workspace.root.
func (h *host) kill() {
	if h.cmd == nil || h.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		h.c.t.Errorf("host %s: worker did not exit 10 s after SIGKILL", h.name)
	}
	h.ns.del()
	h.cmd = nil
}

// alive reports whether the worker process still runs.
func (h *host) alive() bool {
	if h.cmd == nil {
		return false
	}
	select {
	case <-h.done:
		return false
	default:
		return true
	}
}

// syncBuffer is a bytes.Buffer safe for a process's two output streams.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
