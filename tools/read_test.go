package tools

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func numbered(from, to int) string {
	var b strings.Builder
	for i := from; i <= to; i++ {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	return b.String()
}

func TestRead(t *testing.T) {
	root := newRoot(t, map[string]string{
		"five.txt":  numbered(1, 5),
		"crlf.txt":  "a\r\nb\r\n",
		"noeol.txt": "x\ny",
		"empty.txt": "",
		"long.txt":  strings.Repeat("é", 2500) + "\nshort\n",
		"big.txt":   numbered(1, 2500),
		"bin.dat":   "abc\x00def",
		"dir/f":     "f\n",
	})
	tests := []struct {
		name    string
		args    map[string]any
		want    string
		wantErr string
	}{
		{"whole file", map[string]any{"path": "five.txt"}, "     1\tline 1\n     2\tline 2\n     3\tline 3\n     4\tline 4\n     5\tline 5\n", ""},
		{"offset and limit", map[string]any{"path": "five.txt", "offset": 2, "limit": 2}, "     2\tline 2\n     3\tline 3\n... 2 more lines; use offset=4 to read on\n", ""},
		{"numeric strings accepted", map[string]any{"path": "five.txt", "offset": "5"}, "     5\tline 5\n", ""},
		{"crlf stripped", map[string]any{"path": "crlf.txt"}, "     1\ta\n     2\tb\n", ""},
		{"no final newline", map[string]any{"path": "noeol.txt"}, "     1\tx\n     2\ty\n", ""},
		{"empty file", map[string]any{"path": "empty.txt"}, "(empty.txt is empty)\n", ""},
		{"offset past end", map[string]any{"path": "five.txt", "offset": 9}, "", "past the end of the file, which has 5 lines"},
		{"bad offset", map[string]any{"path": "five.txt", "offset": 0}, "", "offset 0 is invalid"},
		{"bad limit", map[string]any{"path": "five.txt", "limit": -1}, "", "limit -1 is invalid"},
		{"limit wrong type", map[string]any{"path": "five.txt", "limit": "lots"}, "", "want an integer"},
		{"missing", map[string]any{"path": "nope.txt"}, "", "nope.txt does not exist"},
		{"directory", map[string]any{"path": "dir"}, "", "is a directory; use list"},
		{"binary", map[string]any{"path": "bin.dat"}, "", "bin.dat looks binary"},
		{"missing path", map[string]any{}, "", `missing required argument "path"`},
		{"misspelled path", map[string]any{"file_path": "five.txt"}, "", `unknown "file_path"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := call(t, root, ToolRead, tt.args)
			if tt.wantErr != "" {
				mustErr(t, res, tt.wantErr)
				return
			}
			if mustOK(t, res).Output != tt.want {
				t.Errorf("output:\n%q\nwant:\n%q", res.Output, tt.want)
			}
		})
	}

	t.Run("long line cut", func(t *testing.T) {
		out := mustOK(t, call(t, root, ToolRead, map[string]any{"path": "long.txt"})).Output
		first, _, _ := strings.Cut(out, "\n")
		if want := "     1\t" + strings.Repeat("é", 2000) + " [... line truncated]"; first != want {
			t.Errorf("first line has %d bytes, want the cut line of %d", len(first), len(want))
		}
		if !strings.Contains(out, "     2\tshort\n") {
			t.Errorf("second line missing: %q", out[len(out)-40:])
		}
	})
	t.Run("default limit 2000", func(t *testing.T) {
		out := mustOK(t, call(t, root, ToolRead, map[string]any{"path": "big.txt"})).Output
		if !strings.Contains(out, "  2000\tline 2000\n... 500 more lines; use offset=2001 to read on\n") || strings.Contains(out, "line 2001") {
			t.Errorf("unexpected paging: %q", out[len(out)-80:])
		}
	})
}

func TestReadHugeFile(t *testing.T) {
	root := newRoot(t, nil)
	f, err := os.Create(filepath.Join(root, "huge.log"))
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Repeat("x", 99) + "\n"
	for range (DefaultMaxFileBytes / len(line)) + 10 {
		if _, err := f.WriteString(line); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	mustErr(t, call(t, root, ToolRead, map[string]any{"path": "huge.log"}), "huge.log is", "tools.max_file_bytes", "offset and limit")
	out := mustOK(t, call(t, root, ToolRead, map[string]any{"path": "huge.log", "offset": 80000, "limit": 2})).Output
	want := fmt.Sprintf(" 80000\t%s\n 80001\t%s\n", line[:99], line[:99])
	if !strings.HasPrefix(out, want) || !strings.Contains(out, "more lines; use offset=80002") {
		t.Errorf("streamed read: %q", out)
	}
}

func TestSpecialFilesRefused(t *testing.T) {
	root := newRoot(t, map[string]string{"ok.txt": "needle\n"})
	for _, name := range []string{"pipe", "sub/pipe", ".gitignore"} {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mkfifo(filepath.Join(root, name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		mustErr(t, call(t, root, ToolRead, map[string]any{"path": "pipe"}), "pipe is a FIFO (named pipe)", "can block forever")
		mustErr(t, call(t, root, ToolGrep, map[string]any{"pattern": "x", "path": "pipe"}), "pipe is a FIFO")
		mustErr(t, call(t, root, ToolList, map[string]any{"path": "sub/pipe"}), "sub/pipe is a FIFO")
		mustErr(t, call(t, root, ToolRead, map[string]any{"path": "/dev/null"}), "outside the worktree")
		// A tree search skips FIFOs (and a FIFO .gitignore) instead of waiting.
		if res := mustOK(t, call(t, root, ToolGrep, map[string]any{"pattern": "needle"})); !strings.Contains(res.Output, "ok.txt") {
			t.Errorf("grep output %q", res.Output)
		}
		mustOK(t, call(t, root, ToolList, map[string]any{}))
		mustOK(t, call(t, root, ToolGlob, map[string]any{"pattern": "**"}))
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a tool blocked on a FIFO")
	}
}
