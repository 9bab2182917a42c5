package control

import (
	"encoding/json"
	"fmt"

	"codeswarm/tools"
)

// SharedResult is one entry of the swarm_share store.
type SharedResult struct {
	Key       string   `json:"key"`
	Value     string   `json:"value"` // raw JSON text
	Tags      []string `json:"tags"`
	Publisher string   `json:"publisher"`
}

// ShareRequest is the argument of the share query and the publish update.
type ShareRequest struct {
	Action    string   `json:"action"`
	Key       string   `json:"key,omitempty"`
	Value     string   `json:"value,omitempty"`
	Tags      []string `json:"tags,omitempty"`
	Prefix    string   `json:"prefix,omitempty"`
	Publisher string   `json:"publisher,omitempty"`
	// MaxBytes bounds a read's answer (0: DefaultShareReadBytes): the
	// entries that fit, in store order, and always the first match.
	MaxBytes int `json:"max_bytes,omitempty"`
}

// DefaultShareReadBytes bounds a read that names no MaxBytes, well under
// the RPC limits a query's answer crosses.
const DefaultShareReadBytes = 1 << 20

// ShareAnswer is what the share query returns: the matching entries that
// fit the request's MaxBytes and how many more matched.
type ShareAnswer struct {
	Results []SharedResult `json:"results"`
	// More counts the matching entries left out by MaxBytes.
	More int `json:"more,omitempty"`
}

// Size is about the bytes r takes in an answer: its strings and their
// JSON framing.
func (r SharedResult) Size() int {
	n := len(r.Key) + len(r.Value) + len(r.Publisher) + 48
	for _, t := range r.Tags {
		n += len(t) + 3
	}
	return n
}

// ValidatePublish checks a publish request exactly as the swarm_share tool
// checks its arguments, so the parent never rejects what the tool let through.
func (r ShareRequest) ValidatePublish(maxValueBytes int) error {
	if r.Action != tools.ShareActionPublish {
		return fmt.Errorf("swarm_share publish update carries action %q", r.Action)
	}
	return tools.CheckShareArgs(tools.ShareArgs{
		Action: r.Action,
		Key:    r.Key,
		Value:  json.RawMessage(r.Value),
		Tags:   r.Tags,
	}, maxValueBytes)
}
