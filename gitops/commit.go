package gitops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"codeswarm/internal/textcut"
)

// CommitResult describes a worktree's work relative to its base commit.
type CommitResult struct {
	// Commit is the worktree's HEAD after committing (baseSHA if nothing
	// was ever committed).
	Commit string `json:"commit"`
	// Changed reports whether HEAD differs from the base commit.
	Changed bool `json:"changed"`
	// FilesChanged lists the paths changed between base and HEAD, sorted.
	FilesChanged []string `json:"files_changed,omitempty"`
	// Notes says what this call did beyond committing, such as a nested
	// repository whose files it committed as plain files.
	Notes []string `json:"notes,omitempty"`
}

// CommitAll stages everything in the worktree at dir (`git add -A`) and, if
// anything is staged, commits it as codeswarm with message and trailers
// (e.g. {"Codeswarm-Run", "x"}). The result compares HEAD with baseSHA rather
// than describing this one call, so a retry after the commit landed reports
// the same commit and files. Hooks that can veto a commit (pre-commit,
// commit-msg) are skipped: an automated commit must not depend on them;
// no hook runs at all (see hardenedConfig).
//
// dir must be a linked worktree; its git directory is checked and named to
// git explicitly (see worktreeGitDir). A repository nested in it (a
// sub-agent's own `git init`) loses its .git and its files are committed as
// plain files; Notes and the commit message say so.
func CommitAll(ctx context.Context, dir, baseSHA, message string, trailers [][2]string) (CommitResult, error) {
	return commit(ctx, dir, baseSHA, message, trailers, nil, false)
}

// CommitPaths is CommitAll for a worktree in which nothing but the files at
// paths (worktree-relative, slash-separated) can have changed since HEAD:
// it stages those paths alone (stageNamed), and neither looks at any other
// file nor for nested repositories. A sub-agent whose changes
// all came from codeswarm's file tools is such a worktree: its journal
// names every file they wrote, and they never write under a .git (see
// tools.Journal.ChangedPaths). For 10 files in a 10,000-file tree the
// commit takes 44.6 ms of git CPU against 73.4 ms (BenchmarkCommitAll,
// gitops/BENCHMARKS.md). A change anywhere else
// stays uncommitted, and the worktree's park then finds it dirty and
// keeps it. A path that is not a clean relative path outside .git, or
// one git will not stage (ignored, gone, inside a submodule), makes it
// stage everything as CommitAll does, so nothing the list names is left
// out.
func CommitPaths(ctx context.Context, dir, baseSHA, message string, trailers [][2]string, paths []string) (CommitResult, error) {
	return commit(ctx, dir, baseSHA, message, trailers, paths, true)
}

func commit(ctx context.Context, dir, baseSHA, message string, trailers [][2]string, paths []string, limited bool) (CommitResult, error) {
	if baseSHA == "" {
		return CommitResult{}, errors.New("commit: empty base commit")
	}
	gitDir, err := worktreeGitDir(dir, false)
	if err != nil {
		return CommitResult{}, fmt.Errorf("commit: %w", err)
	}
	opts := runOpts{gitDir: gitDir}
	for _, lock := range commitLocks(gitDir) {
		if err := clearStaleLock(ctx, lock); err != nil {
			return CommitResult{}, err
		}
	}
	notes, err := stage(ctx, dir, opts, paths, limited)
	if err != nil {
		return CommitResult{}, err
	}
	// The commit is built from its parts (write-tree, commit-tree,
	// update-ref) rather than by `git commit`, which would compare every
	// file with the index once more and run a status to find out whether
	// anything is staged: the add has just done the one and the trees'
	// names answer the other.
	out, err := git(ctx, dir, opts, "write-tree")
	if err != nil {
		return CommitResult{}, fmt.Errorf("write the staged tree of %q: %w", dir, err)
	}
	tree := strings.TrimSpace(string(out))
	// "--" ends the revisions: nothing after HEAD is read as a file name.
	out, err = git(ctx, dir, opts, "rev-parse", "HEAD^{commit}", "HEAD^{tree}", "--")
	if err != nil {
		return CommitResult{}, fmt.Errorf("read HEAD of %q: %w", dir, err)
	}
	names := strings.Fields(string(out))
	if len(names) != 3 || names[2] != "--" {
		return CommitResult{}, fmt.Errorf("read HEAD of %q: git rev-parse answered %q", dir, textcut.Prefix(string(out), 200))
	}
	head := names[0]
	if tree != names[1] {
		if message == "" {
			message = "codeswarm: commit subtask changes"
		}
		if len(notes) > 0 {
			message = strings.TrimRight(message, "\n \t") + "\n\n" + strings.Join(notes, "\n")
		}
		msg := formatMessage(message, trailers)
		commitOpts := opts
		commitOpts.identity, commitOpts.stdin = true, strings.NewReader(msg)
		out, err := git(ctx, dir, commitOpts, "commit-tree", "--no-gpg-sign", "-p", head, "-F", "-", tree)
		if err != nil {
			return CommitResult{}, fmt.Errorf("commit in %q: %w", dir, err)
		}
		commit := strings.TrimSpace(string(out))
		// HEAD moves only from the commit this one was built on: a HEAD
		// that moved meanwhile fails the update instead of being lost.
		refOpts := opts
		refOpts.identity = true
		if _, err := git(ctx, dir, refOpts, "update-ref", "-m", "commit: "+subject(msg), "HEAD", commit, head); err != nil {
			return CommitResult{}, fmt.Errorf("commit in %q: %w", dir, err)
		}
		head = commit
	}
	res, err := changedSince(ctx, dir, baseSHA, head, opts)
	res.Notes = notes
	return res, err
}

