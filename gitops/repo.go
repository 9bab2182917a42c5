package gitops

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Repo is the user's repository. Methods need only the exported fields, so a
// Repo can be rebuilt from them (e.g. from activity input) without Open.
type Repo struct {
	// Root is the top level of the working tree Open was pointed at: the
	// user's main worktree unless they pointed at a linked one.
	Root string
	// CommonDir is the repository's shared .git directory.
	CommonDir string

	// beforeUpdateRef, when set, runs between computing a merge and
	// swapping the target ref; tests use it to move the ref in between.
	beforeUpdateRef func()
}

// Open finds the repository containing path (which may be a subdirectory).
func Open(ctx context.Context, path string) (*Repo, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("repository path %q: %w", path, err)
	}
	if _, err := os.Stat(abs); errors.Is(err, fs.ErrNotExist) {
		return nil, errorf(fs.ErrNotExist, "repository path %q does not exist", path)
	} else if err != nil {
		return nil, fmt.Errorf("repository path %q: %w", path, err)
	}

	if r, ok := openQuick(ctx, abs); ok {
		return r, nil
	}
	return openChecked(ctx, path, abs)
}

// openQuick opens a repository in one git process, the common case: a work
// tree whose HEAD has a commit. Anything else (an error, a bare or empty
// repository) reports !ok, and openChecked finds out which it is. Every
// activity opens the repository, so this saves two processes each time.
func openQuick(ctx context.Context, abs string) (*Repo, bool) {
	out, err := gitOut(ctx, abs, "rev-parse", "--path-format=absolute", "--git-common-dir",
		"--is-inside-work-tree", "--show-toplevel", "--verify", "--quiet", "HEAD^{commit}")
	lines := strings.Split(out, "\n")
	if err != nil || len(lines) != 4 || lines[1] != "true" || lines[0] == "" || lines[2] == "" || lines[3] == "" {
		return nil, false
	}
	return &Repo{Root: lines[2], CommonDir: lines[0]}, true
}

// openChecked is Open one question at a time, so a path that is not a
// usable repository gets the error that says why.
func openChecked(ctx context.Context, path, abs string) (*Repo, error) {
	out, err := gitOut(ctx, abs, "rev-parse", "--path-format=absolute", "--git-common-dir", "--is-inside-work-tree")
	if exitCode(err) > 0 {
		return nil, errorf(ErrNotRepository, "%q is not a git repository", path)
	}
	if err != nil {
		return nil, fmt.Errorf("open repository %q: %w", path, err)
	}
	lines := strings.Split(out, "\n")
	if len(lines) != 2 || lines[1] != "true" {
		return nil, errorf(ErrNotRepository, "%q is not a git repository with a working tree", path)
	}
	root, err := gitOut(ctx, abs, "rev-parse", "--path-format=absolute", "--show-toplevel")
	if err != nil {
		return nil, fmt.Errorf("open repository %q: %w", path, err)
	}

	r := &Repo{Root: root, CommonDir: lines[0]}
	if _, err := gitOut(ctx, root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}"); exitCode(err) == 1 {
		return nil, errorf(ErrNoCommits, "repository %q has no commits", root)
	} else if err != nil {
		return nil, fmt.Errorf("open repository %q: %w", path, err)
	}
	return r, nil
}

// ResolveCommit returns the full SHA of the commit rev names (a branch, tag,
// SHA or any git revision expression).
func (r *Repo) ResolveCommit(ctx context.Context, rev string) (string, error) {
	sha, err := r.resolveCommit(ctx, rev)
	if errors.Is(err, ErrUnknownRef) {
		return "", errorf(ErrUnknownRef, "unknown base ref %q", rev)
	}
	return sha, err
}

// resolveCommit is ResolveCommit with a generic not-found error, for callers
// whose revision is not a "base".
func (r *Repo) resolveCommit(ctx context.Context, rev string) (string, error) {
	if rev == "" {
		return "", errorf(ErrUnknownRef, "unknown ref %q", rev)
	}
	sha, err := gitOut(ctx, r.Root, "rev-parse", "--verify", "--quiet", "--end-of-options", rev+"^{commit}")
	if exitCode(err) > 0 {
		return "", errorf(ErrUnknownRef, "unknown ref %q", rev)
	}
	if err != nil {
		return "", fmt.Errorf("resolve %q: %w", rev, err)
	}
	return sha, nil
}

// CurrentBranch returns the short name of the branch checked out in Root,
// or "" when HEAD is detached.
func (r *Repo) CurrentBranch(ctx context.Context) (string, error) {
	name, err := gitOut(ctx, r.Root, "symbolic-ref", "--quiet", "--short", "HEAD")
	if exitCode(err) == 1 {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read current branch of %q: %w", r.Root, err)
	}
	return name, nil
}

