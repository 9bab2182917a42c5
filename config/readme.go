package config

import (
	"fmt"
	"strings"
)

//go:generate go test -count=1 -run ^TestREADMETable$ . -update

// tableHeader opens the configuration table in README.md; the table runs
// from this line to the first blank line.
const tableHeader = "| key | default | environment | meaning |"

// MarkdownTable renders Table as the README's configuration table, so the
// documentation is generated from the key specs and cannot drift from them.
func MarkdownTable() string {
	var b strings.Builder
	b.WriteString(tableHeader + "\n|---|---|---|---|\n")
	for _, d := range Table() {
		def := "`" + d.Default + "`"
		if d.Default == "" {
			def = `""`
		}
		fmt.Fprintf(&b, "| `%s` | %s | `%s` | %s |\n", d.Key, def, d.Env, escapeCell(d.Description))
	}
	return b.String()
}

// ReplaceTable returns readme with its configuration table replaced by
// MarkdownTable, or an error when readme has no such table.
func ReplaceTable(readme string) (string, error) {
	start := strings.Index(readme, tableHeader+"\n")
	if start < 0 {
		return "", fmt.Errorf("README has no configuration table (a line %q)", tableHeader)
	}
	end := strings.Index(readme[start:], "\n\n")
	if end < 0 {
		end = len(readme) - start
	}
	return readme[:start] + MarkdownTable() + readme[start+end+1:], nil
}

// escapeCell keeps a description from splitting its table row.
func escapeCell(s string) string {
	return strings.ReplaceAll(s, "|", `\|`)
}