// stage stages the worktree's changes: with limited, only those at paths
// (see CommitPaths); else, or if git refuses one of paths, every change,
// after removing nested repositories (whose notes it returns).
func stage(ctx context.Context, dir string, opts runOpts, paths []string, limited bool) ([]string, error) {
	if limited && stageablePaths(paths) {
		err := stageNamed(ctx, dir, opts, paths)
		if err == nil {
			return nil, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("stage changes in %q: %w", dir, err)
		}
		// An index that cannot be read, more new files than are worth
		// naming, or a path git will not stage: ignored, gone (a write that
		// failed after its intent was recorded), inside a submodule.
		// Staging everything is right for each.
	}
	nested, err := removeNestedRepos(ctx, dir, opts.gitDir)
	if err != nil {
		return nil, err
	}
	if _, err := git(ctx, dir, opts, "add", "--all"); err != nil {
		return nil, fmt.Errorf("stage changes in %q: %w", dir, err)
	}
	return nestedNotes(nested), nil
}

// maxNamedNewPaths bounds the untracked paths stageNamed gives `git add`:
// git matches every index entry against every pathspec (0.4 ms a path in
// a 10,000-file index), so past about a hundred the scan of the whole
// tree is cheaper.
const maxNamedNewPaths = 100

// stageNamed stages the files at paths. Those the index tracks go to `git
// update-index --remove --stdin`, which looks each one up (300 paths in a
// 10,000-file index: under 10 ms of CPU, where `git add` with 300
// pathspecs took 90-140 ms); the others, new files, to `git add --all`
// with literal pathspecs, which leaves out a file git ignores as the
// scan of the whole tree would (it then fails, and stage falls back).
func stageNamed(ctx context.Context, dir string, opts runOpts, paths []string) error {
	if len(paths) == 0 {
		return nil
	}
	tracked, err := indexNames(opts.gitDir)
	if err != nil {
		return err
	}
	var known, added []string
	seen := make(map[string]bool, len(paths))
	for _, p := range paths {
		if seen[p] {
			continue
		}
		seen[p] = true
		if tracked[p] {
			known = append(known, p)
		} else {
			added = append(added, p)
		}
	}
	if len(added) > maxNamedNewPaths {
		return fmt.Errorf("%d new files to stage by name", len(added))
	}
	if len(known) > 0 {
		o := opts
		o.stdin = strings.NewReader(strings.Join(known, "\x00") + "\x00")
		if _, err := git(ctx, dir, o, "update-index", "--remove", "-z", "--stdin"); err != nil {
			return err
		}
	}
	if len(added) > 0 {
		o := opts
		o.stdin = literalPathspecs(added)
		if _, err := git(ctx, dir, o, "add", "--all", "--pathspec-from-file=-", "--pathspec-file-nul"); err != nil {
			return err
		}
	}
	return nil
}

// literalPathspecs is paths as git's --pathspec-from-file reads them with
// --pathspec-file-nul, each taken literally: no glob or other magic.
func literalPathspecs(paths []string) io.Reader {
	var spec strings.Builder
	for _, p := range paths {
		spec.WriteString(":(literal)")
		spec.WriteString(p)
		spec.WriteByte(0)
	}
	return strings.NewReader(spec.String())
}

// stageablePaths reports whether every path is one the file tools could
// have written: relative, clean, not the root, not above it, nothing under
// a .git.
func stageablePaths(paths []string) bool {
	for _, p := range paths {
		if p == "" || p == "." || path.IsAbs(p) || path.Clean(p) != p || strings.ContainsRune(p, 0) {
			return false
		}
		for _, c := range strings.Split(p, "/") {
			if c == ".." || strings.EqualFold(c, ".git") {
				return false
			}
		}
	}
	return true
}

