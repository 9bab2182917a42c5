package gitops

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// hardenedConfig is passed with -c to every git command codeswarm runs. A
// sub-agent writes its worktree (and, with the sandbox off, anything the
// worker can), so no config a command reads may make git run a program
// named there. Command-line config beats every config file, and git passes
// it on to the git processes it starts itself (GIT_CONFIG_PARAMETERS).
// Drivers named in .gitattributes (filter, diff, merge, textconv) cannot be
// overridden by name; they run only when a config git reads defines them,
// and with system and global config off (see gitEnv) that is the user's
// own repository config, which no sub-agent writes. diff.external is not
// set here (an empty value makes porcelain diff fail); it too can only come
// from the repository config, and codeswarm's diffs pass --no-ext-diff.
var hardenedConfig = []string{
	"core.fsmonitor=false",
	"core.hooksPath=" + os.DevNull, // no hook is found, none runs
	"core.untrackedCache=false",
	"core.pager=cat",
	"core.editor=false", // nothing codeswarm runs edits; if it did, fail
	"sequence.editor=false",
	"core.askPass=",
	"core.sshCommand=ssh",
	"credential.helper=", // empty resets the list
	"core.attributesFile=" + os.DevNull,
	"protocol.ext.allow=never",
	"protocol.git.allow=never", // core.gitProxy applies to git:// only
	"submodule.recurse=false",
	"fetch.recurseSubmodules=false",
	"diff.ignoreSubmodules=all", // status never runs git inside a submodule
	"status.submoduleSummary=false",
	"commit.gpgSign=false",
	"tag.gpgSign=false",
	"log.showSignature=false",
	"merge.verifySignatures=false",
	"gpg.program=false",
	"gc.auto=0",
	"gc.autoDetach=false",
	"maintenance.auto=false",
	// Worktrees may be owned by the sandbox's user; every path codeswarm
	// gives git is one it chose, so ownership is no signal here.
	"safe.directory=*",
}

// costConfig is passed with -c to every git command codeswarm runs for
// what it costs, not for safety. Loose objects (every commit's trees, a
// sub-agent's blobs) are compressed at zlib's fastest level: a commit in a
// 10,000-file directory writes a 370 kB tree object (240 kB compressed),
// which costs 28 ms of CPU at git's default level and 20 ms at level 1,
// for 3 % more bytes (gitops/BENCHMARKS.md). Packs, which `git gc` writes,
// keep the repository's own setting.
var costConfig = []string{
	"core.looseCompression=1",
}

// configArgs is hardenedConfig as -c arguments, plus the user's global
// excludes file, so commits still leave out what the user ignores
// everywhere although the global config itself is not read.
func configArgs() []string {
	return configArgsOnce()
}

var configArgsOnce = sync.OnceValue(func() []string {
	args := make([]string, 0, 2*(len(hardenedConfig)+len(costConfig))+2)
	for _, kv := range slices.Concat(hardenedConfig, costConfig) {
		args = append(args, "-c", kv)
	}
	return append(args, "-c", "core.excludesFile="+userExcludesFile())
})

// userExcludesFile is the global ignore file of the worker's user, as git
// would find it (core.excludesFile of the global config, else
// $XDG_CONFIG_HOME/git/ignore or ~/.config/git/ignore), or the null device.
// It is read once, with only HOME and XDG_CONFIG_HOME passed on; reading a
// config file runs nothing.
func userExcludesFile() string {
	env := []string{"PATH=" + os.Getenv("PATH"), "GIT_CONFIG_NOSYSTEM=1", "LC_ALL=C"}
	for _, name := range []string{"HOME", "XDG_CONFIG_HOME", "GIT_CONFIG_GLOBAL"} {
		if v, ok := os.LookupEnv(name); ok {
			env = append(env, name+"="+v)
		}
	}
	cmd := exec.Command("git", "config", "--global", "--no-includes", "--path", "--get", "core.excludesFile")
	cmd.Env = env
	cmd.Dir = os.TempDir()
	path := ""
	if out, err := cmd.Output(); err == nil {
		path = strings.TrimSpace(string(out))
	} else if xdg := os.Getenv("XDG_CONFIG_HOME"); xdg != "" {
		path = filepath.Join(xdg, "git", "ignore")
	} else if home := os.Getenv("HOME"); home != "" {
		path = filepath.Join(home, ".config", "git", "ignore")
	}
	if fi, err := os.Stat(path); path == "" || err != nil || !fi.Mode().IsRegular() {
		return os.DevNull
	}
	return path
}

// gitEnv is the whole environment of a git process, built from scratch:
// the worker's own (API keys, CODESWARM_* settings) never reaches git or
// anything it might start. System and global config and system attributes
// are off; HOME names nothing, so no file under the user's home is read.
func gitEnv(parent []string, identity bool) []string {
	env := []string{
		"HOME=" + os.DevNull,
		"XDG_CONFIG_HOME=" + os.DevNull,
		"LC_ALL=C",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=" + os.DevNull,
		"GIT_ATTR_NOSYSTEM=1",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_PAGER=cat",
		// status must not refresh the user's index behind their back.
		"GIT_OPTIONAL_LOCKS=0",
	}
	for _, kv := range parent {
		name, _, _ := strings.Cut(kv, "=")
		// GIT_TRACE*: the operator's own tracing (a file to write to).
		if name == "PATH" || name == "TMPDIR" || name == "TZ" || strings.HasPrefix(name, "GIT_TRACE") {
			env = append(env, kv)
		}
	}
	if identity {
		env = append(env,
			"GIT_AUTHOR_NAME="+identityName, "GIT_AUTHOR_EMAIL="+identityEmail,
			"GIT_COMMITTER_NAME="+identityName, "GIT_COMMITTER_EMAIL="+identityEmail,
		)
	}
	return env
}

