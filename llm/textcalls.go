package llm

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
)

// TextCall is a tool call a model wrote into its content instead of
// tool_calls, as several open models served by vLLM or Ollama do.
type TextCall struct {
	Name      string
	Arguments string // a JSON object, as tool_calls carry it
}

var (
	toolCallBlock = regexp.MustCompile(`(?s)<tool_call>(.*?)</tool_call>`)
	fence         = regexp.MustCompile("(?s)^```[a-zA-Z]*\\s*\n?(.*?)\\s*```$")
)

// ParseTextCalls recognises tool calls written as text: the whole content
// being a JSON object {"name": …, "arguments": {…}} (also "tool"/"function"
// for the name and "parameters"/"args"/"input" for the arguments), a JSON
// list of them, or one or more <tool_call>{…}</tool_call> blocks, each
// optionally in a ```json fence. Every call must name a tool for which known
// is true; otherwise, or when nothing parses, ok is false and the content is
// left as text. rest is the text outside <tool_call> blocks.
func ParseTextCalls(content string, known func(string) bool) (calls []TextCall, rest string, ok bool) {
	if blocks := toolCallBlock.FindAllStringSubmatch(content, -1); len(blocks) > 0 {
		for _, b := range blocks {
			cs, ok := parseCallJSON(unfence(b[1]), known)
			if !ok {
				return nil, content, false
			}
			calls = append(calls, cs...)
		}
		return calls, strings.TrimSpace(toolCallBlock.ReplaceAllString(content, "")), true
	}
	calls, ok = parseCallJSON(unfence(content), known)
	if !ok {
		return nil, content, false
	}
	return calls, "", true
}

// unfence strips surrounding white space and a ```json fence.
func unfence(s string) string {
	s = strings.TrimSpace(s)
	if m := fence.FindStringSubmatch(s); m != nil {
		return strings.TrimSpace(m[1])
	}
	return s
}

// parseCallJSON reads one call object or a list of them.
func parseCallJSON(s string, known func(string) bool) ([]TextCall, bool) {
	var raw []json.RawMessage
	switch {
	case strings.HasPrefix(s, "["):
		if json.Unmarshal([]byte(s), &raw) != nil || len(raw) == 0 {
			return nil, false
		}
	case strings.HasPrefix(s, "{"):
		raw = []json.RawMessage{json.RawMessage(s)}
	default:
		return nil, false
	}
	calls := make([]TextCall, 0, len(raw))
	for _, r := range raw {
		c, ok := parseCallObject(r, known)
		if !ok {
			return nil, false
		}
		calls = append(calls, c)
	}
	return calls, true
}

// callObject holds the spellings seen in the wild.
type callObject struct {
	Name       string          `json:"name"`
	Tool       string          `json:"tool"`
	Function   json.RawMessage `json:"function"`
	Arguments  json.RawMessage `json:"arguments"`
	Parameters json.RawMessage `json:"parameters"`
	Args       json.RawMessage `json:"args"`
	Input      json.RawMessage `json:"input"`
}

func parseCallObject(r json.RawMessage, known func(string) bool) (TextCall, bool) {
	var o callObject
	if json.Unmarshal(r, &o) != nil {
		return TextCall{}, false
	}
	if len(o.Function) > 0 && o.Function[0] == '{' {
		// {"type": "function", "function": {"name": …, "arguments": …}}
		return parseCallObject(o.Function, known)
	}
	name := firstNonEmpty(o.Name, o.Tool, unquote(o.Function))
	if name == "" || !known(name) {
		return TextCall{}, false
	}
	args, ok := argumentsJSON(firstRaw(o.Arguments, o.Parameters, o.Args, o.Input))
	if !ok {
		return TextCall{}, false
	}
	return TextCall{Name: name, Arguments: args}, true
}

// argumentsJSON accepts the arguments as an object or as a string holding
// one (as tool_calls carry them); missing arguments are {}.
func argumentsJSON(r json.RawMessage) (string, bool) {
	r = bytes.TrimSpace(r)
	if len(r) == 0 || string(r) == "null" {
		return "{}", true
	}
	if r[0] == '"' {
		var s string
		if json.Unmarshal(r, &s) != nil {
			return "", false
		}
		r = json.RawMessage(strings.TrimSpace(s))
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(r, &obj) != nil {
		return "", false
	}
	var buf bytes.Buffer
	if json.Compact(&buf, r) != nil {
		return "", false
	}
	return buf.String(), true
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func firstRaw(rs ...json.RawMessage) json.RawMessage {
	for _, r := range rs {
		if len(r) > 0 {
			return r
		}
	}
	return nil
}

func unquote(r json.RawMessage) string {
	var s string
	if json.Unmarshal(r, &s) != nil {
		return ""
	}
	return s
}
