package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"codeswarm/activities"
	"codeswarm/config"
	"codeswarm/devserver"
	"codeswarm/internal/cli"
	"codeswarm/internal/swarmworker"
	"codeswarm/llm/scripted"
)

// apiKey is what the scripted model demands from both contenders.
const apiKey = "sk-bench-0123456789abcdef"

// stack is one benchmark's embedded Temporal server, scripted model and
// codeswarm worker (in this process), configured by settings.
type stack struct {
	t      *testing.T
	server *devserver.Server
	model  *scripted.Server
	client client.Client
	root   string
}

// startStack starts the server, the model answering w and a worker whose
// configuration is the defaults plus settings (config key → value).
func startStack(t *testing.T, w workload, settings map[string]string) *stack {
	t.Helper()
	return startStackWith(t, w, settings, nil)
}

// startStackWith is startStack with the server's dynamic config overridden
// by dc (key → value).
func startStackWith(t *testing.T, w workload, settings map[string]string, dc map[string]any) *stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	o := devserver.Options{UIPort: -1, Logger: zap.NewNop(), DynamicConfig: dc}
	if w.lean {
		// The server's state in a SQLite file, as `codeswarm run` keeps it
		// (embedded.db_path), not in the process's memory.
		o.DBPath = filepath.Join(t.TempDir(), "temporal.db")
	}
	srv, err := devserver.Start(ctx, o)
	if err != nil {
		t.Fatalf("start temporal: %v", err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	opts := []scripted.Option{scripted.WithAPIKey(apiKey)}
	if w.lean {
		opts = append(opts, scripted.WithoutBodies())
	}
	model, err := scripted.Start(w.script(), opts...)
	if err != nil {
		t.Fatalf("start scripted model: %v", err)
	}
	t.Cleanup(model.Close)
	tracker := swarmworker.NewTaskTracker()
	c, err := client.Dial(client.Options{HostPort: srv.FrontendAddress(), Logger: nopLogger{},
		ConnectionOptions: swarmworker.ConnectionOptions(srv.FrontendAddress(), tracker)})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(c.Close)
	s := &stack{t: t, server: srv, model: model, client: c, root: t.TempDir()}
	env := map[string]string{
		"CODESWARM_TEMPORAL_ADDRESS":    srv.FrontendAddress(),
		"CODESWARM_TEMPORAL_TASK_QUEUE": "bench",
		"CODESWARM_LLM_BASE_URL":        model.URL(),
		"CODESWARM_LLM_API_KEY":         apiKey,
		"CODESWARM_LLM_MODEL":           "scripted",
		"CODESWARM_WORKSPACE_ROOT":      s.root,
		"CODESWARM_LOG_LEVEL":           "error",
		"OPENAI_API_KEY":                "",
		// Every contender's run repeats the same work on the same tree:
		// the result cache would answer all but the first.
		"CODESWARM_CACHE_ENABLED": "false",
	}
	for k, v := range settings {
		env[config.EnvName(k)] = v
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	cfg, err := config.Load(config.LoadOptions{File: writeEmptyConfig(t)})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	workers, err := swarmworker.New(cfg, c, tracker, zap.NewNop())
	if err != nil {
		t.Fatalf("workers: %v", err)
	}
	if err := workers.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(workers.Stop)
	t.Setenv("CODESWARM_CONFIG", "")
	return s
}

// writeEmptyConfig keeps a codeswarm.yaml in the working directory or the
// user's config directory out of the benchmark.
func writeEmptyConfig(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "codeswarm.yaml")
	if err := os.WriteFile(p, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// runCodeswarm runs the plan on a fresh copy of w's repository through the
// CLI (`codeswarm run --no-worker`, served by the stack's worker) and
// returns its wall time and result. The run must succeed with every subtask
// merged and no worktree left.
func (s *stack) runCodeswarm(w workload, flags ...string) (time.Duration, activities.SwarmResult) {
	t := s.t
	repo := newRepo(t, w.repoFiles())
	cfgFile := writeEmptyConfig(t)
	args := append([]string{"--config", cfgFile, "run", "--repo", repo, "--task", task, "--no-worker", "--json"}, flags...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Hour)
	defer cancel()
	var out, errs bytes.Buffer
	start := time.Now()
	code := cli.Execute(ctx, args, cli.IO{Out: &out, Err: &errs})
	took := time.Since(start)
	var res activities.SwarmResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || code != 0 || !res.Success {
		t.Fatalf("codeswarm run: exit %d, %v\n%s%s\n%s", code, err, failedSubtasks(res, w.readOnly), tail(out.String()), tail(errs.String()))
	}
	if f := failedSubtasks(res, w.readOnly); f != "" {
		t.Fatalf("codeswarm run succeeded with subtasks not merged:\n%s", f)
	}
	if len(res.KeptWorktrees) > 0 {
		t.Fatalf("worktrees kept: %v", res.KeptWorktrees)
	}
	writeHeapProfile(t)
	// Only merged worktrees are removed: a read-only subtask's (merge
	// no_changes) stays, so the check is for workloads that change files.
	if n := strings.Count(gitCmd(t, repo, "worktree", "list", "--porcelain"), "worktree "); n != 1 && !w.readOnly {
		t.Fatalf("%d worktrees registered after the run, want only the main one", n)
	}
	return took, res
}

// failedSubtasks lists the subtasks of res that failed or were not merged
// (all but merge no_changes when readOnly), the first 20 with their exit
// reason and error: a failed run's cause, which the result's tail alone
// does not show in a run of thousands.
func failedSubtasks(res activities.SwarmResult, readOnly bool) string {
	var b strings.Builder
	n := 0
	for _, st := range res.SubtaskResults {
		if st.Success && (st.Merge == "merged" || readOnly) {
			continue
		}
		if n++; n <= 20 {
			fmt.Fprintf(&b, "  subtask %s: success %v, merge %q, exit %q, attempts %d, error %q\n", st.ID, st.Success, st.Merge, st.ExitReason, st.Attempts, st.Error)
		}
	}
	if n > 20 {
		fmt.Fprintf(&b, "  ... and %d more\n", n-20)
	}
	return b.String()
}

// runBaseline runs the same plan in process on a fresh repository.
func (s *stack) runBaseline(w workload, maxConcurrent int) time.Duration {
	t := s.t
	repo := newRepo(t, w.repoFiles())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Hour)
	defer cancel()
	start := time.Now()
	out, err := runBaseline(ctx, s.model.URL(), apiKey, repo, filepath.Join(t.TempDir(), "ws"), maxConcurrent)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("baseline: %v", err)
	}
	if want := len(w.agents); out.merged != want && !w.readOnly {
		t.Fatalf("baseline merged %d subtasks, want %d", out.merged, want)
	}
	return took
}

// historySize returns the events and bytes of a workflow's latest run.
func (s *stack) historySize(id string) (events, bytes int) {
	it := s.client.GetWorkflowHistory(context.Background(), id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			s.t.Fatalf("history of %s: %v", id, err)
		}
		events++
		bytes += proto.Size(ev)
	}
	return events, bytes
}

