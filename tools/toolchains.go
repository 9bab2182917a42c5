package tools

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// toolchain is a toolchain home found under a hidden directory (usually the
// home directory): shown read-only in the sandbox, with its variable.
type toolchain struct {
	name string // pyenv, nvm, rustup, cargo, go, read_only_paths
	dir  string
	env  string // variable naming dir in the sandbox ("" for none)
}

// detectToolchains finds the usual toolchain homes: pyenv, nvm, rustup and
// cargo (their variable, else their default place under home), and the Go
// root of the `go` in PATH. Only these directories are shown, never the
// rest of home (~/.ssh, ~/.config, the codeswarm config stay hidden).
func detectToolchains(home string, getenv func(string) string) []toolchain {
	var out []toolchain
	add := func(name, env, def string) {
		dir := getenv(env)
		if dir == "" && home != "" {
			dir = filepath.Join(home, def)
		}
		if dir != "" && filepath.IsAbs(dir) && isDir(dir) {
			out = append(out, toolchain{name: name, dir: filepath.Clean(dir), env: env})
		}
	}
	add("pyenv", "PYENV_ROOT", ".pyenv")
	add("nvm", "NVM_DIR", ".nvm")
	add("rustup", "RUSTUP_HOME", ".rustup")
	add("cargo", "CARGO_HOME", ".cargo")
	if root := goRoot(getenv); root != "" {
		out = append(out, toolchain{name: "go", dir: root})
	}
	return out
}

