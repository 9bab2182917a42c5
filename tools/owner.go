package tools

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// sandboxUID is the unprivileged uid (and gid) model commands run as when
// the worker is root: nobody, which owns no file a worker needs hidden.
const sandboxUID = 65534

// sandboxUser is who the sandboxed commands run as. The zero value keeps
// the worker's uid (a non-root worker, or a root one that cannot drop).
type sandboxUser struct {
	set     bool
	setpriv string
}

// dropUser checks that a root worker can run commands as sandboxUID; why
// says why not.
func dropUser() (sandboxUser, string) {
	path, err := exec.LookPath("setpriv")
	if err != nil {
		return sandboxUser{}, "setpriv (util-linux) not found"
	}
	return sandboxUser{set: true, setpriv: path}, ""
}

func (u sandboxUser) describe() string {
	switch {
	case u.set:
		return fmt.Sprintf("commands run as uid %d", sandboxUID)
	case os.Geteuid() == 0:
		return "commands run as root in a user namespace"
	}
	return fmt.Sprintf("commands run as the worker's uid %d", os.Geteuid())
}

// unshareArgs are bwrap's namespace options. Dropping to sandboxUID needs
// no user namespace: bwrap runs as root, sets every mount up and runs
// setpriv with only the capabilities to change uid, which it then loses.
func (u sandboxUser) unshareArgs(network bool) []string {
	var args []string
	if u.set {
		args = []string{"--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"}
		if !network {
			args = append(args, "--unshare-net")
		}
		return append(args, "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP")
	}
	args = []string{"--unshare-all", "--cap-drop", "ALL"}
	if network {
		args = append(args, "--share-net")
	}
	return args
}

// argv runs the command as sandboxUID with no capabilities left.
func (u sandboxUser) argv() []string {
	if !u.set {
		return nil
	}
	id := strconv.Itoa(sandboxUID)
	return []string{"--", u.setpriv, "--reuid", id, "--regid", id, "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"}
}

// gitEnv lets git inside the sandbox use the repository's git dirs, which
// belong to the worker (root), not to sandboxUID.
func (u sandboxUser) gitEnv() []string {
	if !u.set {
		return nil
	}
	return []string{"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=safe.directory", "GIT_CONFIG_VALUE_0=*"}
}

// hideAlso lists what a root worker that cannot drop its uid covers: the
// files only root may read.
func (u sandboxUser) hideAlso() []string {
	if u.set || os.Geteuid() != 0 {
		return nil
	}
	out := []string{"/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-", "/root"}
	keys, _ := filepath.Glob("/etc/ssh/ssh_host_*_key")
	return append(out, keys...)
}

// FileOwner is the owner that files and directories the file tools create in
// a worktree must get, so that the sandboxed commands of the same sub-agent
// can change them: ok is false when files keep the worker's own identity
// (the sandbox runs commands as the worker's user, or it is off).
func (s *Sandbox) FileOwner() (uid, gid int, ok bool) {
	if s == nil || s.cfg.Off || s.broken != nil || !s.user.set {
		return -1, -1, false
	}
	return sandboxUID, sandboxUID, true
}

// PrepareWorktree gives the worktree dir to the uid sandboxed commands run
// as, so they can write it; it does nothing when they run as the worker.
// Symlinks are changed themselves, never followed. The worktree's top
// directory and its .git stay the worker's (git refuses a repository
// another user owns) and the top directory is opened to sandboxUID's group.
func (s *Sandbox) PrepareWorktree(dir string) error {
	uid, gid, ok := s.FileOwnerOrProbe()
	if !ok {
		return nil
	}
	if err := openTop(dir, gid); err != nil {
		return prepareFailed(err)
	}
	top := filepath.Join(dir, ".git")
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case p == dir:
			return nil
		case p == top && d.IsDir():
			return filepath.SkipDir
		case p == top:
			return nil
		}
		if owned(d, uid, gid) {
			return nil // a reused worktree's unchanged file: no write, its ctime stays
		}
		if err := os.Lchown(p, uid, gid); err != nil {
			return prepareFailed(err)
		}
		return nil
	})
}

func prepareFailed(err error) error {
	return fmt.Errorf("prepare worktree for the sandbox: %w", err)
}

// openTop opens the worktree's top directory to the sandbox's group; the
// directory itself stays the worker's.
func openTop(dir string, gid int) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if err := os.Lchown(dir, -1, gid); err != nil {
		return err
	}
	return os.Chmod(dir, fi.Mode().Perm()|0o070)
}

