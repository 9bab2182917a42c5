package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"codeswarm/internal/pgtest"
	"codeswarm/llm/scripted"
)

// apiKey is what the scripted model demands of every request.
const apiKey = "sk-cluster-test-0123456789-SECRET"

// cluster is everything but the hosts' workers: PostgreSQL, the bridge,
// `codeswarm server` on PostgreSQL, the scripted model and a client.
type cluster struct {
	t        *testing.T
	dir      string
	bin      binaries
	pg       *pgtest.Server
	lan      *lan
	scripted *scripted.Handler
	model    *modelRecorder
	modelURL string
	frontend string // the server's gRPC address on the bridge
	server   *exec.Cmd
	srvLogs  *syncBuffer
	client   client.Client
	queue    string
	hosts    []*host
}

type binaries struct{ codeswarm, worker string }

var (
	buildOnce sync.Once
	built     binaries
	buildErr  error
)

// buildBinaries builds the CLI and the worker once per test process.
func buildBinaries(t *testing.T) binaries {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "codeswarm-cluster-bin-")
		if err != nil {
			buildErr = err
			return
		}
		built = binaries{codeswarm: filepath.Join(dir, "codeswarm"), worker: filepath.Join(dir, "codeswarm-worker")}
		for pkg, out := range map[string]string{"codeswarm/starter": built.codeswarm, "codeswarm/worker": built.worker} {
			if b, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built
}

// requirePrivileges skips (fails in CI) where namespaces cannot be made.
func requirePrivileges(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		pgtest.Unavailable(t, "the cluster test makes network namespaces: it needs root")
	}
	for _, prog := range []string{"ip", "unshare", "runuser", "git"} {
		if _, err := exec.LookPath(prog); err != nil {
			pgtest.Unavailable(t, prog+" not found (Debian: iproute2, util-linux, git)")
		}
	}
}

