package cli

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"codeswarm/devserver"
)

// syncBuffer is a bytes.Buffer safe for a command writing while the test
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// freePort returns a port nothing listens on at the moment.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// devProcess is a `codeswarm dev` running in the test.
type devProcess struct {
	srv            *devserver.Server
	exit           chan int
	stdout, stderr *syncBuffer
	logPath        string // where the server's log should be
}

// startDev runs `codeswarm dev` (server, Web UI and in-process worker) on
// free ports with its state in a temporary directory, and returns once it
// is up.
func startDev(t *testing.T) *devProcess {
	t.Helper()
	isolateConfig(t)
	state := filepath.Join(t.TempDir(), "state")
	t.Setenv("CODESWARM_EMBEDDED_DB_PATH", filepath.Join(state, "temporal.db"))
	t.Setenv("CODESWARM_EMBEDDED_PORT", strconv.Itoa(freePort(t)))
	t.Setenv("CODESWARM_EMBEDDED_UI_PORT", strconv.Itoa(freePort(t)))
	t.Setenv("CODESWARM_WORKSPACE_ROOT", t.TempDir())
	t.Setenv("OPENAI_API_KEY", "test-key-not-secret")

	started := make(chan *devserver.Server, 1)
	embeddedStarted = func(s *devserver.Server) { started <- s }
	t.Cleanup(func() { embeddedStarted = nil })

	ctx, cancel := context.WithCancel(context.Background())
	d := &devProcess{exit: make(chan int, 1), stdout: &syncBuffer{}, stderr: &syncBuffer{}, logPath: filepath.Join(state, devserver.LogFileName)}
	go func() { d.exit <- Execute(ctx, []string{"dev"}, IO{Out: d.stdout, Err: d.stderr}) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-d.exit:
		case <-time.After(30 * time.Second):
			t.Error("dev did not end 30 s after its context was cancelled")
		}
	})
	select {
	case d.srv = <-started:
	case code := <-d.exit:
		d.exit <- code
		t.Fatalf("dev exited with %d before its server started: %s", code, d.stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatal("no embedded server after 60 s")
	}
	t.Cleanup(func() { _ = d.srv.Stop() })
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(d.stdout.String(), "press Ctrl-C"); {
		if time.Now().After(deadline) {
			t.Fatalf("dev not up after 30 s; stdout:\n%s\nstderr:\n%s", d.stdout.String(), d.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return d
}

// awaitExit waits for dev to end after its server stopped at stopped, and
// checks that it ended within 5 s with exit code 1.
func (d *devProcess) awaitExit(t *testing.T, stopped time.Time) {
	t.Helper()
	var code int
	select {
	case code = <-d.exit:
		d.exit <- code
	case <-time.After(30 * time.Second):
		t.Fatalf("dev still running 30 s after its server stopped; stderr:\n%s", d.stderr.String())
	}
	took := time.Since(stopped)
	t.Logf("dev ended %v after the server stopped", took)
	if took > 5*time.Second {
		t.Errorf("dev ended %v after the server stopped, want within 5 s", took)
	}
	if code != ExitRunFailed {
		t.Errorf("exit code %d, want %d", code, ExitRunFailed)
	}
	if _, err := os.Stat(d.logPath); err != nil {
		t.Errorf("server log: %v", err)
	}
}

// TestEmbeddedServerStoppedUnderDev stops the embedded server from the side
// of a running `codeswarm dev`: the command ends within seconds with exit
// code 1 and one line on stderr that names the server's log, in the state
// directory beside temporal.db.
func TestEmbeddedServerStoppedUnderDev(t *testing.T) {
	d := startDev(t)
	stopped := time.Now()
	go func() { _ = d.srv.Stop() }()
	d.awaitExit(t, stopped)
	want := "codeswarm: the embedded Temporal server stopped unexpectedly; its log is " + d.logPath + "\n"
	if got := d.stderr.String(); got != want {
		t.Errorf("stderr:\n%s\nwant exactly:\n%s", got, want)
	}
}

// TestEmbeddedServerCrashUnderDev: the embedded server's services stop by
// themselves under a running `codeswarm dev` (its worker polling). The
// health checks notice; the command ends within seconds with exit code 1
// and one line saying which service stopped answering and where the log
// is, and the SDK's and worker's retry warnings do not reach the terminal.
func TestEmbeddedServerCrashUnderDev(t *testing.T) {
	logs := captureStderr(t) // the CLI's logger writes to os.Stderr
	d := startDev(t)
	before := len(logs())
	stopped := time.Now()
	if err := d.srv.SimulateCrash(); err != nil {
		t.Fatalf("SimulateCrash: %v", err)
	}
	d.awaitExit(t, stopped)
	got := d.stderr.String()
	re := regexp.MustCompile(`^codeswarm: the embedded Temporal server stopped unexpectedly \(its \w+ service at 127\.0\.0\.1:\d+ does not answer: connection refused\); its log is ` +
		regexp.QuoteMeta(d.logPath) + "\n$")
	if !re.MatchString(got) {
		t.Errorf("stderr:\n%s\nwant one line matching %s", got, re)
	}
	time.Sleep(time.Second) // anything the dying worker still had to say
	if after := logs()[before:]; strings.TrimSpace(after) != "" {
		t.Errorf("the CLI logged after the crash:\n%s", after)
	}
	if b, err := os.ReadFile(d.logPath); err != nil || !strings.Contains(string(b), "stopped answering: its") {
		t.Errorf("server log does not say why (%v):\n%s", err, b)
	}
}

// captureStderr points os.Stderr at a pipe for the test and returns what
// has been written to it so far.
func captureStderr(t *testing.T) func() string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	orig := os.Stderr
	os.Stderr = w
	var buf syncBuffer
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(&buf, r)
	}()
	t.Cleanup(func() {
		os.Stderr = orig
		_ = w.Close()
		<-copied
		_ = r.Close()
		if s := buf.String(); s != "" {
			t.Logf("CLI log:\n%s", s)
		}
	})
	return buf.String
}