// PreparePaths is PrepareWorktree for a worktree whose files the sandbox's
// uid owns already, but for paths (slash-separated, relative to dir, as a
// git index lists them; the pool's claimed worktrees): each of them, and
// every directory above one, that the uid does not own is given to it. A
// 10,000-file worktree is one lstat per file for PrepareWorktree (B8: 22 %
// of the worker's CPU), a few dozen here. paths is hostile input: every
// change goes through an os.Root of dir, so nothing outside it is reached;
// a path into .git, not local or gone is left alone, and a symlink is
// changed itself, never followed.
func (s *Sandbox) PreparePaths(dir string, paths []string) error {
	uid, gid, ok := s.FileOwnerOrProbe()
	if !ok {
		return nil
	}
	if err := openTop(dir, gid); err != nil {
		return prepareFailed(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return prepareFailed(err)
	}
	defer root.Close()
	seen := map[string]bool{".": true}
	give := func(name string) error {
		if seen[name] {
			return nil
		}
		seen[name] = true
		fi, err := root.Lstat(name)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if ownedBy(fi, uid, gid) {
			return nil
		}
		return root.Lchown(name, uid, gid)
	}
	for _, p := range paths {
		name := filepath.FromSlash(p)
		if !filepath.IsLocal(name) || strings.SplitN(p, "/", 2)[0] == ".git" {
			continue
		}
		// The directories above name, from the top, then name itself.
		for i, c := range name {
			if c == filepath.Separator {
				if err := give(name[:i]); err != nil {
					return prepareFailed(err)
				}
			}
		}
		if err := give(name); err != nil {
			return prepareFailed(err)
		}
	}
	return nil
}

// owned reports whether d already belongs to uid and gid. A chown that
// changes nothing still sets the file's ctime, and git then sees every
// file of a reused worktree as possibly changed and reads it again.
func owned(d fs.DirEntry, uid, gid int) bool {
	fi, err := d.Info()
	return err == nil && ownedBy(fi, uid, gid)
}

// ownedBy reports whether fi belongs to uid and gid.
func ownedBy(fi fs.FileInfo, uid, gid int) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == uid && int(st.Gid) == gid
}

// FileOwnerOrProbe is FileOwner, also while the start-up check runs.
func (s *Sandbox) FileOwnerOrProbe() (uid, gid int, ok bool) {
	if s == nil || s.cfg.Off || !s.user.set {
		return -1, -1, false
	}
	return sandboxUID, sandboxUID, true
}

// ensureOwned prepares a worktree nobody prepared (the verify worktree, a
// worktree git re-created): its top directory is still closed to the
// sandbox's group.
func (s *Sandbox) ensureOwned(root string) error {
	_, gid, ok := s.FileOwnerOrProbe()
	if !ok {
		return nil
	}
	fi, err := os.Lstat(root)
	if err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Gid) == gid && fi.Mode().Perm()&0o070 == 0o070 {
		return nil
	}
	return s.PrepareWorktree(root)
}

// fileOwner is who files the file tools create get; ok false keeps the
// worker's identity.
type fileOwner struct {
	uid, gid int
	ok       bool
}

func (s *Sandbox) fileOwner() fileOwner {
	uid, gid, ok := s.FileOwner()
	return fileOwner{uid, gid, ok}
}

// mkdirAll is os.MkdirAll that gives the directories it creates to o.
func (o fileOwner) mkdirAll(dir string) error {
	if !o.ok {
		return os.MkdirAll(dir, 0o755)
	}
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return &fs.PathError{Op: "mkdir", Path: dir, Err: syscall.ENOTDIR}
		}
		return nil
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := o.mkdirAll(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil
		}
		return err
	}
	return os.Lchown(dir, o.uid, o.gid)
}

// chown gives an open file the tools created to o.
func (o fileOwner) chown(f *os.File) error {
	if !o.ok {
		return nil
	}
	return f.Chown(o.uid, o.gid)
}

// closedAncestors lists the directories above paths that sandboxUID cannot
// enter. They are covered like hidden state (their content is out of its
// reach anyway), so the worktree, git dirs and caches bound below them are
// reachable.
func (u sandboxUser) closedAncestors(paths []string) []string {
	if !u.set {
		return nil
	}
	var out []string
	for _, p := range paths {
		p = filepath.Clean(p)
		for d := filepath.Dir(p); d != "/" && d != "."; d = filepath.Dir(d) {
			fi, err := os.Stat(d)
			if err != nil || !fi.IsDir() {
				continue
			}
			if !enterable(fi) {
				out = append(out, d)
			}
		}
	}
	return out
}

// enterable reports whether sandboxUID may search the directory fi.
func enterable(fi fs.FileInfo) bool {
	perm := fi.Mode().Perm()
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !ok, perm&0o001 != 0:
		return true
	case st.Uid == sandboxUID:
		return perm&0o100 != 0
	case st.Gid == sandboxUID:
		return perm&0o010 != 0
	}
	return false
}

// mountParents creates, mode 0755, the directories between a covered
// directory and the paths bound below it, which bwrap would otherwise
// create 0700 (root's, so closed to sandboxUID).
func (u sandboxUser) mountParents(covered, targets []string) []string {
	if !u.set {
		return nil
	}
	var args []string
	seen := map[string]bool{}
	for _, t := range targets {
		for _, c := range covered {
			r, ok := within(c, t)
			if !ok || r == "." {
				continue
			}
			d := c
			parts := strings.Split(r, string(filepath.Separator))
			for _, part := range parts[:len(parts)-1] {
				d = filepath.Join(d, part)
				if !seen[d] {
					seen[d] = true
					args = append(args, "--perms", "0755", "--dir", d)
				}
			}
		}
	}
	return args
}
