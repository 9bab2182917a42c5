package tools

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// newRoot creates a worktree with the given files (path -> content).
func newRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		writeTestFile(t, filepath.Join(root, p), content)
	}
	return root
}

func writeTestFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readTestFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// jsonArgs encodes tool arguments.
func jsonArgs(t *testing.T, args map[string]any) string {
	t.Helper()
	b, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// call runs one tool in root with default options.
func call(t *testing.T, root, name string, args map[string]any) Result {
	t.Helper()
	return Run(context.Background(), Options{Root: root}, name, jsonArgs(t, args))
}

func mustOK(t *testing.T, res Result) Result {
	t.Helper()
	if res.IsError {
		t.Fatalf("unexpected error result: %s", res.Output)
	}
	return res
}

func mustErr(t *testing.T, res Result, wantSubstrings ...string) {
	t.Helper()
	if !res.IsError {
		t.Fatalf("expected an error result, got: %s", res.Output)
	}
	for _, s := range wantSubstrings {
		if !strings.Contains(res.Output, s) {
			t.Errorf("error %q does not mention %q", res.Output, s)
		}
	}
}