// newCluster starts PostgreSQL, the bridge, the scripted model and the
// server; hosts are added by the test.
func newCluster(t *testing.T, script scripted.Script, opts ...scripted.Option) *cluster {
	t.Helper()
	requirePrivileges(t)
	c := &cluster{t: t, dir: t.TempDir(), bin: buildBinaries(t), queue: "cluster"}
	// Hosts run as root but in other namespaces; the test's own temp dir
	// must be reachable from them.
	if err := os.Chmod(c.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	c.pg = pgtest.Start(t)
	pgUp := time.Now()
	c.lan = newLAN(t)
	c.startModel(script, opts...)
	c.startServer()
	t.Logf("PostgreSQL up in %s; codeswarm server on it serving in %s more", pgUp.Sub(began).Round(time.Millisecond), time.Since(pgUp).Round(time.Millisecond))
	return c
}

// startModel serves the scripted model on the bridge, recording who called.
func (c *cluster) startModel(script scripted.Script, opts ...scripted.Option) {
	t := c.t
	ln, err := net.Listen("tcp", net.JoinHostPort(c.lan.gateway(), "0"))
	if err != nil {
		t.Fatalf("model listen: %v", err)
	}
	c.scripted = scripted.NewHandler(script, append([]scripted.Option{scripted.WithAPIKey(apiKey)}, opts...)...)
	c.model = newModelRecorder(c.scripted)
	srv := &http.Server{Handler: c.model, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	c.modelURL = "http://" + ln.Addr().String() + "/v1"
}

// startServer runs `codeswarm server` on PostgreSQL, listening on the
// bridge, and dials it.
func (c *cluster) startServer() {
	t := c.t
	port, uiPort := freePort(t, c.lan.gateway()), freePort(t, c.lan.gateway())
	home := filepath.Join(c.dir, "server")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	c.frontend = net.JoinHostPort(c.lan.gateway(), strconv.Itoa(port))
	c.srvLogs = &syncBuffer{}
	cmd := exec.Command(c.bin.codeswarm, "server")
	cmd.Dir = home
	cmd.Env = append(c.baseEnv(home),
		"CODESWARM_EMBEDDED_DB_URL="+c.pg.URL("temporal"),
		"CODESWARM_EMBEDDED_IP="+c.lan.gateway(),
		"CODESWARM_EMBEDDED_PORT="+strconv.Itoa(port),
		"CODESWARM_EMBEDDED_UI_PORT="+strconv.Itoa(uiPort),
		// The most the server ever logs, to check none of it is the password.
		"CODESWARM_LOG_LEVEL=debug",
	)
	cmd.Stdout, cmd.Stderr = c.srvLogs, c.srvLogs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start server: %v", err)
	}
	c.server = cmd
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	c.client = c.waitServer()
	t.Cleanup(c.client.Close)
}

// waitServer dials the server once its namespace is served.
func (c *cluster) waitServer() client.Client {
	t := c.t
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for {
		cl, err := client.DialContext(ctx, client.Options{HostPort: c.frontend, Logger: nopLogger{}})
		if err == nil {
			_, err = cl.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: "default"})
			if err == nil {
				return cl
			}
			cl.Close()
		}
		if ctx.Err() != nil {
			t.Fatalf("server on PostgreSQL not ready: %v\nserver output:\n%s", err, tail(c.srvLogs.String(), 4000))
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// baseEnv is a clean environment: nothing of the test's own leaks in.
func (c *cluster) baseEnv(home string) []string {
	return []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_STATE_HOME=" + filepath.Join(home, "state"),
		"XDG_CONFIG_HOME=" + filepath.Join(home, "config"),
		"CODESWARM_TEMPORAL_TASK_QUEUE=" + c.queue,
		"CODESWARM_LLM_BASE_URL=" + c.modelURL,
		"CODESWARM_LLM_API_KEY=" + apiKey,
		"CODESWARM_LLM_MODEL=scripted",
		"CODESWARM_LOG_LEVEL=info",
		"CODESWARM_LOG_FORMAT=json",
		// One setting for every process, as in a deployment: the hosts'
		// workers watch runs' hosts with it, `codeswarm workers` judges
		// live and lost with it. A lost host is reported within seconds,
		// not the default 90 s.
		"CODESWARM_WORKSPACE_HOST_LOST_AFTER=" + hostLostAfter.String(),
		// The runs repeat one task; each must call the model, not the
		// result cache.
		"CODESWARM_CACHE_ENABLED=false",
	}
}

// runCLI runs the codeswarm CLI in the root namespace: the "fourth
// process" that starts runs and holds no worker.
func (c *cluster) runCLI(args ...string) (string, error) {
	home := filepath.Join(c.dir, "client")
	if err := os.MkdirAll(home, 0o755); err != nil {
		return "", err
	}
	cmd := exec.Command(c.bin.codeswarm, args...)
	cmd.Dir = home
	cmd.Env = append(c.baseEnv(home), "CODESWARM_TEMPORAL_ADDRESS="+c.frontend)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func freePort(t *testing.T, ip string) int {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("free port on %s: %v", ip, err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// modelCall is one chat completion request the scripted model answered.
type modelCall struct {
	at     time.Time
	from   string // caller's IP: which host
	status int
}

// modelRecorder wraps the scripted model to see where each call came from.
type modelRecorder struct {
	h     http.Handler
	mu    sync.Mutex
	calls []modelCall
}

func newModelRecorder(h http.Handler) *modelRecorder { return &modelRecorder{h: h} }

func (m *modelRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	at := time.Now()
	m.h.ServeHTTP(sw, r)
	if r.Method != http.MethodPost {
		return
	}
	from, _, _ := net.SplitHostPort(r.RemoteAddr)
	m.mu.Lock()
	m.calls = append(m.calls, modelCall{at: at, from: from, status: sw.status})
	m.mu.Unlock()
}

func (m *modelRecorder) snapshot() []modelCall {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]modelCall(nil), m.calls...)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// nopLogger silences the test's own SDK client.
type nopLogger struct{}

func (nopLogger) Debug(string, ...any) {}
func (nopLogger) Info(string, ...any)  {}
func (nopLogger) Warn(string, ...any)  {}
func (nopLogger) Error(string, ...any) {}

var errNoHost = errors.New("no workspace queue in the run's history")
