package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"codeswarm/llm/scripted"
)

// serverProc is `codeswarm server` as a child process on a fixed SQLite file
// and fixed ports, so it can be killed and started again in its place.
type serverProc struct {
	t    *testing.T
	env  []string
	addr string
	cmd  *exec.Cmd
}

func startServerProcess(t *testing.T, env []string, addr string) *serverProc {
	t.Helper()
	s := &serverProc{t: t, env: env, addr: addr}
	s.start()
	return s
}

// start runs the server and waits until it answers on its frontend port.
func (s *serverProc) start() {
	s.t.Helper()
	cmd, _, errb := cliProcess(s.t, s.env, "server")
	s.cmd = cmd
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for {
		c, err := client.DialContext(ctx, client.Options{HostPort: s.addr, Logger: nopLogger{}})
		if err == nil {
			c.Close()
			return
		}
		if ctx.Err() != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			s.t.Fatalf("server at %s not up: %v\n%s", s.addr, err, tail(errb.String(), 4000))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// allDone reports whether the model is finished with every request.
func allDone(reqs []scripted.Request) bool {
	for _, q := range reqs {
		if !q.Done {
			return false
		}
	}
	return true
}

// startProcessStack starts, for a test that kills them, the scripted model
// with script, a demo repository, and the Temporal server and a worker as
// processes of their own on a SQLite file in a temp dir; the CLI's
// environment points at them.
func startProcessStack(t *testing.T, script scripted.Script) (model *scripted.Server, repo, addr string, srv *serverProc, worker *workerProc) {
	t.Helper()
	model, err := scripted.Start(script, scripted.WithAPIKey(testAPIKey))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(model.Close)
	repo, state := t.TempDir(), t.TempDir()
	if err := scripted.WriteDemoRepo(repo); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	setCLIEnv(t, addr, testQueue(t), model.URL(), filepath.Join(state, "ws"))
	srv = startServerProcess(t, []string{
		"CODESWARM_EMBEDDED_DB_PATH=" + filepath.Join(state, "temporal.db"),
		fmt.Sprintf("CODESWARM_EMBEDDED_PORT=%d", port),
		fmt.Sprintf("CODESWARM_EMBEDDED_UI_PORT=%d", freePort(t)),
		"CODESWARM_LOG_LEVEL=warn",
	}, addr)
	return model, repo, addr, srv, startWorkerProcess(t)
}

// kill SIGKILLs the server: no shutdown, whatever SQLite has not synced is lost.
func (s *serverProc) kill() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		s.t.Fatalf("kill server: %v", err)
	}
	_ = s.cmd.Wait()
}

// TestServerRestart SIGKILLs the Temporal server in the middle of a run and
// starts it again on the same SQLite file and port. The worker process,
// never restarted, reconnects by itself and the run completes exactly as an
// uninterrupted one.
func TestServerRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("kills the server process")
	}
	const id = "server-restart"
	script := slowDemo(crashLatency)
	ref := startReference(t, script, "")
	model, repo, addr, srv, worker := startProcessStack(t, script)

	start := time.Now()
	startDetached(t, repo, id)
	waitFor(t, 2*time.Minute, func() bool { return model.Count(scripted.KindAgent) >= 4 })
	c, err := client.Dial(client.Options{HostPort: addr, Logger: nopLogger{}})
	if err != nil {
		t.Fatalf("dial server: %v", err)
	}
	t.Cleanup(c.Close)
	// Kill with the run at rest around held model calls, then let their
	// answers reach the worker while the server is down: it must report
	// their completion to a dead server.
	freezeModel(t, model, os.Getenv("CODESWARM_WORKSPACE_ROOT"), worker.cmd.Process.Pid, 1)
	before := model.Requests()
	srv.kill()
	killed := time.Now()
	model.Release()
	waitFor(t, time.Minute, func() bool { return allDone(model.Requests()) })
	srv.start()
	t.Logf("server down for %s", time.Since(killed).Round(time.Millisecond))

	res := awaitResult(t, c, id, func() string { return "(worker still running)" })
	elapsed := time.Since(start)
	if err := worker.cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("the worker did not survive the server restart: %v", err)
	}
	all := model.Requests()
	s := accountKill(before, 0, all)
	t.Logf("server kill: requests before %d (in flight %d), answered calls re-sent %d, requests after %d (distinct calls in the run %d), run time %s",
		len(before), s.inFlight, s.resent, len(all)-len(before), distinctKeys(all), elapsed.Round(time.Millisecond))
	if s.inFlight == 0 {
		t.Error("no model call was in flight at the kill")
	}
	// The worker lived: the calls in flight were answered to it during the
	// outage and kept in its transcripts, so no call at all is sent twice.
	if n := len(all) - distinctKeys(all); n != 0 {
		t.Errorf("%d model calls were sent more than once; the worker received every answer", n)
	}
	checkLikeReference(t, repo, res, ref)
	if strings.Contains(fmtResult(res), testAPIKey) {
		t.Error("the result holds the API key")
	}
}
