package tools

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// pidsLimiter bounds the tasks and the memory of one sandboxed call.
// RLIMIT_NPROC is not enforced for uid 0, and the worker often runs as root
// (containers, CI), so the task limit is a pids cgroup per call when a
// writable one exists (cgroup v2 with the pids controller, or the v1 pids
// hierarchy); otherwise, for a non-root worker, RLIMIT_NPROC. A root worker
// without a writable pids cgroup has no process limit beyond the call's
// timeout, and Describe says so. The memory limit is a memory cgroup per call
// (v2 memory.max, or the v1 memory hierarchy), with no swap; without a
// writable one there is none, and Describe says so.
type pidsLimiter struct {
	max     int
	base    string // cgroup dir holding one child per call; "" when none
	seq     *atomic.Uint64
	why     string          // why there is no cgroup
	pending *sync.WaitGroup // per-call cgroups being removed
	mem     memLimit
}

const cgroupRoot = "/sys/fs/cgroup"

func newPidsLimiter(maxTasks int, memMax int64) pidsLimiter {
	l := pidsLimiter{max: maxTasks, seq: new(atomic.Uint64), pending: new(sync.WaitGroup)}
	name := fmt.Sprintf("codeswarm-sandbox-%d-%d", os.Getpid(), baseSeq.Add(1))
	base, err := makePidsBase(name)
	if err != nil {
		l.why = err.Error()
	} else {
		l.base = base
	}
	l.mem = newMemLimit(memMax, name, base)
	return l
}

// describe names the mechanism, for the start-up log line.
func (l pidsLimiter) describe() string {
	mem := l.mem.describe()
	switch {
	case l.base != "":
		return fmt.Sprintf("at most %d tasks per call (pids cgroup %s), %s", l.max, l.base, mem)
	case os.Geteuid() != 0:
		return fmt.Sprintf("at most %d processes per call (RLIMIT_NPROC), %s", l.max, mem)
	}
	return "NO process limit (running as root without a writable pids cgroup: " + l.why + "); a fork bomb runs until the bash timeout; " + mem
}

// callLimits is one call's cgroups.
type callLimits struct {
	done      func()      // removes the cgroups, killing anything left in them
	oomKilled func() bool // whether the memory limit killed a process of the call
}

// wrap makes argv join a fresh per-call cgroup (or lower RLIMIT_NPROC) and
// memory cgroup before it execs, so every process it forks is counted.
func (l pidsLimiter) wrap(argv []string) ([]string, callLimits, error) {
	none := callLimits{done: func() {}, oomKilled: func() bool { return false }}
	var dirs []string
	undo := func() {
		for _, d := range dirs {
			_ = os.Remove(d)
		}
	}
	n := strconv.FormatUint(l.seq.Add(1), 10)
	if l.base != "" {
		dir := filepath.Join(l.base, "call-"+n)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return nil, none, fmt.Errorf("create pids cgroup: %w", err)
		}
		dirs = append(dirs, dir)
		if err := os.WriteFile(filepath.Join(dir, "pids.max"), []byte(strconv.Itoa(l.max)), 0o644); err != nil {
			undo()
			return nil, none, fmt.Errorf("set pids.max: %w", err)
		}
	}
	memDir, err := l.mem.makeCall(n)
	if err != nil {
		undo()
		return nil, none, err
	}
	if memDir != "" && !slices.Contains(dirs, memDir) {
		dirs = append(dirs, memDir)
	}
	if len(dirs) == 0 {
		if os.Geteuid() == 0 {
			return argv, none, nil
		}
		script := fmt.Sprintf(`ulimit -u %d && exec "$@"`, l.max)
		return append([]string{"/bin/sh", "-c", script, "sh"}, argv...), none, nil
	}
	script := `while [ "$1" != -- ]; do echo $$ > "$1/cgroup.procs" || exit 125; shift; done; shift; exec "$@"`
	if l.base == "" && os.Geteuid() != 0 {
		script = fmt.Sprintf(`ulimit -u %d && `, l.max) + script
	}
	prefix := append(append([]string{"/bin/sh", "-c", script, "sh"}, dirs...), "--")
	own := slices.Clone(dirs)
	// The removal runs after the call has returned: the namespace's
	// processes take a moment to exit, and the model need not wait for it.
	lim := callLimits{
		done: func() {
			l.pending.Go(func() {
				for _, d := range own {
					removeCgroup(d)
				}
			})
		},
		oomKilled: func() bool { return memDir != "" && l.mem.oomKilled(memDir) },
	}
	return append(prefix, argv...), lim, nil
}

