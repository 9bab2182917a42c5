package activities

import (
	"strings"
	"testing"
)

func TestToolBrief(t *testing.T) {
	long := strings.Repeat("x", 200)
	cases := []struct{ name, args, want string }{
		{"read", `{"path":"internal/foo.go","offset":3}`, "read internal/foo.go"},
		{"write", `{"path":"a.go","content":"package secretcontent"}`, "write a.go"},
		{"edit", `{"path":"a.go","old_string":"old body","new_string":"new body"}`, "edit a.go"},
		{"multiedit", `{"path":"b.go","edits":[{"old_string":"o","new_string":"n"}]}`, "multiedit b.go"},
		{"list", `{}`, "list ."},
		{"glob", `{"pattern":"**/*.go","path":"cmd"}`, "glob **/*.go in cmd"},
		{"grep", `{"pattern":"Hello"}`, "grep Hello"},
		{"bash", `{"command":"go test ./...\necho second line"}`, "bash: go test ./..."},
		{"bash", `{"command":"` + long + `"}`, "bash: " + long[:briefCap-len("bash: ")] + "…"},
		{"swarm_share", `{"action":"publish","key":"api","value":"{\"big\":1}"}`, "swarm_share publish api"},
		{"read", `not json`, "read"},
		{"mystery", `{"path":"p"}`, "mystery"},
	}
	for _, c := range cases {
		if got := ToolBrief(c.name, c.args); got != c.want {
			t.Errorf("ToolBrief(%s, %.40s) = %q, want %q", c.name, c.args, got, c.want)
		}
	}
}
