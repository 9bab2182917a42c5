package tools

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	root := newRoot(t, map[string]string{"old.txt": "old"})
	if err := os.Chmod(filepath.Join(root, "old.txt"), 0o755); err != nil {
		t.Fatal(err)
	}
	res := mustOK(t, call(t, root, ToolWrite, map[string]any{"path": "new/dir/f.go", "content": "package f\n"}))
	if res.Output != "Created new/dir/f.go (10 bytes written)" || !slices.Equal(res.FilesChanged, []string{"new/dir/f.go"}) {
		t.Errorf("result: %+v", res)
	}
	if got := readTestFile(t, filepath.Join(root, "new/dir/f.go")); got != "package f\n" {
		t.Errorf("content %q", got)
	}
	res = mustOK(t, call(t, root, ToolWrite, map[string]any{"path": "old.txt", "content": ""}))
	if res.Output != "Overwrote old.txt (0 bytes written)" {
		t.Errorf("output %q", res.Output)
	}
	if fi, err := os.Stat(filepath.Join(root, "old.txt")); err != nil || fi.Mode().Perm() != 0o755 || fi.Size() != 0 {
		t.Errorf("overwrite lost mode or content: %v %v", fi.Mode(), err)
	}
	mustErr(t, call(t, root, ToolWrite, map[string]any{"path": "x.txt"}), `missing required argument "content"`)
	mustErr(t, call(t, root, ToolWrite, map[string]any{"path": "new", "content": "x"}), "new is a directory")
	entries, _ := os.ReadDir(filepath.Join(root, "new/dir"))
	if len(entries) != 1 {
		t.Errorf("temp files left behind: %v", entries)
	}
}

func TestEdit(t *testing.T) {
	const src = "func a() {\n\treturn 1\n}\n\nfunc b() {\n\treturn 1\n}\n"
	tests := []struct {
		name    string
		args    map[string]any
		want    string // file content after; empty means unchanged
		wantErr []string
	}{
		{"unique", map[string]any{"old_string": "func a() {\n\treturn 1", "new_string": "func a() {\n\treturn 2"},
			strings.Replace(src, "return 1", "return 2", 1), nil},
		{"replace all", map[string]any{"old_string": "return 1", "new_string": "return 3", "replace_all": true},
			strings.ReplaceAll(src, "return 1", "return 3"), nil},
		{"replace_all as string", map[string]any{"old_string": "return 1", "new_string": "return 3", "replace_all": "true"},
			strings.ReplaceAll(src, "return 1", "return 3"), nil},
		{"ambiguous", map[string]any{"old_string": "return 1", "new_string": "return 2"}, "",
			[]string{"occurs 2 times", "replace_all"}},
		{"not found, closest line", map[string]any{"old_string": "func c() {", "new_string": "x"}, "",
			[]string{"not found", `closest line is 1: "func a() {"`}},
		{"not found, whitespace", map[string]any{"old_string": "func a() {\n    return 1", "new_string": "x"}, "",
			[]string{"whitespace"}},
		{"not found, nothing similar", map[string]any{"old_string": "zzzzzzzzzzzzzzzzzzzz", "new_string": "x"}, "",
			[]string{"no similar line"}},
		{"identical", map[string]any{"old_string": "return 1", "new_string": "return 1"}, "",
			[]string{"identical"}},
		{"empty old", map[string]any{"old_string": "", "new_string": "x"}, "",
			[]string{"old_string is empty"}},
		{"missing new_string", map[string]any{"old_string": "a"}, "",
			[]string{`missing required argument "new_string"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := newRoot(t, map[string]string{"f.go": src})
			tt.args["path"] = "f.go"
			res := call(t, root, ToolEdit, tt.args)
			got := readTestFile(t, filepath.Join(root, "f.go"))
			if tt.wantErr != nil {
				mustErr(t, res, tt.wantErr...)
				if got != src {
					t.Errorf("file changed on error: %q", got)
				}
				return
			}
			mustOK(t, res)
			if got != tt.want {
				t.Errorf("content %q, want %q", got, tt.want)
			}
			if !slices.Equal(res.FilesChanged, []string{"f.go"}) {
				t.Errorf("FilesChanged %v", res.FilesChanged)
			}
		})
	}
}

func TestEditMessages(t *testing.T) {
	root := newRoot(t, map[string]string{"w.txt": "a\r\nb\r\n", "f.txt": "one\ntwo\nthree\n"})
	mustErr(t, call(t, root, ToolEdit, map[string]any{"path": "w.txt", "old_string": "a\nb", "new_string": "c"}), "CRLF")
	mustErr(t, call(t, root, ToolEdit, map[string]any{"path": "nope.txt", "old_string": "a", "new_string": "b"}), "nope.txt does not exist", "write")
	res := mustOK(t, call(t, root, ToolEdit, map[string]any{"path": "f.txt", "old_string": "three", "new_string": "3"}))
	if res.Output != "Edited f.txt: replaced 1 occurrence(s) (first change at line 3)" {
		t.Errorf("output %q", res.Output)
	}
}

func TestMultiEdit(t *testing.T) {
	const src = "alpha\nbeta\ngamma\n"
	root := newRoot(t, map[string]string{"f.txt": src})
	edit := func(o, n string) map[string]any { return map[string]any{"old_string": o, "new_string": n} }

	// The second edit depends on the first; the third fails, so none lands.
	res := call(t, root, ToolMultiEdit, map[string]any{"path": "f.txt", "edits": []any{
		edit("alpha", "ALPHA"), edit("ALPHA\nbeta", "AB"), edit("delta", "D"),
	}})
	mustErr(t, res, "edits[2] (of 3)", "not found", "file is unchanged")
	if got := readTestFile(t, filepath.Join(root, "f.txt")); got != src {
		t.Fatalf("partial multiedit written: %q", got)
	}

	res = mustOK(t, call(t, root, ToolMultiEdit, map[string]any{"path": "f.txt", "edits": []any{
		edit("alpha", "ALPHA"), edit("ALPHA\nbeta", "AB"),
		map[string]any{"old_string": "a", "new_string": "4", "replace_all": true},
	}}))
	if got := readTestFile(t, filepath.Join(root, "f.txt")); got != "AB\ng4mm4\n" {
		t.Errorf("content %q", got)
	}
	if !strings.Contains(res.Output, "applied 3 edit(s), 4 replacement(s)") {
		t.Errorf("output %q", res.Output)
	}
	mustErr(t, call(t, root, ToolMultiEdit, map[string]any{"path": "f.txt", "edits": []any{}}), "edits is empty")
	mustErr(t, call(t, root, ToolMultiEdit, map[string]any{"path": "f.txt"}), `missing required argument "edits"`)
	mustErr(t, call(t, root, ToolMultiEdit, map[string]any{"path": "f.txt", "edits": "nope"}), "invalid arguments for multiedit")
}
