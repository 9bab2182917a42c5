package tools

import (
	openai "github.com/sashabaranov/go-openai"
)

// toolSpec describes one tool; Definitions renders it as JSON schema.
type toolSpec struct {
	name   string
	desc   string
	params []param
}

// param is one argument of a tool.
type param struct {
	name     string
	schema   map[string]any
	required bool
}

func str(desc string) map[string]any  { return map[string]any{"type": "string", "description": desc} }
func num(desc string) map[string]any  { return map[string]any{"type": "number", "description": desc} }
func intg(desc string) map[string]any { return map[string]any{"type": "integer", "description": desc} }
func boolean(desc string) map[string]any {
	return map[string]any{"type": "boolean", "description": desc}
}

// editItem is the schema of one edit, shared by edit and multiedit.
func editItem() map[string]any {
	return map[string]any{
		"type": "object",
		"properties": map[string]any{
			"old_string":  str("Exact text to replace, including indentation; must occur exactly once unless replace_all is true."),
			"new_string":  str("Replacement text; must differ from old_string."),
			"replace_all": boolean("Replace every occurrence instead of exactly one (default false)."),
		},
		"required": []string{"old_string", "new_string"},
	}
}

// definitionSpecs is the single source of tool names, argument names and
// descriptions; argument validation reads it too.
func definitionSpecs() []toolSpec {
	const rel = " Paths are relative to the worktree root (an absolute path inside the worktree also works); nothing outside the worktree is reachable."
	return []toolSpec{
		{ToolRead, "Read a text file with numbered lines (like cat -n). Reads at most `limit` lines starting at line `offset`; use offset to page through long files. Binary files are refused." + rel, []param{
			{"path", str("File to read, relative to the worktree root."), true},
			{"offset", intg("1-based line number to start at (default 1)."), false},
			{"limit", intg("Maximum number of lines to return (default 2000)."), false},
		}},
		{ToolWrite, "Create or overwrite a file with the given content; parent directories are created. Prefer edit for changing part of an existing file. Files under .git cannot be written." + rel, []param{
			{"path", str("File to write, relative to the worktree root."), true},
			{"content", str("The complete new file content."), true},
		}},
		{ToolEdit, "Replace text in an existing file. old_string must match the file exactly (whitespace included) and occur exactly once, unless replace_all is true. Read the file first." + rel, []param{
			{"path", str("File to edit, relative to the worktree root."), true},
			{"old_string", str("Exact text to replace; include enough surrounding lines to make it unique."), true},
			{"new_string", str("Replacement text; must differ from old_string."), true},
			{"replace_all", boolean("Replace every occurrence (default false)."), false},
		}},
		{ToolMultiEdit, "Apply several edits to one file in order, all or nothing: each edit sees the result of the previous ones, and if any edit fails the file is left unchanged." + rel, []param{
			{"path", str("File to edit, relative to the worktree root."), true},
			{"edits", map[string]any{"type": "array", "description": "Edits applied in order.", "items": editItem(), "minItems": 1}, true},
		}},
		{ToolGlob, "Find files by glob pattern, e.g. `**/*.go` (any depth), `cmd/*/main.go`, `src/**/*.{ts,tsx}`. `*` does not cross `/`; `**` matches any number of directories. Results are sorted paths relative to the worktree root; .git is skipped." + rel, []param{
			{"pattern", str("Glob pattern, matched against paths relative to `path`."), true},
			{"path", str("Directory to search in (default: the worktree root)."), false},
		}},
		{ToolGrep, "Search file contents with a Go (RE2) regular expression. Output lines are `path:line: text`. Files ignored by .gitignore, binary files and .git are skipped." + rel, []param{
			{"pattern", str("RE2 regular expression, e.g. `func \\w+Handler` or `(?i)todo`."), true},
			{"path", str("File or directory to search (default: the worktree root)."), false},
			{"include", str("Only search files matching this glob: on the file name (`*.go`) or, if it contains `/`, on the path relative to the worktree root (`**/*.ts`)."), false},
		}},
		{ToolBash, "Run a shell command with `bash -c` in the worktree root. Output is stdout and stderr combined, truncated in the middle if long, and ends with `exit code: N` (124 means the command timed out and was killed). A non-zero exit code is reported, not treated as a tool failure. Background processes are killed when the command ends.", []param{
			{"command", str("The bash command line to run."), true},
			{"timeout", num("Timeout in seconds (default and maximum are set by the operator; typically 120 and 600)."), false},
		}},
		{ToolList, "List one directory level: directories end with `/`, files show their size in bytes. .git is skipped." + rel, []param{
			{"path", str("Directory to list (default: the worktree root)."), false},
		}},
		{ToolSwarmShare, "Share findings with the other sub-agents of this run. publish stores `value` under `key` (with optional `tags`); get reads one key; query_tags returns entries having all `tags`; query_prefix returns entries whose key starts with `prefix`; list returns all keys.", []param{
			{"action", map[string]any{"type": "string", "enum": shareActions(), "description": "What to do."}, true},
			{"key", str("Entry key (publish, get)."), false},
			{"value", map[string]any{"description": "Any JSON value to publish."}, false},
			{"tags", map[string]any{"type": "array", "items": map[string]any{"type": "string"}, "description": "Tags (publish, query_tags)."}, false},
			{"prefix", str("Key prefix (query_prefix)."), false},
		}},
	}
}

// Definitions returns the go-openai tool definitions of all nine tools.
func Definitions() []openai.Tool {
	specs := definitionSpecs()
	out := make([]openai.Tool, 0, len(specs))
	for _, s := range specs {
		props := map[string]any{}
		required := []string{}
		for _, p := range s.params {
			props[p.name] = p.schema
			if p.required {
				required = append(required, p.name)
			}
		}
		out = append(out, openai.Tool{
			Type: openai.ToolTypeFunction,
			Function: &openai.FunctionDefinition{
				Name:        s.name,
				Description: s.desc,
				Parameters: map[string]any{
					"type":       "object",
					"properties": props,
					"required":   required,
				},
			},
		})
	}
	return out
}
