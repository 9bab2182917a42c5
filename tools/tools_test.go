package tools

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	openai "github.com/sashabaranov/go-openai"
)

func TestRunDispatchErrors(t *testing.T) {
	root := newRoot(t, map[string]string{"f.txt": "x\n"})
	tests := []struct {
		name, tool, args string
		want             []string
	}{
		{"unknown tool", "cat", `{}`, []string{`unknown tool "cat"`, "read, write, edit, multiedit, glob, grep, bash, list, swarm_share"}},
		{"invalid JSON", ToolRead, `{"path": "f.txt"`, []string{"invalid JSON arguments for read", "unexpected end of JSON input", "path, offset, limit"}},
		{"not an object", ToolEdit, `["f.txt"]`, []string{"invalid JSON arguments for edit", "path, old_string, new_string, replace_all"}},
		{"null required", ToolRead, `{"path": null}`, []string{`missing required argument "path"`}},
		{"swarm_share refused", ToolSwarmShare, `{"action":"list"}`, []string{"orchestrator"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mustErr(t, Run(t.Context(), Options{Root: root}, tt.tool, tt.args), tt.want...)
		})
	}
}

func TestDefinitions(t *testing.T) {
	defs := Definitions()
	want := map[string][]string{
		ToolRead: {"path", "offset", "limit"}, ToolWrite: {"path", "content"},
		ToolEdit: {"path", "old_string", "new_string", "replace_all"}, ToolMultiEdit: {"path", "edits"},
		ToolGlob: {"pattern", "path"}, ToolGrep: {"pattern", "path", "include"},
		ToolBash: {"command", "timeout"}, ToolList: {"path"},
		ToolSwarmShare: {"action", "key", "value", "tags", "prefix"},
	}
	if len(defs) != len(want) {
		t.Fatalf("%d definitions, want %d", len(defs), len(want))
	}
	for _, d := range defs {
		raw, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("marshal %s: %v", d.Function.Name, err)
		}
		var decoded struct {
			Type     string `json:"type"`
			Function struct {
				Name        string `json:"name"`
				Description string `json:"description"`
				Parameters  struct {
					Type       string                     `json:"type"`
					Properties map[string]json.RawMessage `json:"properties"`
					Required   []string                   `json:"required"`
				} `json:"parameters"`
			} `json:"function"`
		}
		if err := json.Unmarshal(raw, &decoded); err != nil {
			t.Fatal(err)
		}
		fn := decoded.Function
		names, ok := want[fn.Name]
		if !ok || decoded.Type != "function" || fn.Parameters.Type != "object" || fn.Description == "" {
			t.Errorf("bad definition %s", raw)
			continue
		}
		for _, n := range names {
			if _, ok := fn.Parameters.Properties[n]; !ok {
				t.Errorf("%s lacks argument %q", fn.Name, n)
			}
		}
		if len(fn.Parameters.Properties) != len(names) {
			t.Errorf("%s has %d arguments, want %d", fn.Name, len(fn.Parameters.Properties), len(names))
		}
		for _, r := range fn.Parameters.Required {
			if !slices.Contains(names, r) {
				t.Errorf("%s requires unknown %q", fn.Name, r)
			}
		}
	}
	bash := defs[slices.IndexFunc(defs, func(d openai.Tool) bool { return d.Function.Name == ToolBash })]
	if !strings.Contains(bash.Function.Description, "exit code: N") {
		t.Errorf("bash description does not document the exit code line")
	}
}

