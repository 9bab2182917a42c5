package tools

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// memLimit is the memory cgroup of each call: cgroup v2 memory.max (and
// memory.swap.max 0) in the same per-call cgroup as the pids limit, or a
// per-call cgroup in the v1 memory hierarchy (memory.limit_in_bytes, and
// memory.memsw.limit_in_bytes when swap accounting is on).
type memLimit struct {
	max  int64
	base string // "" when there is no memory cgroup
	v2   bool   // base is the v2 pids base, which also holds memory
	why  string // why there is none
}

func newMemLimit(max int64, name, pidsBase string) memLimit {
	m := memLimit{max: max}
	if max <= 0 {
		m.why = "tools.bash.memory_max_bytes is 0"
		return m
	}
	own, err := ownCgroups()
	if err != nil {
		m.why = err.Error()
		return m
	}
	var errs []error
	if pidsBase != "" && exists(filepath.Join(pidsBase, "cgroup.subtree_control")) {
		// v2: the pids base delegates memory too, if its parent lets it.
		err := os.WriteFile(filepath.Join(pidsBase, "cgroup.subtree_control"), []byte("+memory"), 0o644)
		if err == nil {
			m.base, m.v2 = pidsBase, true
			return m
		}
		errs = append(errs, fmt.Errorf("cgroup v2: %w", err))
	} else if p, ok := own[""]; ok && pidsBase == "" {
		errs = append(errs, fmt.Errorf("cgroup v2 at %s: no pids base to hold it", p))
	}
	if p, ok := own["memory"]; ok {
		base, err := makeV1MemBase(filepath.Join(cgroupRoot, "memory", p), name)
		if err == nil {
			m.base = base
			return m
		}
		errs = append(errs, fmt.Errorf("cgroup v1 memory: %w", err))
	}
	if len(errs) == 0 {
		errs = append(errs, errors.New("no memory cgroup controller"))
	}
	m.why = errors.Join(errs...).Error()
	return m
}

func makeV1MemBase(parent, name string) (string, error) {
	sweepStale(parent)
	base := filepath.Join(parent, name)
	if err := os.Mkdir(base, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(base, "memory.limit_in_bytes")); err != nil {
		_ = os.Remove(base)
		return "", err
	}
	return base, nil
}

func (m memLimit) describe() string {
	if m.base == "" {
		return "NO memory limit (" + m.why + ")"
	}
	return fmt.Sprintf("at most %s of memory per call (memory cgroup %s)", formatBytes(m.max), m.base)
}

// makeCall creates call n's memory cgroup with its limits set and returns
// its directory ("" when there is no memory cgroup). In v2 it is the pids
// cgroup of the call, which wrap has created already.
func (m memLimit) makeCall(n string) (string, error) {
	if m.base == "" {
		return "", nil
	}
	dir := filepath.Join(m.base, "call-"+n)
	max := strconv.FormatInt(m.max, 10)
	if m.v2 {
		if err := os.WriteFile(filepath.Join(dir, "memory.max"), []byte(max), 0o644); err != nil {
			return "", fmt.Errorf("set memory.max: %w", err)
		}
		// No swap: the limit is memory, not memory plus disk. Absent
		// without swap accounting.
		_ = os.WriteFile(filepath.Join(dir, "memory.swap.max"), []byte("0"), 0o644)
		return dir, nil
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", fmt.Errorf("create memory cgroup: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "memory.limit_in_bytes"), []byte(max), 0o644); err != nil {
		_ = os.Remove(dir)
		return "", fmt.Errorf("set memory.limit_in_bytes: %w", err)
	}
	if f := filepath.Join(dir, "memory.memsw.limit_in_bytes"); exists(f) {
		if err := os.WriteFile(f, []byte(max), 0o644); err != nil {
			_ = os.Remove(dir)
			return "", fmt.Errorf("set memory.memsw.limit_in_bytes: %w", err)
		}
	}
	return dir, nil
}

// oomKilled reports whether the kernel killed a process of the call's
// memory cgroup dir for reaching its limit.
func (m memLimit) oomKilled(dir string) bool {
	file := "memory.oom_control" // v1: "oom_kill N" (Linux 4.13+)
	if m.v2 {
		file = "memory.events"
	}
	data, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return false
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), " "); ok && k == "oom_kill" {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n > 0
		}
	}
	return false
}

// memoryKilledNote is the line a call killed by its memory limit ends with.
func memoryKilledNote(max int64) string {
	return fmt.Sprintf("killed: memory limit tools.bash.memory_max_bytes (%s) reached; use less memory at once (smaller inputs, fewer parallel jobs)", formatBytes(max))
}

// formatBytes writes n in the largest binary unit that divides it, or with
// one decimal.
func formatBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	v := float64(n)
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d %s", int64(v), units[i])
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}
