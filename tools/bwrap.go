package tools

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultMaxProcesses bounds the tasks (processes and threads) one sandboxed
// command may run at once. It counts threads, so it leaves room for a
// parallel `go build`; a fork bomb stops at it.
const DefaultMaxProcesses = 2048

// sandboxTmp is the private, per-call temporary directory inside the
// sandbox (a fresh tmpfs); HOME and TMPDIR point at it.
const sandboxTmp = "/tmp"

// SandboxConfig says how commands the model chooses are confined.
type SandboxConfig struct {
	// Off runs commands unconfined. Only an explicit tools.sandbox: off sets it.
	Off bool
	// Network shares the host's network; otherwise the sandbox has its own
	// empty network namespace.
	Network bool
	// EnvPassthrough names variables of Options.Env copied into the
	// sandbox's otherwise clean environment.
	EnvPassthrough []string
	// Hide lists the worker's state (workspace root, Temporal database
	// directory, config file): invisible inside, except the call's own
	// worktree. The home directory is always hidden.
	Hide []string
	// MaxProcesses bounds the tasks of one call (default DefaultMaxProcesses).
	MaxProcesses int
	// Bwrap is the bubblewrap binary (default: "bwrap" looked up in PATH).
	Bwrap string
	// MemoryMaxBytes caps one call's memory (0: no cap).
	MemoryMaxBytes int64
	// TmpMaxBytes sizes one call's private /tmp (0: the tmpfs default).
	TmpMaxBytes int64
	// ReadOnlyPaths are extra host paths shown read-only (toolchains).
	ReadOnlyPaths []string
	// WorkspaceRoot holds the runs' worktrees (<root>/<run>/<name>); each
	// run gets its Go build cache there.
	WorkspaceRoot string
}

// Sandbox confines one worker's model-run commands with bubblewrap. Build it
// once with NewSandbox, which checks that it works on this host.
type Sandbox struct {
	cfg    SandboxConfig
	bwrap  string
	home   string
	caches []cacheDir
	pids   pidsLimiter
	empty  string // an empty read-only file bound over hidden files
	broken error  // non-nil: the sandbox cannot work here and bash is refused
	// user is who commands run as: the worker's uid, or sandboxUID when the
	// worker is root and setpriv can drop to it.
	user sandboxUser
	// tmpSize: bwrap takes --size, so /tmp is sized by TmpMaxBytes.
	tmpSize bool
	views   *gitViews
	notes   []string // limits Describe must mention (fallbacks)
}

// cacheDir is a language cache bound read-only and named by env in the sandbox.
type cacheDir struct {
	env, value, bind string
}

// NewSandbox prepares the sandbox and runs a trivial command in it once. When
// that fails (no bwrap, no user namespaces...), Err says why and how to fix
// it, and every sandboxed call is refused with that message.
func NewSandbox(cfg SandboxConfig) *Sandbox {
	if cfg.MaxProcesses <= 0 {
		cfg.MaxProcesses = DefaultMaxProcesses
	}
	s := &Sandbox{cfg: cfg}
	if cfg.Off {
		return s
	}
	s.home = homeDir()
	s.caches = findCaches(s.home)
	s.pids = newPidsLimiter(cfg.MaxProcesses, cfg.MemoryMaxBytes)
	s.views = newGitViews()
	s.broken = s.probe()
	return s
}

