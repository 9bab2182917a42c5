package tools

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		pattern, path string
		want          bool
	}{
		{"*.go", "main.go", true},
		{"*.go", "cmd/main.go", false},
		{"**/*.go", "main.go", true},
		{"**/*.go", "a/b/c/main.go", true},
		{"**/*.go", "a/b/c/main.ts", false},
		{"src/**/test/*.ts", "src/test/x.ts", true},
		{"src/**/test/*.ts", "src/a/b/test/x.ts", true},
		{"src/**/test/*.ts", "lib/test/x.ts", false},
		{"src/**", "src/a/b", true},
		{"**/**/x", "x", true},
		{"cmd/*/main.go", "cmd/tool/main.go", true},
		{"cmd/*/main.go", "cmd/a/b/main.go", false},
		{"**/*.{ts,tsx}", "web/app.tsx", true},
		{"**/*.{ts,tsx}", "web/app.js", false},
		{"{a,b}/{c,d}.txt", "b/c.txt", true},
		{"file[0-9].txt", "file7.txt", true},
		{"./*.md", "README.md", true},
	}
	for _, tt := range tests {
		g, err := compileGlob(tt.pattern)
		if err != nil {
			t.Fatalf("compile %q: %v", tt.pattern, err)
		}
		if got := g.match(tt.path); got != tt.want {
			t.Errorf("%q match %q = %v, want %v", tt.pattern, tt.path, got, tt.want)
		}
	}
	for _, bad := range []string{"", "/abs/*", "../*.go", "[", "{a,b"} {
		if _, err := compileGlob(bad); err == nil {
			t.Errorf("compileGlob(%q) succeeded", bad)
		}
	}
}

