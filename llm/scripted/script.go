package scripted

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// Script is what the server answers. See the package doc for the format.
type Script struct {
	Planner []Reply `json:"planner"`           // by turn; beyond the end → the last
	Agents  []Agent `json:"agents"`            // matched on the first user message
	Summary *Reply  `json:"summary,omitempty"` // default: a short fixed summary
	Default *Reply  `json:"default,omitempty"` // agent request matching no entry
	// RejectParams are request fields answered with a 400 "Unsupported
	// parameter", as OpenAI answers max_tokens for its reasoning models.
	RejectParams []string `json:"reject_params,omitempty"`
}

// Agent scripts the sub-agent whose first user message contains Match.
type Agent struct {
	Match string  `json:"match"`
	Turns []Reply `json:"turns"` // by turn; beyond the end → "Done.\nSTATUS: completed"
}

// Reply is one scripted answer, optionally preceded by faults.
type Reply struct {
	Content   string     `json:"content,omitempty"`
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
	// FinishReason overrides "tool_calls"/"stop", e.g. "length" for an
	// answer cut off by the token limit.
	FinishReason string `json:"finish_reason,omitempty"`
	// Faults are answered, in order, to the first len(Faults) requests for
	// this reply's (agent, turn); later requests get the reply itself.
	Faults []Fault  `json:"faults,omitempty"`
	Delay  Duration `json:"delay,omitempty"` // latency before answering
	// Usage to report; 0 means estimated from the request and reply sizes.
	PromptTokens     int `json:"prompt_tokens,omitempty"`
	CompletionTokens int `json:"completion_tokens,omitempty"`
	// CachedPromptTokens, when set, are reported as the prompt tokens the
	// prompt cache served (usage.prompt_tokens_details.cached_tokens).
	CachedPromptTokens int `json:"cached_prompt_tokens,omitempty"`
	// OmitUsage sends no "usage" object, as some gateways and mock servers
	// do.
	OmitUsage bool `json:"omit_usage,omitempty"`
}

// ToolCall is a scripted tool call. Arguments are sent verbatim, so they may
// be invalid JSON on purpose.
type ToolCall struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// Fault is a failure answered instead of a reply.
type Fault struct {
	Status        int      `json:"status,omitempty"`         // default 500, or 200 when only Body is set
	RetryAfter    string   `json:"retry_after,omitempty"`    // Retry-After header, verbatim
	RetryAfterMS  string   `json:"retry_after_ms,omitempty"` // retry-after-ms header, verbatim
	Body          string   `json:"body,omitempty"`           // raw body instead of an OpenAI error
	Hang          bool     `json:"hang,omitempty"`           // hold until the client goes away
	EmptyChoices  bool     `json:"empty_choices,omitempty"`  // 200 with "choices": []
	ContextLength bool     `json:"context_length,omitempty"` // 400, code context_length_exceeded
	Delay         Duration `json:"delay,omitempty"`          // latency before the fault
}

// Duration is a time.Duration written in JSON as a Go duration string
// ("250ms", "2s").
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration %s: want a string like \"250ms\"", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// LoadScript reads a JSON script from path. Unknown fields are an error, so
// a misspelt key does not silently change the script.
func LoadScript(path string) (Script, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Script{}, fmt.Errorf("read script: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var s Script
	if err := dec.Decode(&s); err != nil {
		return Script{}, fmt.Errorf("parse script %s: %w", path, err)
	}
	return s, nil
}
