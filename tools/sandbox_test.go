package tools

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSandboxEscapes(t *testing.T) {
	outside := t.TempDir()
	writeTestFile(t, filepath.Join(outside, "secret.txt"), "secret\n")
	root := newRoot(t, map[string]string{"a.txt": "hello\n", "sub/b.txt": "b\n"})
	if err := os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(root, "filelink")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "dirlink")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "missing.txt"), filepath.Join(root, "dangling")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub/b.txt", filepath.Join(root, "inlink")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		tool    string
		args    map[string]any
		wantErr string // empty: success
	}{
		{"dotdot read", ToolRead, map[string]any{"path": "../x"}, `"../x"`},
		{"dotdot in the middle", ToolRead, map[string]any{"path": "sub/../../x"}, `"sub/../../x"`},
		{"absolute outside", ToolRead, map[string]any{"path": "/etc/passwd"}, `"/etc/passwd" is outside the worktree`},
		{"absolute inside", ToolRead, map[string]any{"path": filepath.Join(root, "a.txt")}, ""},
		{"dotdot that stays inside", ToolRead, map[string]any{"path": "sub/../a.txt"}, ""},
		{"symlink file out", ToolRead, map[string]any{"path": "filelink"}, `"filelink" leads outside`},
		{"symlink dir out", ToolRead, map[string]any{"path": "dirlink/secret.txt"}, `"dirlink/secret.txt" leads outside`},
		{"write through symlink dir to new file", ToolWrite, map[string]any{"path": "dirlink/new/deep.txt", "content": "x"}, "leads outside"},
		{"write through symlink file", ToolWrite, map[string]any{"path": "filelink", "content": "x"}, "leads outside"},
		{"write through dangling symlink", ToolWrite, map[string]any{"path": "dangling", "content": "x"}, "dangling"},
		{"symlink inside is fine", ToolRead, map[string]any{"path": "inlink"}, ""},
		{"git config write", ToolWrite, map[string]any{"path": ".git/config", "content": "x"}, `".git/config" is inside .git`},
		{"nested git write", ToolWrite, map[string]any{"path": "vendor/x/.git/HEAD", "content": "x"}, "inside .git"},
		{"git file write", ToolWrite, map[string]any{"path": ".git", "content": "x"}, "inside .git"},
		{"glob outside", ToolGlob, map[string]any{"pattern": "*", "path": "../"}, "escapes the worktree"},
		{"grep outside", ToolGrep, map[string]any{"pattern": "secret", "path": "dirlink"}, "leads outside"},
		{"list outside", ToolList, map[string]any{"path": "/tmp"}, "outside the worktree"},
		{"empty path", ToolRead, map[string]any{"path": ""}, "path is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := call(t, root, tt.tool, tt.args)
			if tt.wantErr == "" {
				mustOK(t, res)
				return
			}
			mustErr(t, res, tt.wantErr)
		})
	}
	if got := readTestFile(t, filepath.Join(outside, "secret.txt")); got != "secret\n" {
		t.Errorf("outside file changed: %q", got)
	}
	if _, err := os.Stat(filepath.Join(outside, "new")); !os.IsNotExist(err) {
		t.Errorf("a directory was created outside the worktree: %v", err)
	}
	if _, err := os.Stat(filepath.Join(outside, "missing.txt")); !os.IsNotExist(err) {
		t.Errorf("a file was created outside through a dangling link: %v", err)
	}
}

func TestSandboxRootThroughSymlink(t *testing.T) {
	real := newRoot(t, map[string]string{"a.txt": "a\n"})
	link := filepath.Join(t.TempDir(), "wt")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	mustOK(t, call(t, link, ToolRead, map[string]any{"path": "a.txt"}))
	mustOK(t, call(t, link, ToolRead, map[string]any{"path": filepath.Join(link, "a.txt")}))
	mustOK(t, call(t, link, ToolRead, map[string]any{"path": filepath.Join(real, "a.txt")}))
}

func TestRunBadRoot(t *testing.T) {
	for _, root := range []string{"", "relative/dir", filepath.Join(t.TempDir(), "missing")} {
		mustErr(t, call(t, root, ToolList, map[string]any{}), "worktree is not usable")
	}
}

func TestGitDirThroughSymlinks(t *testing.T) {
	root := newRoot(t, map[string]string{"gitdir/config": "[core]\n", "a.txt": "a\n"})
	if err := os.Symlink("gitdir", filepath.Join(root, ".git")); err != nil {
		t.Fatal(err)
	}
	mustErr(t, call(t, root, ToolWrite, map[string]any{"path": ".git/config", "content": "x"}), "inside .git")
	// A link into a real .git directory is caught by the resolved path.
	real := newRoot(t, map[string]string{".git/config": "x"})
	if err := os.Symlink(".git", filepath.Join(real, "g")); err != nil {
		t.Fatal(err)
	}
	mustErr(t, call(t, real, ToolWrite, map[string]any{"path": "g/config", "content": "x"}), `"g/config" is inside .git`)
}

func TestRootInsideGitDir(t *testing.T) {
	// Worktrees may live under a repository's .git directory; only paths
	// below the root count.
	root := filepath.Join(t.TempDir(), ".git", "worktrees", "wt")
	writeTestFile(t, filepath.Join(root, "a.txt"), "a")
	mustOK(t, call(t, root, ToolWrite, map[string]any{"path": filepath.Join(root, "a.txt"), "content": "b"}))
	mustOK(t, call(t, root, ToolEdit, map[string]any{"path": "a.txt", "old_string": "b", "new_string": "c"}))
}
