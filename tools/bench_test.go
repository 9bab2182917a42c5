package tools

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// benchTree builds 20 packages of 50 Go files of 200 lines each (~1000
// files, ~7 MB) plus an ignored build directory of the same shape.
func benchTree(b *testing.B) string {
	b.Helper()
	root := b.TempDir()
	var src strings.Builder
	for i := range 200 {
		fmt.Fprintf(&src, "func f%d(x int) int { return x * %d } // padding padding\n", i, i)
	}
	for _, top := range []string{"pkg", "build"} {
		for p := range 20 {
			for f := range 50 {
				path := filepath.Join(root, top, fmt.Sprintf("p%02d", p), fmt.Sprintf("f%02d.go", f))
				writeTestFile(b, path, src.String())
			}
		}
	}
	writeTestFile(b, filepath.Join(root, ".gitignore"), "build/\n")
	return root
}

func BenchmarkGrepTree(b *testing.B) {
	root := benchTree(b)
	opts := Options{Root: root}
	for b.Loop() {
		if res := Run(b.Context(), opts, ToolGrep, `{"pattern":"return x \\* 199 }"}`); res.IsError {
			b.Fatal(res.Output)
		}
	}
}

func BenchmarkGlobTree(b *testing.B) {
	root := benchTree(b)
	opts := Options{Root: root}
	for b.Loop() {
		if res := Run(b.Context(), opts, ToolGlob, `{"pattern":"**/f4*.go"}`); res.IsError {
			b.Fatal(res.Output)
		}
	}
}

func BenchmarkJournalEdit(b *testing.B) {
	root := b.TempDir()
	writeTestFile(b, filepath.Join(root, "f.txt"), strings.Repeat("line\n", 1000)+"a")
	j, err := OpenJournal(filepath.Join(b.TempDir(), "j"))
	if err != nil {
		b.Fatal(err)
	}
	opts := Options{Root: root}
	i := 0
	for b.Loop() {
		i++
		args := fmt.Sprintf(`{"path":"f.txt","old_string":"a%s","new_string":"a%sb"}`,
			strings.Repeat("b", i-1), strings.Repeat("b", i-1))
		if res, err := j.Run(b.Context(), fmt.Sprintf("run/s/%d/0", i), opts, ToolEdit, args); err != nil || res.IsError {
			b.Fatalf("%v %s", err, res.Output)
		}
	}
}

func BenchmarkBashLargeOutput(b *testing.B) {
	opts := Options{Root: b.TempDir(), Env: testEnv()}
	const size = 100 << 20
	b.SetBytes(size)
	for b.Loop() {
		res := Run(b.Context(), opts, ToolBash, fmt.Sprintf(`{"command":"head -c %d /dev/zero"}`, size))
		if !strings.HasSuffix(res.Output, "exit code: 0") {
			b.Fatal(res.Output)
		}
	}
}

func BenchmarkBashEcho(b *testing.B) {
	opts := Options{Root: b.TempDir(), Env: testEnv()}
	for b.Loop() {
		if res := Run(b.Context(), opts, ToolBash, `{"command":"echo hi"}`); res.IsError {
			b.Fatal(res.Output)
		}
	}
}

// BenchmarkBashTrue measures one bash call of `true`, sandboxed (bubblewrap,
// namespaces, the pids cgroup) and unconfined, in the same run: the
// difference is the sandbox's cost per call.
func BenchmarkBashTrue(b *testing.B) {
	root := b.TempDir()
	// The limits of the default configuration (tools.bash.memory_max_bytes,
	// tools.bash.tmp_max_bytes), so the cost is the one the worker pays.
	sandboxed := NewSandbox(SandboxConfig{MemoryMaxBytes: 2 << 30, TmpMaxBytes: 1 << 30})
	b.Cleanup(sandboxed.Close)
	if err := sandboxed.Err(); err != nil {
		b.Skip(err)
	}
	for _, bc := range []struct {
		name string
		sb   *Sandbox
	}{{"unconfined", unconfined}, {"sandboxed", sandboxed}} {
		b.Run(bc.name, func(b *testing.B) {
			opts := Options{Root: root, Sandbox: bc.sb, Env: testEnv()}
			for b.Loop() {
				if res := Run(b.Context(), opts, ToolBash, `{"command":"true"}`); res.Output != "exit code: 0" {
					b.Fatal(res.Output)
				}
			}
		})
	}
}
