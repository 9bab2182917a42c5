package activities

import (
	"encoding/json"
	"strings"
)

// briefCap bounds a tool call's one-line description.
const briefCap = 80

// ToolBrief describes a tool call in one line for people (the Web UI's
// activity summary, `watch --verbose`): the tool and what it points at, never
// what it writes. Arguments that do not parse give the bare tool name.
func ToolBrief(name, args string) string {
	var a struct {
		Path    string `json:"path"`
		Pattern string `json:"pattern"`
		Command string `json:"command"`
		Action  string `json:"action"`
		Key     string `json:"key"`
		Prefix  string `json:"prefix"`
	}
	if json.Unmarshal([]byte(args), &a) != nil {
		return name
	}
	var b string
	switch name {
	case "bash":
		b = "bash: " + FirstLine(a.Command, briefCap)
	case "read", "write", "edit", "multiedit", "list":
		b = strings.TrimSpace(name + " " + orDot(a.Path, name == "list"))
	case "glob", "grep":
		b = name + " " + a.Pattern
		if a.Path != "" {
			b += " in " + a.Path
		}
	case "swarm_share":
		b = strings.TrimSpace("swarm_share " + a.Action + " " + a.Key + a.Prefix)
	default:
		b = name
	}
	return FirstLine(b, briefCap)
}

func orDot(path string, dot bool) string {
	if path == "" && dot {
		return "."
	}
	return path
}