// wait blocks until every finished call's cgroup is removed.
func (l pidsLimiter) wait() { l.pending.Wait() }

// close removes the base cgroups once every call's cgroup is gone.
func (l pidsLimiter) close() {
	l.wait()
	if l.base != "" {
		_ = os.Remove(l.base)
	}
	if l.mem.base != "" && l.mem.base != l.base {
		_ = os.Remove(l.mem.base)
	}
}

// removeCgroup kills what is left in dir and removes it; the PID namespace's
// teardown has normally emptied it already, but exits take a moment.
func removeCgroup(dir string) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) || time.Now().After(deadline) {
			return
		}
		for _, pid := range cgroupPids(dir) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func cgroupPids(dir string) []int {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// makePidsBase creates codeswarm-sandbox-<pid> below this process's own
// pids cgroup, trying cgroup v2 first, then the v1 pids hierarchy.
// One base per Sandbox: several workers may share a process (tests,
// `codeswarm dev`), and each removes its own base when it stops.
func makePidsBase(name string) (string, error) {
	own, err := ownCgroups()
	if err != nil {
		return "", err
	}
	var errs []error
	if p, ok := own[""]; ok {
		base, err := makeV2Base(filepath.Join(cgroupRoot, p), name)
		if err == nil {
			return base, nil
		}
		errs = append(errs, fmt.Errorf("cgroup v2: %w", err))
	}
	if p, ok := own["pids"]; ok {
		base, err := makeV1Base(filepath.Join(cgroupRoot, "pids", p), name)
		if err == nil {
			return base, nil
		}
		errs = append(errs, fmt.Errorf("cgroup v1 pids: %w", err))
	}
	if len(errs) == 0 {
		return "", errors.New("no pids cgroup controller")
	}
	return "", errors.Join(errs...)
}

// makeV2Base needs the pids controller delegated to parent's children; the
// base then delegates it on to the per-call cgroups.
func makeV2Base(parent, name string) (string, error) {
	ctrl, err := os.ReadFile(filepath.Join(parent, "cgroup.controllers"))
	if err != nil {
		return "", err
	}
	if !slices.Contains(strings.Fields(string(ctrl)), "pids") {
		return "", errors.New("pids controller not available")
	}
	_ = os.WriteFile(filepath.Join(parent, "cgroup.subtree_control"), []byte("+pids"), 0o644)
	sweepStale(parent)
	base := filepath.Join(parent, name)
	if err := os.Mkdir(base, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(base, "cgroup.subtree_control"), []byte("+pids"), 0o644); err != nil {
		_ = os.Remove(base)
		return "", err
	}
	return base, nil
}

func makeV1Base(parent, name string) (string, error) {
	sweepStale(parent)
	base := filepath.Join(parent, name)
	if err := os.Mkdir(base, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(base, "pids.max")); err != nil {
		_ = os.Remove(base)
		return "", err
	}
	return base, nil
}

// baseSeq numbers the bases this process creates.
var baseSeq atomic.Uint64

// sweepStale removes the bases of processes that are gone (a SIGKILLed
// worker cannot remove its own), with any per-call cgroups left in them.
func sweepStale(parent string) {
	bases, _ := filepath.Glob(filepath.Join(parent, "codeswarm-sandbox-*"))
	for _, base := range bases {
		pid, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(base), "codeswarm-sandbox-"), "-")
		if _, err := os.Stat(filepath.Join("/proc", pid)); err == nil || pid == "" {
			continue // its worker still runs
		}
		calls, _ := filepath.Glob(filepath.Join(base, "call-*"))
		for _, c := range calls {
			removeCgroup(c)
		}
		_ = os.Remove(base)
	}
}

// ownCgroups maps controller ("" for v2) to this process's cgroup path.
func ownCgroups() (map[string]string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	return out, sc.Err()
}
