package llm

import (
	"reflect"
	"testing"
)

func knownTool(name string) bool { return name == "read" || name == "bash" }

func TestParseTextCalls(t *testing.T) {
	read := TextCall{Name: "read", Arguments: `{"path":"a.go"}`}
	bash := TextCall{Name: "bash", Arguments: `{"command":"go test ./..."}`}
	tests := []struct {
		name, content string
		want          []TextCall
		rest          string
	}{
		{"object", `{"name": "read", "arguments": {"path": "a.go"}}`, []TextCall{read}, ""},
		{"tool and parameters", `{"tool": "read", "parameters": {"path": "a.go"}}`, []TextCall{read}, ""},
		{"arguments as a string", `{"name": "read", "arguments": "{\"path\": \"a.go\"}"}`, []TextCall{read}, ""},
		{"nested function", `{"type": "function", "function": {"name": "read", "arguments": {"path": "a.go"}}}`, []TextCall{read}, ""},
		{"fenced", "```json\n{\"name\": \"read\", \"arguments\": {\"path\": \"a.go\"}}\n```", []TextCall{read}, ""},
		{"list", `[{"name": "read", "arguments": {"path": "a.go"}}, {"name": "bash", "arguments": {"command": "go test ./..."}}]`, []TextCall{read, bash}, ""},
		{"blocks with text", "I will read then test.\n<tool_call>\n{\"name\": \"read\", \"arguments\": {\"path\": \"a.go\"}}\n</tool_call>\n<tool_call>```json\n{\"name\": \"bash\", \"arguments\": {\"command\": \"go test ./...\"}}\n```</tool_call>",
			[]TextCall{read, bash}, "I will read then test."},
		{"no arguments", `{"name": "read"}`, []TextCall{{Name: "read", Arguments: "{}"}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, rest, ok := ParseTextCalls(tc.content, knownTool)
			if !ok || !reflect.DeepEqual(got, tc.want) || rest != tc.rest {
				t.Fatalf("ParseTextCalls = %+v, %q, %v; want %+v, %q", got, rest, ok, tc.want, tc.rest)
			}
		})
	}
}

func TestParseTextCallsLeavesOtherTextAlone(t *testing.T) {
	for _, content := range []string{
		"Done.\nSTATUS: completed",
		`{"name": "deploy", "arguments": {}}`,                                  // unknown tool
		`[{"name": "read", "arguments": {}}, {"name": "rm", "arguments": {}}]`, // one unknown
		`{"subtasks": []}`,
		`{"name": "read", "arguments": {"path": "a.go"`,                         // cut off
		"<tool_call>{\"name\": \"read\", \"arguments\": 3}</tool_call>",         // arguments not an object
		"The config is:\n```json\n{\"name\": \"read\"}\n```\nSTATUS: completed", // a quote, not the whole answer
		"",
	} {
		if calls, rest, ok := ParseTextCalls(content, knownTool); ok || calls != nil || rest != content {
			t.Errorf("ParseTextCalls(%q) = %+v, %q, %v; want no calls", content, calls, rest, ok)
		}
	}
}