// RefSHA returns the SHA a ref points at, or "" (and a nil error) if the ref
// does not exist. A name without "refs/" is a branch name.
func (r *Repo) RefSHA(ctx context.Context, ref string) (string, error) {
	full := fullRef(ref)
	sha, err := gitOut(ctx, r.Root, "rev-parse", "--verify", "--quiet", "--end-of-options", full)
	if exitCode(err) == 1 {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read ref %q: %w", full, err)
	}
	return sha, nil
}

// EnsureBranch creates branch at sha if it does not exist. An existing
// branch is left where it is, wherever that is, so a retry never moves it.
func (r *Repo) EnsureBranch(ctx context.Context, branch, sha string) error {
	if err := checkBranchName(ctx, branch); err != nil {
		return err
	}
	err := r.UpdateRefCAS(ctx, branch, sha, "")
	if err == nil || errors.Is(err, ErrRefMoved) {
		// ErrRefMoved: the branch already exists (made by an earlier attempt
		// or by someone else); either way it must not move.
		return nil
	}
	return fmt.Errorf("create branch %q: %w", branch, err)
}

// UpdateRefCAS points ref at newSHA only if it currently holds expectedOld
// ("" = the ref must not exist). It returns ErrRefMoved when the ref holds
// anything else; a ref that already holds newSHA counts as success, so a
// retry after the update landed succeeds.
func (r *Repo) UpdateRefCAS(ctx context.Context, ref, newSHA, expectedOld string) error {
	full := fullRef(ref)
	_, err := git(ctx, r.Root, runOpts{identity: true}, "update-ref", "-m", "codeswarm", full, newSHA, expectedOld)
	if err == nil {
		return nil
	}
	// Classify by reading the ref rather than by parsing git's message.
	cur, rerr := r.RefSHA(ctx, full)
	if rerr != nil {
		return fmt.Errorf("update %s: %w", full, err)
	}
	if cur == newSHA {
		return nil
	}
	if cur != expectedOld {
		return errorf(ErrRefMoved, "update %s: ref is at %s, expected %s", full, shortSHA(cur), shortSHA(expectedOld))
	}
	return fmt.Errorf("update %s: %w", full, err)
}

// DiffFiles lists the paths that differ between two commits, sorted. Renames
// are not detected, so a rename lists both its old and new path.
func (r *Repo) DiffFiles(ctx context.Context, from, to string) ([]string, error) {
	out, err := git(ctx, r.Root, runOpts{}, "diff-tree", "-r", "--name-only", "-z", "--no-renames", from, to)
	if err != nil {
		return nil, fmt.Errorf("diff %s..%s: %w", shortSHA(from), shortSHA(to), err)
	}
	return splitNUL(out), nil // git emits paths in sorted order
}

// isAncestor reports whether commit a is an ancestor of (or equal to) b.
func (r *Repo) isAncestor(ctx context.Context, a, b string) (bool, error) {
	_, err := git(ctx, r.Root, runOpts{}, "merge-base", "--is-ancestor", a, b)
	if err == nil {
		return true, nil
	}
	if exitCode(err) == 1 {
		return false, nil
	}
	return false, fmt.Errorf("is %s an ancestor of %s: %w", shortSHA(a), shortSHA(b), err)
}

// checkBranchName rejects names git would not accept as a branch.
func checkBranchName(ctx context.Context, branch string) error {
	if branch == "" || strings.HasPrefix(branch, "-") {
		return fmt.Errorf("invalid branch name %q", branch)
	}
	if _, err := git(ctx, "", runOpts{}, "check-ref-format", "refs/heads/"+branch); err != nil {
		return fmt.Errorf("invalid branch name %q", branch)
	}
	return nil
}

// fullRef turns a short branch name into refs/heads/<name>.
func fullRef(ref string) string {
	if strings.HasPrefix(ref, "refs/") {
		return ref
	}
	return "refs/heads/" + ref
}

// shortBranch strips refs/heads/ from a full branch ref.
func shortBranch(ref string) string {
	return strings.TrimPrefix(ref, "refs/heads/")
}

// Branches lists the local branches whose names start with prefix (e.g.
// "codeswarm/run-1/"), sorted.
func (r *Repo) Branches(ctx context.Context, prefix string) ([]string, error) {
	out, err := gitOut(ctx, r.Root, "for-each-ref", "--format=%(refname:short)", "--sort=refname", "refs/heads/"+strings.TrimSuffix(prefix, "/"))
	if err != nil {
		return nil, fmt.Errorf("list branches %q: %w", prefix, err)
	}
	var names []string
	for _, line := range strings.Split(out, "\n") {
		if line = strings.TrimSpace(line); line != "" && strings.HasPrefix(line, prefix) {
			names = append(names, line)
		}
	}
	return names, nil
}
