package tools

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// sandbox resolves model-supplied paths to real paths inside one worktree.
type sandbox struct {
	root string // cleaned Root as given
	real string // Root with symlinks resolved; every resolved path lies under it
}

// target is a resolved path.
type target struct {
	abs     string // real absolute path (symlinks in existing components resolved)
	rel     string // slash-separated path relative to the real root ("." for the root)
	logical string // slash-separated path relative to the root, before resolving symlinks
}

func newSandbox(root string) (sandbox, error) {
	if root == "" || !filepath.IsAbs(root) {
		return sandbox{}, fmt.Errorf("root %q is not an absolute path", root)
	}
	real, err := filepath.EvalSymlinks(root)
	if err != nil {
		return sandbox{}, fmt.Errorf("resolve root: %w", err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return sandbox{}, fmt.Errorf("stat root: %w", err)
	}
	if !fi.IsDir() {
		return sandbox{}, fmt.Errorf("root %q is not a directory", root)
	}
	return sandbox{root: filepath.Clean(root), real: real}, nil
}

// within returns p relative to base when p is base or below it.
func within(base, p string) (string, bool) {
	r, err := filepath.Rel(base, p)
	if err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return "", false
	}
	return r, true
}

// resolve maps a model path to a target inside the worktree. Absolute paths
// are accepted when they lie inside the root; `..` escapes and symlinks
// leading out of the root (at any component, existing or dangling) are
// refused.
func (s sandbox) resolve(p string) (target, error) {
	if strings.TrimSpace(p) == "" {
		return target{}, errors.New("path is empty; give a path relative to the worktree root")
	}
	rel := filepath.Clean(filepath.FromSlash(p))
	if filepath.IsAbs(rel) {
		r, ok := within(s.root, rel)
		if !ok {
			r, ok = within(s.real, rel)
		}
		if !ok {
			return target{}, fmt.Errorf("path %q is outside the worktree; use a path relative to the worktree root", p)
		}
		rel = r
	}
	if rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return target{}, fmt.Errorf("path %q escapes the worktree with '..'; use a path inside the worktree", p)
	}
	abs, err := s.realPath(rel)
	if err != nil {
		return target{}, fmt.Errorf("path %q: %w", p, err)
	}
	r, ok := within(s.real, abs)
	if !ok {
		return target{}, fmt.Errorf("path %q leads outside the worktree through a symlink", p)
	}
	return target{abs: abs, rel: filepath.ToSlash(r), logical: filepath.ToSlash(rel)}, nil
}

// realPath resolves symlinks on the longest existing prefix of rel (below
// the real root) and appends the components that do not exist yet, which
// cannot be symlinks.
func (s sandbox) realPath(rel string) (string, error) {
	if rel == "." {
		return s.real, nil
	}
	parts := strings.Split(rel, string(filepath.Separator))
	existing := s.real
	i := 0
	for ; i < len(parts); i++ {
		next := filepath.Join(existing, parts[i])
		if _, err := os.Lstat(next); err != nil {
			break
		}
		existing = next
	}
	resolved, err := filepath.EvalSymlinks(existing)
	if err != nil {
		// Lstat saw it but it does not resolve: a dangling symlink or a loop.
		// Writing through it could create a file anywhere, so refuse.
		return "", errors.New("goes through a symlink that cannot be resolved (dangling or looping)")
	}
	return filepath.Join(append([]string{resolved}, parts[i:]...)...), nil
}

// resolveWritable is resolve plus the rule that nothing under any .git
// (file or directory, top-level or nested) is writable.
func (s sandbox) resolveWritable(p string) (target, error) {
	t, err := s.resolve(p)
	if err != nil {
		return t, err
	}
	// Both forms: a symlink may lead into .git, or .git may be a symlink.
	if inGitDir(t.rel) || inGitDir(t.logical) {
		return target{}, fmt.Errorf("path %q is inside .git, which is not writable; use git through bash if you must", p)
	}
	if t.rel == "." {
		return target{}, fmt.Errorf("path %q is the worktree root, not a file", p)
	}
	return t, nil
}

// inGitDir reports whether any component of a slash path is .git.
func inGitDir(slashPath string) bool {
	for _, c := range strings.Split(slashPath, "/") {
		if strings.EqualFold(c, ".git") {
			return true
		}
	}
	return false
}