func TestParseShareArgs(t *testing.T) {
	tests := []struct {
		args    string
		want    ShareArgs
		wantErr string
	}{
		{`{"action":"publish","key":"api/auth","value":{"a":1},"tags":["auth"]}`,
			ShareArgs{Action: "publish", Key: "api/auth", Value: json.RawMessage(`{"a":1}`), Tags: []string{"auth"}}, ""},
		{`{"action":"get","key":"k"}`, ShareArgs{Action: "get", Key: "k"}, ""},
		{`{"action":"query_tags","tags":["x","y"]}`, ShareArgs{Action: "query_tags", Tags: []string{"x", "y"}}, ""},
		{`{"action":"query_prefix","prefix":"api/"}`, ShareArgs{Action: "query_prefix", Prefix: "api/"}, ""},
		{`{"action":"list"}`, ShareArgs{Action: "list"}, ""},
		{`{"action":"publish","key":"k"}`, ShareArgs{}, `requires "value"`},
		{`{"action":"publish","key":"k","value":null}`, ShareArgs{}, `requires "value"`},
		{`{"action":"publish","value":1}`, ShareArgs{}, `requires "key"`},
		{`{"action":"publish","key":" \t","value":1}`, ShareArgs{}, `requires "key" (not blank)`},
		{`{"action":"get","key":"  "}`, ShareArgs{}, `requires "key"`},
		{`{"action":"publish","key":"k","value":"` + strings.Repeat("x", 62) + `"}`, ShareArgs{}, "the value is 64 bytes, over the limit of 63 (tools.share.max_value_bytes)"},
		{`{"action":"publish","key":"k","value":"` + strings.Repeat("x", 61) + `"}`,
			ShareArgs{Action: "publish", Key: "k", Value: json.RawMessage(`"` + strings.Repeat("x", 61) + `"`)}, ""},
		{`{"action":"get"}`, ShareArgs{}, `requires "key"`},
		{`{"action":"query_tags","tags":[]}`, ShareArgs{}, `requires "tags"`},
		{`{"action":"query_prefix"}`, ShareArgs{}, `requires "prefix"`},
		{`{"action":"delete"}`, ShareArgs{}, `unknown action "delete"; use one of publish, get, query_tags, query_prefix, list`},
		{`{}`, ShareArgs{}, `unknown action ""`},
		{`{"action":`, ShareArgs{}, "invalid JSON"},
	}
	for _, tt := range tests {
		got, err := ParseShareArgs(tt.args, 63)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: error %v, want %q", tt.args, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.args, err)
			continue
		}
		if got.Action != tt.want.Action || got.Key != tt.want.Key || got.Prefix != tt.want.Prefix ||
			!slices.Equal(got.Tags, tt.want.Tags) || !bytes.Equal(got.Value, tt.want.Value) {
			t.Errorf("%s: got %+v, want %+v", tt.args, got, tt.want)
		}
	}
	big := `{"action":"publish","key":"k","value":"` + strings.Repeat("x", DefaultShareMaxValueBytes) + `"}`
	if _, err := ParseShareArgs(big, 0); err == nil || !strings.Contains(err.Error(), "over the limit of 16384") {
		t.Errorf("a value over the default cap: error %v", err)
	}
}

func TestSanitizeEnv(t *testing.T) {
	in := []string{
		"PATH=/usr/bin", "HOME=/home/u", "GOPATH=/go", "OPENAI_API_KEY=sk-1", "CODESWARM_LLM_API_KEY=sk-2",
		"GITHUB_TOKEN=g", "aws_secret_access_key=s", "DB_PASSWORD=p", "MY_APIKEY=k", "COPY=sk-1",
		"HARMLESS=sk-other", "NOEQUALS", "=novalue",
	}
	got := SanitizeEnv(in, "sk-1", "")
	want := []string{"PATH=/usr/bin", "HOME=/home/u", "GOPATH=/go", "HARMLESS=sk-other"}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestHeadTail(t *testing.T) {
	tests := []struct {
		limit  int
		writes []string
		want   string
	}{
		{10, []string{"short"}, "short"},
		{10, []string{"0123456789"}, "0123456789"},
		{10, []string{"01234", "56789"}, "0123456789"},
		{10, []string{"0123456789abc"}, "01234\n... [3 bytes of output omitted] ...\n89abc"},
		{10, []string{"01", "234", "56", "789", "ab", "c", "defgh"}, "01234\n... [8 bytes of output omitted] ...\ndefgh"},
		{10, []string{"0123456", "789abcdefghijklmnop", "q"}, "01234\n... [17 bytes of output omitted] ...\nmnopq"},
	}
	for _, tt := range tests {
		h := newHeadTail(tt.limit)
		for _, w := range tt.writes {
			if n, err := h.Write([]byte(w)); n != len(w) || err != nil {
				t.Fatalf("write %q: %d %v", w, n, err)
			}
		}
		if got := h.String(); got != tt.want {
			t.Errorf("%v: got %q, want %q", tt.writes, got, tt.want)
		}
	}
}
