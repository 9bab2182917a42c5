package devserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uioptions "github.com/temporalio/ui-server/v2/server/server_options"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

const testTaskQueue = "devserver-test"

// waitFor bounds how long tests wait for eventually consistent visibility.
const waitFor = 20 * time.Second

// GreetInput is the test workflow's and activity's input.
type GreetInput struct {
	Name string `json:"name"`
}

// GreetResult is the test workflow's and activity's result.
type GreetResult struct {
	Greeting string `json:"greeting"`
}

// GreetWorkflow runs one activity.
func GreetWorkflow(ctx workflow.Context, in GreetInput) (GreetResult, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
	var out GreetResult
	err := workflow.ExecuteActivity(ctx, GreetActivity, in).Get(ctx, &out)
	return out, err
}

// GreetActivity greets.
func GreetActivity(_ context.Context, in GreetInput) (GreetResult, error) {
	return GreetResult{Greeting: "hello " + in.Name}, nil
}

// startServer starts a server that the test stops.
func startServer(t testing.TB, opts Options) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return s
}

// dial connects a client and a worker running the greet workflow; both
// stop before the server does.
func dial(t testing.TB, s *Server) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{HostPort: s.FrontendAddress(), Namespace: s.Namespace(), Logger: nopLogger{}})
	if err != nil {
		t.Fatalf("dial %s: %v", s.FrontendAddress(), err)
	}
	t.Cleanup(c.Close)
	w := worker.New(c, testTaskQueue, worker.Options{})
	w.RegisterWorkflow(GreetWorkflow)
	w.RegisterActivity(GreetActivity)
	w.RegisterWorkflow(SequentialWorkflow)
	w.RegisterActivity(NoopActivity)
	if err := w.Start(); err != nil {
		t.Fatalf("start worker: %v", err)
	}
	t.Cleanup(w.Stop)
	return c
}

// greet runs GreetWorkflow to completion under id.
func greet(t testing.TB, c client.Client, id, name string, sa temporal.SearchAttributes) GreetResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: id, TaskQueue: testTaskQueue, TypedSearchAttributes: sa,
	}, GreetWorkflow, GreetInput{Name: name})
	if err != nil {
		t.Fatalf("start workflow %s: %v", id, err)
	}
	var out GreetResult
	if err := run.Get(ctx, &out); err != nil {
		t.Fatalf("workflow %s: %v", id, err)
	}
	return out
}

