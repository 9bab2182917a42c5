package tools

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFileToolsRefuseHugeAndSpecialFiles: write, edit and multiedit never
// load a file over MaxFileBytes (a sparse 2 GiB file costs nothing on disk)
// nor open a FIFO (which would block forever), and say why.
func TestFileToolsRefuseHugeAndSpecialFiles(t *testing.T) {
	root := newRoot(t, map[string]string{"small.txt": "aaaa\n"})
	sparse := filepath.Join(root, "sparse.bin")
	f, err := os.Create(sparse)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(2 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := syscall.Mkfifo(filepath.Join(root, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := Options{Root: root, MaxFileBytes: 1 << 20}
	run := func(name string, args map[string]any) Result {
		done := make(chan Result, 1)
		go func() { done <- Run(context.Background(), opts, name, jsonArgs(t, args)) }()
		select {
		case r := <-done:
			return r
		case <-time.After(20 * time.Second):
			t.Fatalf("%s %v blocked", name, args)
			return Result{}
		}
	}
	edit := map[string]any{"old_string": "x", "new_string": "y"}
	calls := []struct {
		name string
		args map[string]any
	}{
		{ToolWrite, map[string]any{"content": "new"}},
		{ToolEdit, edit},
		{ToolMultiEdit, map[string]any{"edits": []any{edit}}},
	}
	for _, c := range calls {
		for path, want := range map[string][]string{
			"sparse.bin": {"2147483648 bytes", "1048576-byte limit", "tools.max_file_bytes"},
			"pipe":       {"FIFO", "not a regular file"},
		} {
			args := map[string]any{"path": path}
			for k, v := range c.args {
				args[k] = v
			}
			mustErr(t, run(c.name, args), want...)
		}
	}
	if fi, err := os.Stat(sparse); err != nil || fi.Size() != 2<<30 {
		t.Errorf("sparse file changed: %v %v", fi.Size(), err)
	}
	// read uses the same cap.
	if err := os.WriteFile(filepath.Join(root, "big.txt"), []byte(strings.Repeat("t\n", 1<<20)), 0o644); err != nil {
		t.Fatal(err)
	}
	mustErr(t, run(ToolRead, map[string]any{"path": "big.txt"}), "2097152 bytes", "1048576-byte limit")

	// Results over the cap are refused before they are built.
	mustErr(t, run(ToolWrite, map[string]any{"path": "new.txt", "content": strings.Repeat("z", 1<<20+1)}), "1048577 bytes", "tools.max_file_bytes")
	blowup := map[string]any{"path": "small.txt", "old_string": "a", "new_string": strings.Repeat("b", 300<<10), "replace_all": true}
	mustErr(t, run(ToolEdit, blowup), "tools.max_file_bytes", "nothing was changed")
	if got := readFile(t, filepath.Join(root, "small.txt")); got != "aaaa\n" {
		t.Errorf("small.txt = %q after refused edits", got)
	}
	mustOK(t, run(ToolEdit, map[string]any{"path": "small.txt", "old_string": "aaaa", "new_string": "bbbb"}))
}

// TestFileToolsStopOnCancel: a cancelled attempt neither reads on nor
// applies its change, and the journal does not record it as done.
func TestFileToolsStopOnCancel(t *testing.T) {
	root := newRoot(t, map[string]string{"a.txt": strings.Repeat("a\n", 1<<20)})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := Run(ctx, Options{Root: root}, ToolEdit, jsonArgs(t, map[string]any{"path": "a.txt", "old_string": "a\n", "new_string": "b\n", "replace_all": true}))
	mustErr(t, res, "context canceled")
	if got := readFile(t, filepath.Join(root, "a.txt")); strings.Contains(got, "b") {
		t.Error("a cancelled edit changed the file")
	}
	j, err := OpenJournal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	args := jsonArgs(t, map[string]any{"path": "a.txt", "old_string": "a\n", "new_string": "b\n", "replace_all": true})
	if _, err := j.Run(ctx, "k", Options{Root: root}, ToolEdit, args); err != nil {
		t.Fatal(err)
	}
	res, err = j.Run(context.Background(), "k", Options{Root: root}, ToolEdit, args)
	if err != nil || res.IsError {
		t.Fatalf("retry after a cancelled attempt: %+v %v", res, err)
	}
	mustErr(t, Run(ctx, Options{Root: root}, ToolRead, jsonArgs(t, map[string]any{"path": "a.txt"})), "context canceled")
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
