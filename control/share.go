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