// listEventually lists query until it returns want executions.
func listEventually(t testing.TB, c client.Client, query string, want int) []string {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		resp, err := c.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{Query: query})
		if err == nil && len(resp.GetExecutions()) == want {
			var ids []string
			for _, e := range resp.GetExecutions() {
				ids = append(ids, e.GetExecution().GetWorkflowId())
			}
			return ids
		}
		if time.Now().After(deadline) {
			t.Fatalf("list %q: want %d executions, got %d (err %v)", query, want, len(resp.GetExecutions()), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRestartKeepsState(t *testing.T) {
	// The parent directory does not exist yet: Start must create it.
	dbPath := filepath.Join(t.TempDir(), "state", "temporal.db")
	const id = "persisted-1"
	opts := Options{DBPath: dbPath, UIPort: -1}

	first, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("first Start: %v", err)
	}
	c1, err := client.Dial(client.Options{HostPort: first.FrontendAddress(), Logger: nopLogger{}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	w := worker.New(c1, testTaskQueue, worker.Options{})
	w.RegisterWorkflow(GreetWorkflow)
	w.RegisterActivity(GreetActivity)
	if err := w.Start(); err != nil {
		t.Fatalf("start worker: %v", err)
	}
	if got := greet(t, c1, id, "swarm", temporal.SearchAttributes{}); got.Greeting != "hello swarm" {
		t.Fatalf("first run result = %q", got.Greeting)
	}
	if _, err := os.Stat(dbPath + "-wal"); err != nil {
		t.Errorf("want WAL journal next to %s: %v", dbPath, err)
	}
	w.Stop()
	c1.Close()
	if err := first.Stop(); err != nil {
		t.Fatalf("first Stop: %v", err)
	}

	second := startServer(t, opts)
	if second.FrontendAddress() == first.FrontendAddress() {
		t.Logf("restart reused frontend address %s", second.FrontendAddress())
	}
	c2 := dial(t, second)
	var out GreetResult
	if err := c2.GetWorkflow(context.Background(), id, "").Get(context.Background(), &out); err != nil {
		t.Fatalf("get %s after restart: %v", id, err)
	}
	if out.Greeting != "hello swarm" {
		t.Errorf("result after restart = %q, want %q", out.Greeting, "hello swarm")
	}
	ids := listEventually(t, c2, fmt.Sprintf("WorkflowId = '%s' AND ExecutionStatus = 'Completed'", id), 1)
	if ids[0] != id {
		t.Errorf("listed %v, want [%s]", ids, id)
	}
}

func TestParallelServersDoNotCollide(t *testing.T) {
	servers := make([]*Server, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range servers {
		wg.Go(func() { servers[i], errs[i] = Start(context.Background(), Options{}) })
	}
	wg.Wait()
	for i, s := range servers {
		if errs[i] != nil {
			t.Fatalf("server %d: %v", i, errs[i])
		}
		t.Cleanup(func() { _ = s.Stop() })
	}
	a, b := servers[0], servers[1]
	if a.FrontendAddress() == b.FrontendAddress() || a.UIURL() == b.UIURL() {
		t.Fatalf("servers share addresses: %s %s / %s %s", a.FrontendAddress(), a.UIURL(), b.FrontendAddress(), b.UIURL())
	}
	ca, cb := dial(t, a), dial(t, b)
	greet(t, ca, "only-in-a", "a", temporal.SearchAttributes{})
	greet(t, cb, "only-in-b", "b", temporal.SearchAttributes{})
	// Separate in-memory databases: neither sees the other's workflow.
	_, err := cb.DescribeWorkflowExecution(context.Background(), "only-in-a", "")
	var notFound *serviceerror.NotFound
	if !errors.As(err, &notFound) {
		t.Errorf("describe only-in-a on server b: want NotFound, got %v", err)
	}
}

func TestWebUI(t *testing.T) {
	s := startServer(t, Options{})
	if !strings.HasPrefix(s.UIURL(), "http://127.0.0.1:") {
		t.Fatalf("UIURL = %q", s.UIURL())
	}
	c := dial(t, s)
	greet(t, c, "ui-visible", "ui", temporal.SearchAttributes{})
	listEventually(t, c, "WorkflowId = 'ui-visible'", 1)

	status, body := httpGet(t, s.UIURL()+"/")
	if status != http.StatusOK || !strings.Contains(strings.ToLower(body), "<html") {
		t.Errorf("GET / = %d, body starts %.80q", status, body)
	}

	var list struct {
		Executions []struct {
			Execution struct {
				WorkflowID string `json:"workflowId"`
				RunID      string `json:"runId"`
			} `json:"execution"`
		} `json:"executions"`
	}
	getJSON(t, s.UIURL()+"/api/v1/namespaces/default/workflows", &list)
	if len(list.Executions) != 1 || list.Executions[0].Execution.WorkflowID != "ui-visible" {
		t.Fatalf("workflow list = %+v", list)
	}
	exec := list.Executions[0].Execution

	var history struct {
		History struct {
			Events []json.RawMessage `json:"events"`
		} `json:"history"`
	}
	getJSON(t, fmt.Sprintf("%s/api/v1/namespaces/default/workflows/%s/history?execution.runId=%s", s.UIURL(), exec.WorkflowID, exec.RunID), &history)
	if len(history.History.Events) == 0 {
		t.Errorf("history of %s has no events", exec.WorkflowID)
	}
	// The single-page app serves the workflow's history page itself.
	page := fmt.Sprintf("%s/namespaces/default/workflows/%s/%s/history", s.UIURL(), exec.WorkflowID, exec.RunID)
	if status, _ := httpGet(t, page); status != http.StatusOK {
		t.Errorf("GET %s = %d", page, status)
	}
}

func httpGet(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

func getJSON(t testing.TB, url string, v any) {
	t.Helper()
	status, body := httpGet(t, url)
	if status != http.StatusOK {
		t.Fatalf("GET %s = %d: %.200s", url, status, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: not JSON: %v: %.200s", url, err, body)
	}
}

func TestSearchAttributeQueryableAfterStart(t *testing.T) {
	runID := temporal.NewSearchAttributeKeyKeyword("CodeswarmRunId")
	attrs := map[string]enumspb.IndexedValueType{runID.GetName(): enumspb.INDEXED_VALUE_TYPE_KEYWORD}
	tests := []struct {
		name string
		// existingDB starts once without the attribute first, so Start
		// must add it to a namespace that already exists.
		existingDB bool
	}{
		{name: "new database"},
		{name: "existing database", existingDB: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dbPath := filepath.Join(t.TempDir(), "temporal.db")
			if tt.existingDB {
				s, err := Start(context.Background(), Options{DBPath: dbPath, UIPort: -1})
				if err != nil {
					t.Fatalf("Start without attribute: %v", err)
				}
				if err := s.Stop(); err != nil {
					t.Fatalf("Stop: %v", err)
				}
			}
			s := startServer(t, Options{DBPath: dbPath, UIPort: -1, SearchAttributes: attrs})
			c := dial(t, s)
			greet(t, c, "tagged", "sa", temporal.NewSearchAttributes(runID.ValueSet("run-42")))
			greet(t, c, "untagged", "sa", temporal.SearchAttributes{})
			ids := listEventually(t, c, "CodeswarmRunId = 'run-42'", 1)
			if ids[0] != "tagged" {
				t.Errorf("query by attribute listed %v, want [tagged]", ids)
			}
		})
	}
}

func TestStopTwice(t *testing.T) {
	s, err := Start(context.Background(), Options{})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("first Stop: %v", err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

func TestStartRejectsBadOptions(t *testing.T) {
	// A regular file where a directory should be: unwritable even for root.
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port

	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"unwritable db path", Options{DBPath: filepath.Join(file, "temporal.db")}, filepath.Join(file, "temporal.db")},
		{"not an IP", Options{IP: "example.com"}, `IP "example.com"`},
		{"port out of range", Options{Port: 70000}, "Port 70000"},
		{"UI port out of range", Options{UIPort: -2}, "UIPort -2"},
		{"bad log level", Options{LogLevel: "loud"}, `LogLevel "loud"`},
		{"busy frontend port", Options{Port: busyPort}, fmt.Sprintf("frontend port %d", busyPort)},
		{"busy UI port", Options{UIPort: busyPort}, fmt.Sprintf("UI port %d", busyPort)},
		{"too many keyword attributes", Options{SearchAttributes: manyKeywords(100)}, "search attributes of type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Start(context.Background(), tt.opts)
			if err == nil {
				_ = s.Stop()
				t.Fatalf("Start succeeded, want error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}

func manyKeywords(n int) map[string]enumspb.IndexedValueType {
	m := make(map[string]enumspb.IndexedValueType, n)
	for i := range n {
		m[fmt.Sprintf("Kw%d", i)] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
	}
	return m
}

func TestServerLogsFilteredByLevel(t *testing.T) {
	tests := []struct {
		name     string
		level    string
		minLevel zapcore.Level
		wantInfo bool
	}{
		{name: "default is warn", minLevel: zapcore.WarnLevel},
		{name: "info when asked", level: "info", minLevel: zapcore.InfoLevel, wantInfo: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			core, logs := observer.New(zapcore.DebugLevel)
			s, err := Start(context.Background(), Options{UIPort: -1, Logger: zap.New(core), LogLevel: tt.level})
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			if err := s.Stop(); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			sawInfo := false
			for _, e := range logs.All() {
				if e.Level < tt.minLevel {
					t.Fatalf("got %s entry %q, want only >= %s", e.Level, e.Message, tt.minLevel)
				}
				sawInfo = sawInfo || e.Level == zapcore.InfoLevel
			}
			if sawInfo != tt.wantInfo {
				t.Errorf("saw info entries = %v, want %v", sawInfo, tt.wantInfo)
			}
		})
	}
}

// nopLogger silences the SDK in tests.
type nopLogger struct{}

func (nopLogger) Debug(string, ...any) {}
func (nopLogger) Info(string, ...any)  {}
func (nopLogger) Warn(string, ...any)  {}
func (nopLogger) Error(string, ...any) {}

// allocateDefaultPorts allocates the ports of a server with default
// options; the UI's held port is released when the test ends.
func allocateDefaultPorts(t *testing.T) (Options, *ports) {
	t.Helper()
	o, err := Options{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	p, err := allocatePorts(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.releaseUI)
	return o, &p
}

// TestUIPortHeldUntilTheUIStarts: the UI's port stays taken from allocation
// on, so another process's listener or outgoing connection cannot take it
// while the server starts. It is free again once released.
func TestUIPortHeldUntilTheUIStarts(t *testing.T) {
	o, p := allocateDefaultPorts(t)
	addr := hostPort(o.IP, p.ui)
	if l, err := net.Listen("tcp", addr); err == nil {
		_ = l.Close()
		t.Fatalf("UI port %d was free before the UI started", p.ui)
	}
	for _, port := range []int{p.frontend, p.history, p.matching, p.worker} {
		l, err := net.Listen("tcp", hostPort(o.IP, port))
		if err != nil {
			t.Fatalf("server port %d still held after allocation: %v", port, err)
		}
		_ = l.Close()
	}
	p.releaseUI()
	p.releaseUI() // twice is fine
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("UI port %d not free after release: %v", p.ui, err)
	}
	_ = l.Close()
}

// TestUIServesOnItsHeldListener: startUI serves on the listener held since
// allocation, so the port is never free for someone else to take. A
// goroutine tries to bind the port the whole time the UI starts; when the
// UI bound the port itself (as ui-server's Start does), such a bind in the
// gap made the UI server exit the test binary with status 1 and no output.
func TestUIServesOnItsHeldListener(t *testing.T) {
	o, p := allocateDefaultPorts(t)
	addr := hostPort(o.IP, p.ui)
	stop := make(chan struct{})
	grabbed := make(chan error, 1)
	tries := 0
	go func() {
		defer close(grabbed)
		for {
			select {
			case <-stop:
				return
			default:
			}
			tries++
			if l, err := net.Listen("tcp", addr); err == nil {
				_ = l.Close()
				grabbed <- fmt.Errorf("bound UI port %d during startUI", p.ui)
				return
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ui, err := startUI(ctx, o.IP, p, "127.0.0.1:1", "default", "")
	close(stop)
	if err != nil {
		t.Fatal(err)
	}
	defer ui.stop()
	if err := <-grabbed; err != nil {
		t.Fatal(err)
	}
	if tries == 0 {
		t.Fatal("the binding goroutine never tried")
	}
	status, body := httpGet(t, "http://"+addr+"/")
	if status != http.StatusOK || !strings.Contains(strings.ToLower(body), "<html") {
		t.Errorf("GET / = %d, body starts %.80q", status, body)
	}
	ui.stop()
	if l, err := net.Listen("tcp", addr); err != nil {
		t.Errorf("UI port %d not free after stop: %v", p.ui, err)
	} else {
		_ = l.Close()
	}
}

// TestUIRouterFound: the ui-server version in go.mod still keeps its
// router where uiRouter looks for it.
func TestUIRouterFound(t *testing.T) {
	srv := uiserver.NewServer(uioptions.WithConfigProvider(&uiconfig.Config{Host: "127.0.0.1", Port: 1, EnableUI: true, HideLogs: true, DisableNewsFetch: true}))
	if _, err := uiRouter(srv); err != nil {
		t.Fatal(err)
	}
}