func TestGlob(t *testing.T) {
	root := newRoot(t, map[string]string{
		"main.go": "", "a/b.go": "", "a/c/d.go": "", "a/c/e.txt": "",
		".git/HEAD": "", "vendor/x/.git/config": "", "z.go": "",
	})
	tests := []struct {
		name    string
		args    map[string]any
		want    string
		wantErr string
	}{
		{"double star", map[string]any{"pattern": "**/*.go"}, "a/b.go\na/c/d.go\nmain.go\nz.go\n", ""},
		{"top level only", map[string]any{"pattern": "*.go"}, "main.go\nz.go\n", ""},
		{"under path", map[string]any{"pattern": "**/*", "path": "a/c"}, "a/c/d.go\na/c/e.txt\n", ""},
		{"git skipped", map[string]any{"pattern": "**/HEAD"}, `No files match "**/HEAD" under .`, ""},
		{"nested git skipped", map[string]any{"pattern": "vendor/**"}, `No files match "vendor/**" under .`, ""},
		{"path is file", map[string]any{"pattern": "*", "path": "main.go"}, "", "is a file"},
		{"path missing", map[string]any{"pattern": "*", "path": "nope"}, "", "nope does not exist"},
		{"bad pattern", map[string]any{"pattern": "[x"}, "", "syntax error"},
		{"no pattern", map[string]any{}, "", `missing required argument "pattern"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := call(t, root, ToolGlob, tt.args)
			if tt.wantErr != "" {
				mustErr(t, res, tt.wantErr)
				return
			}
			if mustOK(t, res).Output != tt.want {
				t.Errorf("output %q, want %q", res.Output, tt.want)
			}
		})
	}
}

func TestGlobCap(t *testing.T) {
	files := map[string]string{}
	for i := range globMaxResults + 20 {
		files[fmt.Sprintf("d/f%04d.txt", i)] = ""
	}
	root := newRoot(t, files)
	out := mustOK(t, call(t, root, ToolGlob, map[string]any{"pattern": "**/*.txt"})).Output
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != globMaxResults+1 || lines[0] != "d/f0000.txt" {
		t.Fatalf("got %d lines starting %q", len(lines), lines[0])
	}
	if last := lines[len(lines)-1]; !strings.Contains(last, "20 more files not shown (520 total)") {
		t.Errorf("cap note %q", last)
	}
}

func TestList(t *testing.T) {
	root := newRoot(t, map[string]string{"b.txt": "12345", "a/x": "", ".git/HEAD": "", ".gitignore": "x\n"})
	if err := os.Symlink("b.txt", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	out := mustOK(t, Run(t.Context(), Options{Root: root}, ToolList, "")).Output
	want := "./\n.gitignore  (2 bytes)\na/\nb.txt  (5 bytes)\nlink -> b.txt\n"
	if out != want {
		t.Errorf("list:\n%q\nwant\n%q", out, want)
	}
	if err := os.Mkdir(filepath.Join(root, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out := mustOK(t, call(t, root, ToolList, map[string]any{"path": "empty"})).Output; out != "empty/\n(empty directory)\n" {
		t.Errorf("empty dir: %q", out)
	}
	mustErr(t, call(t, root, ToolList, map[string]any{"path": "b.txt"}), "b.txt is a file")
	mustErr(t, call(t, root, ToolList, map[string]any{"path": "nope"}), "nope does not exist")
}

func TestGrep(t *testing.T) {
	root := newRoot(t, map[string]string{
		".gitignore":        "build/\n*.log\n!keep.log\n",
		"main.go":           "package main\n// TODO: one\nfunc main() {}\n",
		"pkg/a.go":          "package pkg\n// todo: lower\n",
		"pkg/.gitignore":    "gen_*.go\n",
		"pkg/gen_x.go":      "// TODO: generated\n",
		"pkg/sub/b.ts":      "// TODO: ts\n",
		"build/out.go":      "// TODO: built\n",
		"debug.log":         "TODO: log\n",
		"keep.log":          "TODO: kept\n",
		"bin.dat":           "TODO\x00binary",
		".git/info/exclude": "excluded.go\n",
		"excluded.go":       "// TODO: excluded\n",
		".git/config":       "TODO in git\n",
	})
	tests := []struct {
		name    string
		args    map[string]any
		want    string
		wantErr string
	}{
		{"gitignore respected", map[string]any{"pattern": "TODO"},
			"keep.log:1: TODO: kept\nmain.go:2: // TODO: one\npkg/sub/b.ts:1: // TODO: ts\n", ""},
		{"case insensitive", map[string]any{"pattern": "(?i)todo: l", "path": "pkg"}, "pkg/a.go:2: // todo: lower\n", ""},
		{"include by name", map[string]any{"pattern": "TODO", "include": "*.go"}, "main.go:2: // TODO: one\n", ""},
		{"include by path", map[string]any{"pattern": "TODO", "include": "**/*.ts"}, "pkg/sub/b.ts:1: // TODO: ts\n", ""},
		{"subdir inherits parent ignores", map[string]any{"pattern": "TODO", "path": "pkg"}, "pkg/sub/b.ts:1: // TODO: ts\n", ""},
		{"single file", map[string]any{"pattern": "func", "path": "main.go"}, "main.go:3: func main() {}\n", ""},
		{"no match", map[string]any{"pattern": "nothing here"}, `No matches for "nothing here"`, ""},
		{"bad regexp", map[string]any{"pattern": "(?<=x)"}, "", "invalid regular expression"},
		{"missing path", map[string]any{"pattern": "x", "path": "nope"}, "", "nope does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := call(t, root, ToolGrep, tt.args)
			if tt.wantErr != "" {
				mustErr(t, res, tt.wantErr)
				return
			}
			if mustOK(t, res).Output != tt.want {
				t.Errorf("output:\n%s\nwant:\n%s", res.Output, tt.want)
			}
		})
	}
}

func TestGrepCaps(t *testing.T) {
	root := newRoot(t, map[string]string{"many.txt": strings.Repeat("hit\n", 1000)})
	out := mustOK(t, call(t, root, ToolGrep, map[string]any{"pattern": "hit"})).Output
	if n := strings.Count(out, ":hit") + strings.Count(out, ": hit"); n != grepMaxMatches {
		t.Errorf("%d matches shown, want %d", n, grepMaxMatches)
	}
	if !strings.Contains(out, "stopped after 200 matches") {
		t.Errorf("no cap note: %q", out[len(out)-100:])
	}
	res := Run(t.Context(), Options{Root: root, MaxOutputBytes: 100}, ToolGrep, `{"pattern":"hit"}`)
	if len(mustOK(t, res).Output) > 100+200 || !strings.Contains(res.Output, "stopped after") {
		t.Errorf("byte cap not applied: %d bytes", len(res.Output))
	}
}
