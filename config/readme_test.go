package config

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite README.md's configuration table from the key specs")

// TestREADMETable fails when README.md's configuration table differs from
// the key specs; `go generate ./config` (-update) rewrites it.
func TestREADMETable(t *testing.T) {
	const path = "../README.md"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ReplaceTable(string(data))
	if err != nil {
		t.Fatal(err)
	}
	if want == string(data) {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got := strings.Split(string(data), "\n")
	for i, line := range strings.Split(want, "\n") {
		if i >= len(got) || got[i] != line {
			t.Fatalf("README.md line %d differs from config/keys.go:\n got: %s\nwant: %s\nrun `go generate ./config` to rewrite the table", i+1, at(got, i), line)
		}
	}
	t.Fatal("README.md differs from config/keys.go; run `go generate ./config`")
}

func at(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return "(end of file)"
}

func TestReplaceTable(t *testing.T) {
	in := "# x\n\n" + tableHeader + "\n|---|\n| `old` | 1 | X | stale |\n\nafter\n"
	out, err := ReplaceTable(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "# x\n\n"+MarkdownTable()+"\nafter\n") || strings.Contains(out, "stale") {
		t.Errorf("ReplaceTable = %q", out)
	}
	if _, err := ReplaceTable("no table here"); err == nil || !strings.Contains(err.Error(), "no configuration table") {
		t.Errorf("ReplaceTable without a table: err = %v", err)
	}
}
