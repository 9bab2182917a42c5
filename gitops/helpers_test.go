package gitops

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestMain keeps the tests independent of the machine's git config: no
// global or system config, hence no user identity for the code under test.
func TestMain(m *testing.M) {
	os.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	os.Setenv("GIT_CONFIG_GLOBAL", os.DevNull)
	os.Exit(m.Run())
}

// testRepo is a scratch repository built with the git CLI.
type testRepo struct {
	t    testing.TB
	dir  string
	repo *Repo
}

// newTestRepo creates a repository on branch main with one commit holding
// a.txt, b.txt and c.txt, and an uncommitted change the package must never
// touch (a modified b.txt plus an untracked notes.txt).
func newTestRepo(t testing.TB) *testRepo {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	runGit(t, "", nil, "init", "--quiet", "--initial-branch=main", dir)
	tr := &testRepo{t: t, dir: dir}
	tr.write("a.txt", "alpha\n")
	tr.write("b.txt", "bravo\n")
	tr.write("c.txt", "one\ntwo\nthree\n")
	tr.git("add", "-A")
	tr.git("commit", "--quiet", "-m", "initial")
	repo, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	tr.repo = repo
	return tr
}

// dirtyUserTree adds the uncommitted state that must survive every call.
func (tr *testRepo) dirtyUserTree() {
	tr.write("b.txt", "bravo, edited by the user\n")
	tr.write("notes.txt", "untracked\n")
}

func (tr *testRepo) write(rel, content string) {
	tr.t.Helper()
	writeFile(tr.t, filepath.Join(tr.dir, rel), content)
}

func (tr *testRepo) git(args ...string) string {
	tr.t.Helper()
	return runGit(tr.t, tr.dir, nil, args...)
}

func (tr *testRepo) head(rev string) string {
	tr.t.Helper()
	return tr.git("rev-parse", rev)
}

// commitOn commits files (path → content, "" deletes) on top of parent and
// points branch at the result, using a private index so no worktree (and not
// the code under test) is involved.
func (tr *testRepo) commitOn(branch, parent string, files map[string]string) string {
	tr.t.Helper()
	env := []string{"GIT_INDEX_FILE=" + filepath.Join(tr.t.TempDir(), "index")}
	runGit(tr.t, tr.dir, env, "read-tree", parent)
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if files[p] == "" {
			runGit(tr.t, tr.dir, env, "update-index", "--force-remove", p)
			continue
		}
		blob := runGitIn(tr.t, tr.dir, env, files[p], "hash-object", "-w", "--stdin")
		runGit(tr.t, tr.dir, env, "update-index", "--add", "--cacheinfo", "100644,"+blob+","+p)
	}
	tree := runGit(tr.t, tr.dir, env, "write-tree")
	commit := runGit(tr.t, tr.dir, env, "commit-tree", tree, "-p", tr.head(parent), "-m", "change on "+branch)
	runGit(tr.t, tr.dir, env, "update-ref", "refs/heads/"+branch, commit)
	return commit
}

// userState is what the user sees of their repository.
type userState struct{ branch, head, status, bText string }

func (tr *testRepo) userState() userState {
	tr.t.Helper()
	b, err := os.ReadFile(filepath.Join(tr.dir, "b.txt"))
	if err != nil {
		tr.t.Fatal(err)
	}
	return userState{
		branch: tr.git("rev-parse", "--symbolic-full-name", "HEAD"),
		head:   tr.head("HEAD"),
		status: tr.git("status", "--porcelain"),
		bText:  string(b),
	}
}

// assertUserUntouched checks the user's state at the end of the test.
func (tr *testRepo) assertUserUntouched() {
	tr.t.Helper()
	before := tr.userState()
	tr.t.Cleanup(func() {
		if after := tr.userState(); after != before {
			tr.t.Errorf("user's repository changed:\nbefore %+v\nafter  %+v", before, after)
		}
	})
}

func runGit(t testing.TB, dir string, env []string, args ...string) string {
	t.Helper()
	return runGitIn(t, dir, env, "", args...)
}

// runGitIn runs git as a test fixture author (its own identity).
func runGitIn(t testing.TB, dir string, env []string, stdin string, args ...string) string {
	t.Helper()
	if dir != "" {
		args = append([]string{"-C", dir}, args...)
	}
	cmd := exec.Command("git", args...)
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=Test", "GIT_AUTHOR_EMAIL=test@example.com",
		"GIT_COMMITTER_NAME=Test", "GIT_COMMITTER_EMAIL=test@example.com")
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("git %v: %v: %s", args, err, stderr)
	}
	return strings.TrimSpace(string(out))
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