// goRoot is the Go root of the `go` found in PATH (GOROOT if set), so a Go
// installed under home (~/sdk/go1.x, ~/go) works; "" when there is none.
func goRoot(getenv func(string) string) string {
	if r := getenv("GOROOT"); r != "" && filepath.IsAbs(r) && isDir(filepath.Join(r, "src", "runtime")) {
		return filepath.Clean(r)
	}
	for _, dir := range filepath.SplitList(getenv("PATH")) {
		if !filepath.IsAbs(dir) {
			continue
		}
		bin, err := filepath.EvalSymlinks(filepath.Join(dir, "go"))
		if err != nil {
			continue
		}
		root := filepath.Dir(filepath.Dir(bin))
		if isDir(filepath.Join(root, "src", "runtime")) {
			return root
		}
		return ""
	}
	return ""
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// toolchains lists what the sandbox shows read-only beyond / and the caches:
// the toolchain homes found and tools.bash.read_only_paths. skipped says
// which read_only_paths entries were left out and why.
func (s *Sandbox) toolchains() (found []toolchain, skipped []string) {
	hidden := s.stateDirs()
	for _, t := range detectToolchains(s.home, os.Getenv) {
		// PYENV_ROOT=$HOME and the like would show the whole home.
		if !coversHidden(t.dir, hidden) {
			found = append(found, t)
		}
	}
	for _, p := range s.cfg.ReadOnlyPaths {
		switch {
		case !filepath.IsAbs(p):
			skipped = append(skipped, p+" (not absolute)")
		case !exists(p):
			skipped = append(skipped, p+" (missing)")
		case coversHidden(filepath.Clean(p), hidden):
			skipped = append(skipped, p+" (holds hidden state: home, workspace or config)")
		default:
			found = append(found, toolchain{name: "read_only_paths", dir: filepath.Clean(p)})
		}
	}
	return found, skipped
}

// coversHidden reports whether showing p would show a hidden path whole:
// p is one of them or holds one.
func coversHidden(p string, hidden []string) bool {
	for _, h := range hidden {
		if _, ok := within(p, h); ok {
			return true
		}
	}
	return false
}

// toolchainNote is the Describe suffix naming the toolchains shown.
func (s *Sandbox) toolchainNote() string {
	found, skipped := s.toolchains()
	var parts []string
	for _, t := range found {
		parts = append(parts, t.name+" "+t.dir)
	}
	note := ""
	if len(parts) > 0 {
		note += "; read-only toolchains: " + strings.Join(parts, ", ")
	}
	if len(skipped) > 0 {
		note += "; tools.bash.read_only_paths skipped: " + strings.Join(skipped, ", ")
	}
	return note
}

// toolchainArgs returns the bubblewrap arguments that make the toolchains
// found on this host (and tools.bash.read_only_paths) usable in a call in
// worktree root; hidden lists what the sandbox hides.
func (s *Sandbox) toolchainArgs(root string, hidden []string) []string {
	var ro, targets []string
	found, _ := s.toolchains()
	for _, t := range found {
		// Outside the hidden paths they are visible through / already.
		if t.name == "read_only_paths" || underAny(t.dir, hidden) {
			ro = append(ro, t.dir)
		}
	}
	targets = append(targets, ro...)
	dir, _, rw := s.goCache(root)
	if rw {
		targets = append(targets, dir)
	}
	// Directories bwrap makes for the mount points must be enterable by
	// the sandbox's uid.
	args := s.user.mountParents(hidden, targets)
	for _, p := range ro {
		args = append(args, "--ro-bind", p, p)
	}
	if rw {
		args = append(args, "--bind", dir, dir)
	}
	return args
}

// toolchainEnv adds the toolchains' variables to the sandbox environment.
// Without network, GOPROXY=off makes a missing module fail at once with a
// clear error instead of a dial timeout.
func (s *Sandbox) toolchainEnv(env []string) []string {
	found, _ := s.toolchains()
	for _, t := range found {
		if t.env != "" {
			env = setDefault(env, t.env, t.dir)
		}
	}
	if !s.cfg.Network {
		env = setDefault(env, "GOPROXY", "off")
	}
	return env
}

// goEnv points GOCACHE at the call's writable Go build cache, or, when the
// worker's cache is shown read-only instead, turns off the per-directory
// index Go 1.26 writes into GOCACHE even for a build that is otherwise a
// cache hit (it fails on a read-only cache once files are ~2 s old).
func (s *Sandbox) goEnv(root string, env []string) []string {
	dir, _, ok := s.goCache(root)
	if ok {
		return setEnv(env, "GOCACHE", dir)
	}
	if v, ok := lookupEnv(env, "GOCACHE"); ok && v != "off" {
		godebug := "goindex=0"
		if old := envValue(env, "GODEBUG"); old != "" {
			godebug = old + "," + godebug
		}
		return setEnv(env, "GODEBUG", godebug)
	}
	return env
}

// sandboxFileOwner is Sandbox.FileOwner; tests replace it.
var sandboxFileOwner = (*Sandbox).FileOwner

// goCache returns the writable Go build cache of the run whose worktree is
// root, when the worker has no build cache of its own to show read-only:
// <workspace root>/<run>/.state/go-build, shared by the run's calls,
// removed with the run, never shared with another run. ok is false when
// the worker's cache is shown read-only instead (see goEnv). A run cache
// seeded with hard links to the worker's was measured faster after its
// first call (0.6 s against 4.4 s), but Go rewrites some entries in place
// (the sandbox's uid may not, so builds failed), and a sandbox running as
// the worker's user could write through a link into every later run's
// builds; so it is not done.
func (s *Sandbox) goCache(root string) (dir string, seeded, ok bool) {
	ws := s.cfg.WorkspaceRoot
	if ws == "" || s.cfg.Off {
		return "", false, false
	}
	rel, in := within(filepath.Clean(ws), filepath.Clean(root))
	if !in || rel == "." {
		return "", false, false
	}
	run, _, nested := strings.Cut(rel, string(filepath.Separator))
	if !nested || run == ".state" {
		return "", false, false // a worktree is <workspace>/<run>/<name>
	}
	uid, gid, other := sandboxFileOwner(s)
	if s.workerGoCache() != "" {
		return "", false, false
	}
	dir = filepath.Join(ws, run, ".state", "go-build")
	if err := prepareGoCache(dir, uid, gid, other); err != nil {
		return "", false, false
	}
	return dir, false, true
}

// workerGoCache is the worker's own Go build cache shown read-only, or "".
func (s *Sandbox) workerGoCache() string {
	for _, c := range s.caches {
		if c.env == "GOCACHE" {
			return c.bind
		}
	}
	return ""
}

var goCacheOnce sync.Map // dir -> *sync.Once

// prepareGoCache creates dir once per process (owned by uid:gid when other)
// and, when other, links the worker's cache entries into it. A link is only
// made to a file the sandbox's user cannot write, so the sandbox cannot
// change the worker's cache through it.
func prepareGoCache(dir string, uid, gid int, other bool) error {
	once, _ := goCacheOnce.LoadOrStore(dir, new(sync.Once))
	once.(*sync.Once).Do(func() {
		if isDir(dir) {
			return // prepared by an earlier worker process
		}
		tmp := dir + ".new"
		_ = os.RemoveAll(tmp)
		if err := os.MkdirAll(tmp, 0o755); err != nil {
			return
		}
		if other {
			_ = filepath.WalkDir(tmp, func(p string, d fs.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					_ = os.Lchown(p, uid, gid)
				}
				return nil
			})
		}
		_ = os.Rename(tmp, dir)
	})
	if !isDir(dir) {
		return fmt.Errorf("go build cache %s could not be created", dir)
	}
	return nil
}

func setEnv(env []string, name, value string) []string {
	env = slices.DeleteFunc(env, func(kv string) bool { return strings.HasPrefix(kv, name+"=") })
	return append(env, name+"="+value)
}

func setDefault(env []string, name, value string) []string {
	if _, ok := lookupEnv(env, name); ok {
		return env
	}
	return append(env, name+"="+value)
}

// stateDirs are the worker's state the sandbox always hides: the home and
// tools' Hide list (workspace root, database directory, config file).
func (s *Sandbox) stateDirs() []string {
	var out []string
	for _, p := range append([]string{s.home}, s.cfg.Hide...) {
		if p != "" && filepath.IsAbs(p) && filepath.Clean(p) != "/" {
			out = append(out, filepath.Clean(p))
		}
	}
	return out
}