// commitLocks are the lock files a commit in the linked worktree whose git
// directory is gitDir takes: its index's, its HEAD's and its branch's (in
// the repository's common directory). A worker killed during `git add`
// or `update-ref` leaves one behind (TestClusterHostKilled killed one in
// update-ref), and every retry would fail on it.
func commitLocks(gitDir string) []string {
	locks := []string{filepath.Join(gitDir, "index.lock"), filepath.Join(gitDir, "HEAD.lock")}
	head, err := os.ReadFile(filepath.Join(gitDir, "HEAD"))
	if err != nil {
		return locks
	}
	ref, ok := strings.CutPrefix(strings.TrimSpace(string(head)), "ref: ")
	if !ok || !strings.HasPrefix(ref, "refs/heads/") || !filepath.IsLocal(ref) {
		return locks
	}
	return append(locks, filepath.Join(filepath.Dir(filepath.Dir(gitDir)), filepath.FromSlash(ref)+".lock"))
}

// subject is a commit message's first line, as a reflog names a commit.
func subject(msg string) string {
	line, _, _ := strings.Cut(msg, "\n")
	return line
}

// nestedNotes phrases the nested repositories CommitAll flattened.
func nestedNotes(paths []string) []string {
	notes := make([]string, 0, len(paths))
	for _, p := range paths {
		notes = append(notes, fmt.Sprintf("Nested repository %s committed as plain files (its .git was removed).", p))
	}
	if len(notes) == 0 {
		return nil
	}
	return notes
}

// staleLockAge is how old an index.lock must be before CommitAll treats it
// as left behind by a killed git process. Git holds the lock for well under
// a second per command, even on large trees.
const staleLockAge = time.Minute

// lockPoll is how often a fresh index.lock is looked at again.
const lockPoll = 200 * time.Millisecond

// clearStaleLock waits until the lock file lock (the worktree's
// index.lock, or a ref's lock) is gone, or removes it once it is older
// than staleLockAge. A worker killed in the
// middle of `git add` or a commit (or a git killed with its cancelled
// activity) leaves the lock behind; a retry that failed on it at once
// would fail every attempt that comes within staleLockAge, and the
// subtask with them. Only codeswarm's own activities write to a subtask
// worktree, one at a time, so an old lock cannot belong to a live process,
// and a fresh one is either released soon or becomes old. A linked
// worktree's index is its own git directory's.
func clearStaleLock(ctx context.Context, lock string) error {
	for {
		info, err := os.Lstat(lock)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err == nil && time.Since(info.ModTime()) >= staleLockAge {
			err = os.Remove(lock)
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove stale index lock %q: %w", lock, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for index lock %q: %w", lock, ctx.Err())
		case <-time.After(lockPoll):
		}
	}
}

// worktreeResult compares the worktree's HEAD with baseSHA.
func worktreeResult(ctx context.Context, dir, baseSHA string, opts runOpts) (CommitResult, error) {
	out, err := git(ctx, dir, opts, "rev-parse", "--verify", "HEAD")
	if err != nil {
		return CommitResult{}, fmt.Errorf("read HEAD of %q: %w", dir, err)
	}
	return changedSince(ctx, dir, baseSHA, strings.TrimSpace(string(out)), opts)
}

// changedSince describes head, the worktree's HEAD, relative to baseSHA.
func changedSince(ctx context.Context, dir, baseSHA, head string, opts runOpts) (CommitResult, error) {
	res := CommitResult{Commit: head, Changed: head != baseSHA}
	if !res.Changed {
		return res, nil
	}
	out, err := git(ctx, dir, opts, "diff-tree", "-r", "--name-only", "-z", "--no-renames", baseSHA, head)
	if err != nil {
		return CommitResult{}, fmt.Errorf("diff %s..HEAD in %q: %w", shortSHA(baseSHA), dir, err)
	}
	res.FilesChanged = splitNUL(out)
	return res, nil
}

// formatMessage appends trailers as the message's last paragraph, where git
// (interpret-trailers, %(trailers)) finds them. Newlines inside a trailer
// would end it early, so they become spaces.
func formatMessage(message string, trailers [][2]string) string {
	var b strings.Builder
	b.WriteString(cleanWhitespace(message))
	b.WriteString("\n")
	if len(trailers) == 0 {
		return b.String()
	}
	b.WriteString("\n")
	for _, t := range trailers {
		key := strings.TrimSpace(oneLine(t[0]))
		if key == "" {
			continue
		}
		fmt.Fprintf(&b, "%s: %s\n", key, strings.TrimSpace(oneLine(t[1])))
	}
	return b.String()
}

// cleanWhitespace is what `git commit --cleanup=whitespace` makes of a
// message, without its final newline: trailing whitespace of every line,
// leading and trailing blank lines, and all but one of consecutive blank
// lines removed.
func cleanWhitespace(message string) string {
	var b strings.Builder
	blank := false
	for _, line := range strings.Split(message, "\n") {
		line = strings.TrimRight(line, " \t\r\v\f")
		if line == "" {
			blank = b.Len() > 0
			continue
		}
		if blank {
			b.WriteString("\n")
			blank = false
		}
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		b.WriteString(line)
	}
	return b.String()
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