// makeEmpty creates the file bound over hidden files (/dev/null cannot be:
// device nodes are not usable on the sandbox's nodev mounts).
func (s *Sandbox) makeEmpty() error {
	f, err := os.CreateTemp("", "codeswarm-sandbox-empty-")
	if err != nil {
		return err
	}
	s.empty = f.Name()
	if err := f.Chmod(0o444); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// defaultSandbox confines calls whose Options carry no Sandbox, so a caller
// that forgets one never runs commands unconfined.
var defaultSandbox = sync.OnceValue(func() *Sandbox { return NewSandbox(SandboxConfig{}) })

// Mode is "on" or "off", as in tools.sandbox and the result JSON.
func (s *Sandbox) Mode() string {
	if s.cfg.Off {
		return "off"
	}
	return "on"
}

// Err is why the sandbox cannot work on this host, or nil.
func (s *Sandbox) Err() error { return s.broken }

// Describe says, for the start-up log line, how commands are confined.
func (s *Sandbox) Describe() string {
	switch {
	case s.cfg.Off:
		return "tools.sandbox is off: bash and verify.command run UNCONFINED with the worker's authority"
	case s.broken != nil:
		return s.broken.Error()
	}
	net := "off"
	if s.cfg.Network {
		net = "on"
	}
	tmp := "/tmp a private tmpfs"
	switch {
	case s.cfg.TmpMaxBytes > 0 && s.tmpSize:
		tmp += " of " + formatBytes(s.cfg.TmpMaxBytes)
	case s.cfg.TmpMaxBytes > 0:
		tmp += " of the tmpfs default size (this bwrap has no --size)"
	}
	d := fmt.Sprintf("bubblewrap sandbox on (network %s, %s, %s, %s, /run empty, git config shown without credentials",
		net, s.user.describe(), tmp, s.pids.describe())
	for _, n := range s.notes {
		d += ", " + n
	}
	return d + ")" + s.toolchainNote()
}

// Close removes the sandbox's process-limit cgroup and its empty file.
func (s *Sandbox) Close() {
	s.pids.close()
	if s.empty != "" {
		_ = os.Remove(s.empty)
	}
	s.views.close()
}

// probe runs `true` in a throwaway worktree through the full sandbox.
func (s *Sandbox) probe() error {
	bin := s.cfg.Bwrap
	if bin == "" {
		bin = "bwrap"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return s.unusable(fmt.Errorf("bubblewrap (%s) not found: %w", bin, err), "")
	}
	s.bwrap = path
	if err := s.makeEmpty(); err != nil {
		return s.unusable(err, "")
	}
	s.tmpSize = bwrapHasSize(path)
	if os.Geteuid() == 0 {
		u, why := dropUser()
		if why == "" {
			s.user = u
			if err := s.tryTrue(); err == nil {
				return nil
			} else {
				why = err.Error()
			}
			s.user = sandboxUser{}
		}
		s.notes = append(s.notes, "commands run as root because dropping to uid "+strconv.Itoa(sandboxUID)+
			" failed ("+why+"): /etc/shadow, /etc/gshadow, SSH host keys and /root are covered instead")
	}
	if err := s.tryTrue(); err != nil {
		return s.unusable(err, "")
	}
	return nil
}

// tryTrue runs `true` in a throwaway worktree through the full sandbox.
func (s *Sandbox) tryTrue() error {
	dir, err := os.MkdirTemp("", "codeswarm-sandbox-probe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := s.PrepareWorktree(dir); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	argv, env, lim, err := s.command(dir, "true", os.Environ())
	if err != nil {
		return err
	}
	defer lim.done()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		if o := strings.TrimSpace(string(out)); o != "" {
			return fmt.Errorf("%w: %s", err, o)
		}
		return err
	}
	return nil
}

// bwrapHasSize reports whether bwrap takes --size (bubblewrap 0.7.0+).
func bwrapHasSize(path string) bool {
	out, _ := exec.Command(path, "--help").CombinedOutput()
	return strings.Contains(string(out), "--size")
}

// unusable phrases a failed start-up check with its fixes.
func (s *Sandbox) unusable(err error, output string) error {
	if output != "" {
		err = fmt.Errorf("%w: %s", err, output)
	}
	return fmt.Errorf("the bash sandbox does not work on this host (%v); bash is refused until it does. "+
		"Fix: install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap), allow unprivileged user namespaces "+
		"(sysctl kernel.unprivileged_userns_clone=1, or kernel.apparmor_restrict_unprivileged_userns=0), "+
		"or set tools.sandbox: off to run model commands unconfined", err)
}

// command returns the argv and environment that run command with bash inside
// the sandbox, in worktree root, and a cleanup to call once it has ended.
func (s *Sandbox) command(root, command string, environ []string) (argv, env []string, lim callLimits, err error) {
	if err := s.ensureOwned(root); err != nil {
		return nil, nil, lim, err
	}
	env = s.goEnv(root, s.environ(environ))
	views, err := s.views.args(root, s.empty)
	if err != nil {
		return nil, nil, lim, fmt.Errorf("git config view: %w", err)
	}
	argv = append([]string{s.bwrap}, s.bwrapArgs(root, env)...)
	argv = append(argv, views...)
	argv = append(argv, s.user.argv()...)
	argv = append(argv, "bash", "-c", command)
	argv, lim, err = s.pids.wrap(argv)
	return argv, env, lim, err
}

// bwrapArgs confines to root: the file system read-only, the worker's state
// and home hidden, the caches and the repository's git directory read-only,
// root and a private tmpfs writable; own PID, IPC, UTS and (unless Network)
// network namespaces; no capabilities.
func (s *Sandbox) bwrapArgs(root string, env []string) []string {
	args := []string{"--die-with-parent", "--new-session"}
	args = append(args, s.user.unshareArgs(s.cfg.Network)...)
	args = append(args, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc")
	// No host sockets: /run (and /var/run, its usual symlink) holds the
	// docker, dbus, database and agent sockets and XDG_RUNTIME_DIR.
	// Abstract sockets belong to the network namespace, private unless
	// Network; /dev/shm is private to --dev.
	args = append(args, "--tmpfs", "/run")
	if fi, err := os.Lstat("/var/run"); err == nil && fi.IsDir() {
		args = append(args, "--tmpfs", "/var/run")
	}
	// Root in the sandbox keeps uid 0: writable kernel knobs in a fresh
	// /proc (core_pattern runs a program as host root) must be read-only.
	for _, p := range []string{"/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs"} {
		if exists(p) {
			args = append(args, "--ro-bind", p, p)
		}
	}
	// World-writable and sticky: commands may run as another uid than the
	// tmpfs' owner.
	args = append(args, "--perms", "01777")
	if s.cfg.TmpMaxBytes > 0 && s.tmpSize {
		args = append(args, "--size", strconv.FormatInt(s.cfg.TmpMaxBytes, 10))
	}
	args = append(args, "--tmpfs", sandboxTmp)
	hidden := s.hidden(root)
	for i, p := range hidden {
		args = append(args, s.user.mountParents(hidden[:i], []string{p})...)
		args = append(args, s.hideArgs(p)...)
	}
	ro := s.readOnly(root, env, hidden)
	args = append(args, s.user.mountParents(hidden, append(slices.Clone(ro), root))...)
	for _, p := range ro {
		args = append(args, "--ro-bind", p, p)
	}
	args = append(args, s.toolchainArgs(root, hidden)...)
	args = append(args, "--bind", root, root)
	// The worktree's .git (a file naming the admin dir, or a directory) is
	// read-only too: a rewritten .git could point codeswarm's own commits,
	// which run outside the sandbox, at a config with hooks.
	if dotGit := filepath.Join(root, ".git"); exists(dotGit) {
		args = append(args, "--ro-bind", dotGit, dotGit)
	}
	// Hidden directories are read-only too, once every mount point in them
	// exists: a write there would only vanish with the call.
	for _, p := range hidden {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			args = append(args, "--remount-ro", p)
		}
	}
	return append(args, "--chdir", root)
}

// hidden lists the existing paths to hide: home and the configured state,
// without those inside another (the default workspace root lies in the
// database's directory): covering the outer one hides them already, and a
// mount under it would be covered in turn. Directories above root, its git
// dirs and the caches that the sandbox uid cannot enter are covered too.
func (s *Sandbox) hidden(root string) []string {
	var all []string
	reach := append([]string{root}, gitDirs(root)...)
	for _, c := range s.caches {
		reach = append(reach, c.bind)
	}
	// A hidden path below a closed directory is still covered, so that it
	// is empty rather than absent.
	extra := append(s.user.hideAlso(), s.user.closedAncestors(reach)...)
	for _, p := range append(append([]string{s.home}, s.cfg.Hide...), extra...) {
		if p != "" && filepath.IsAbs(p) && filepath.Clean(p) != "/" && exists(p) {
			all = append(all, filepath.Clean(p))
		}
	}
	slices.Sort(all)
	all = slices.Compact(all)
	closed := s.user.closedAncestors(reach)
	var out, outer []string
	for _, p := range all { // sorted: an ancestor comes before what it holds
		if !underAny(p, outer) {
			out = append(out, p)
			if !slices.Contains(closed, p) {
				outer = append(outer, p)
			}
		}
	}
	return out
}

// hideArgs covers a directory with an empty tmpfs and a file with an empty one.
func (s *Sandbox) hideArgs(p string) []string {
	if fi, err := os.Stat(p); err == nil && fi.IsDir() {
		return []string{"--tmpfs", p}
	}
	return []string{"--ro-bind", s.empty, p}
}

// readOnly lists what is re-exposed read-only over hidden paths: language
// caches, PATH directories (toolchains under home), and the repository's
// git directories the worktree needs for git status, diff, log and show.
func (s *Sandbox) readOnly(root string, env []string, hidden []string) []string {
	var out []string
	for _, c := range s.caches {
		out = append(out, c.bind)
	}
	for _, dir := range filepath.SplitList(envValue(env, "PATH")) {
		if filepath.IsAbs(dir) && underAny(dir, hidden) && exists(dir) {
			out = append(out, filepath.Clean(dir))
		}
	}
	out = append(out, gitDirs(root)...)
	slices.Sort(out)
	return slices.Compact(out)
}

// environ builds the sandbox's clean environment from the worker's
// (sanitized) one: PATH, LANG, TERM, the passthrough names, HOME and TMPDIR
// at the private tmp, and the caches' variables.
func (s *Sandbox) environ(environ []string) []string {
	env := []string{"HOME=" + sandboxTmp, "TMPDIR=" + sandboxTmp}
	keep := append([]string{"PATH", "LANG", "LC_ALL", "TERM"}, s.cfg.EnvPassthrough...)
	for _, name := range keep {
		if v, ok := lookupEnv(environ, name); ok && !isSecretName(name) {
			env = append(env, name+"="+v)
		}
	}
	if _, ok := lookupEnv(environ, "PATH"); !ok {
		env = append(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	for _, c := range s.caches {
		if _, ok := lookupEnv(env, c.env); !ok {
			env = append(env, c.env+"="+c.value)
		}
	}
	return s.toolchainEnv(append(env, s.user.gitEnv()...))
}