// peakRSS returns this process's peak resident set (VmHWM) in bytes.
func peakRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// resetPeakRSS starts a new VmHWM measurement (Linux: clear_refs 5).
// writeHeapProfile writes the process's live heap (server, worker, CLI
// and model together, right after a run, before the stack stops) to the
// file CODESWARM_BENCH_HEAPPROFILE names, for `go tool pprof`.
func writeHeapProfile(t *testing.T) {
	path := os.Getenv("CODESWARM_BENCH_HEAPPROFILE")
	if path == "" {
		return
	}
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		t.Fatalf("heap profile: %v", err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		t.Fatalf("heap profile: %v", err)
	}
}

func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0o200) }

func tail(s string) string {
	if len(s) > 3000 {
		return s[len(s)-3000:]
	}
	return s
}

type nopLogger struct{}

func (nopLogger) Debug(string, ...any) {}
func (nopLogger) Info(string, ...any)  {}
func (nopLogger) Warn(string, ...any)  {}
func (nopLogger) Error(string, ...any) {}

// lostTasks counts the workflow tasks that timed out or failed in the
// sub-agents of a run (the latest run of each): a sub-agent's local model
// calls hold its workflow task, whose timeout is short (2 s), so an
// overloaded worker that misses its heartbeat shows here. causes tallies
// the failures by cause (UNHANDLED_COMMAND: a signal came in while the
// task was being completed, which the server answers with a new task).
func (s *stack) lostTasks(res activities.SwarmResult) (timedOut, failed int, causes map[string]int) {
	causes = map[string]int{}
	for _, st := range res.SubtaskResults {
		it := s.client.GetWorkflowHistory(context.Background(), res.RunID+"."+st.ID, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				s.t.Fatalf("history of %s.%s: %v", res.RunID, st.ID, err)
			}
			switch ev.GetEventType() {
			case enums.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
				timedOut++
			case enums.EVENT_TYPE_WORKFLOW_TASK_FAILED:
				failed++
				causes[strings.TrimPrefix(ev.GetWorkflowTaskFailedEventAttributes().GetCause().String(), "WORKFLOW_TASK_FAILED_CAUSE_")]++
			}
		}
	}
	return timedOut, failed, causes
}