// ErrUntrustedGitDir is returned when a worktree's .git does not lead to a
// linked worktree of a repository outside it.
var ErrUntrustedGitDir = errors.New("untrusted git directory")

// worktreeGitDir is the git directory of the linked worktree at dir, found
// without letting git discover it: the .git file is agent-writable (in
// principle), so what it names is accepted only if it is a worktree entry
// (<common>/worktrees/<name>) outside the worktree whose own record points
// back at this worktree. allowMain also accepts a .git directory (a main
// worktree, such as the user's own).
func worktreeGitDir(dir string, allowMain bool) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	root := realPath(abs)
	dotGit := filepath.Join(root, ".git")
	fi, err := os.Lstat(dotGit)
	switch {
	case err != nil:
		return "", fmt.Errorf("worktree %q: %w", dir, err)
	case fi.IsDir() && allowMain:
		return dotGit, nil
	case !fi.Mode().IsRegular() || fi.Size() > 4096:
		return "", errorf(ErrUntrustedGitDir, "worktree %q: .git is not a worktree's .git file", dir)
	}
	gd, err := readGitLink(dotGit, "gitdir: ")
	if err != nil {
		return "", fmt.Errorf("worktree %q: %w", dir, err)
	}
	if !filepath.IsAbs(gd) {
		gd = filepath.Join(root, gd)
	}
	gd = realPath(gd)
	if within(root, gd) {
		return "", errorf(ErrUntrustedGitDir, "worktree %q: .git points inside the worktree", dir)
	}
	back, err := readGitLink(filepath.Join(gd, "gitdir"), "")
	if err != nil || realPath(back) != dotGit {
		return "", errorf(ErrUntrustedGitDir, "worktree %q: %s is not its worktree record", dir, gd)
	}
	common, err := readGitLink(filepath.Join(gd, "commondir"), "")
	if err != nil {
		return "", errorf(ErrUntrustedGitDir, "worktree %q: %s has no commondir", dir, gd)
	}
	if !filepath.IsAbs(common) {
		common = filepath.Join(gd, common)
	}
	common = realPath(common)
	if within(root, common) || realPath(filepath.Join(common, "worktrees", filepath.Base(gd))) != gd {
		return "", errorf(ErrUntrustedGitDir, "worktree %q: %s is not a worktree entry of a repository outside it", dir, gd)
	}
	return gd, nil
}

// readGitLink reads a one-line file holding a path after prefix.
func readGitLink(path, prefix string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	line, ok := strings.CutPrefix(strings.TrimSpace(string(b)), prefix)
	if !ok || line == "" || strings.ContainsAny(line, "\n\x00") {
		return "", fmt.Errorf("%s: unexpected contents", path)
	}
	return line, nil
}

// within reports whether p is root or lies below it.
func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// removeNestedRepos deletes the .git of every repository nested in the
// worktree (whose git directory is gitDir) where `git add` would look: a
// sub-agent's own repository would otherwise be committed as a gitlink to
// commits that exist nowhere, and git would run commands inside it with its
// config. Its files stay and are committed as plain files. It returns the
// nested repositories' paths, relative to the worktree. git lists them (it
// recognises a nested repository the way `git add` does and does not
// descend into ignored directories); os.RemoveAll removes a symlinked .git
// as the link, never what it points at.
func removeNestedRepos(ctx context.Context, dir, gitDir string) ([]string, error) {
	var all []string
	for range 8 { // a nested repository may hold another one
		found, err := removeNestedOnce(ctx, dir, gitDir)
		if err != nil || len(found) == 0 {
			return all, err
		}
		all = append(all, found...)
	}
	return all, nil
}

// removeNestedOnce removes the nested repositories git lists now.
func removeNestedOnce(ctx context.Context, dir, gitDir string) ([]string, error) {
	out, err := git(ctx, dir, runOpts{gitDir: gitDir}, "ls-files", "-z", "--others", "--exclude-standard")
	if err != nil {
		return nil, fmt.Errorf("list untracked files in %q: %w", dir, err)
	}
	var found []string
	for _, p := range splitNUL(out) {
		rel, ok := strings.CutSuffix(p, "/")
		if !ok {
			continue // a file; git shows a nested repository as "path/"
		}
		dotGit := filepath.Join(dir, filepath.FromSlash(rel), ".git")
		if _, err := os.Lstat(dotGit); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := os.RemoveAll(dotGit); err != nil {
			return nil, fmt.Errorf("remove nested repository %q: %w", rel, err)
		}
		found = append(found, rel)
	}
	return found, nil
}
