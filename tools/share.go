package tools

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// swarm_share actions.
const (
	ShareActionPublish     = "publish"
	ShareActionGet         = "get"
	ShareActionQueryTags   = "query_tags"
	ShareActionQueryPrefix = "query_prefix"
	ShareActionList        = "list"
)

func shareActions() []string {
	return []string{ShareActionPublish, ShareActionGet, ShareActionQueryTags, ShareActionQueryPrefix, ShareActionList}
}

// ShareArgs are the validated arguments of a swarm_share call.
type ShareArgs struct {
	Action string          `json:"action"`
	Key    string          `json:"key,omitempty"`
	Value  json.RawMessage `json:"value,omitempty"`
	Tags   []string        `json:"tags,omitempty"`
	Prefix string          `json:"prefix,omitempty"`
}

// ParseShareArgs decodes swarm_share arguments and checks the action and
// the fields it requires: publish needs key and value, get needs key,
// query_tags needs tags, query_prefix needs prefix. The error text is meant
// for the model.
func ParseShareArgs(arguments string) (ShareArgs, error) {
	var a ShareArgs
	if err := json.Unmarshal([]byte(strings.TrimSpace(arguments)), &a); err != nil {
		return ShareArgs{}, fmt.Errorf("invalid JSON arguments for swarm_share: %w", err)
	}
	var missing string
	switch a.Action {
	case ShareActionPublish:
		switch {
		case a.Key == "":
			missing = "key"
		case len(bytes.TrimSpace(a.Value)) == 0 || bytes.Equal(bytes.TrimSpace(a.Value), []byte("null")):
			missing = "value"
		}
	case ShareActionGet:
		if a.Key == "" {
			missing = "key"
		}
	case ShareActionQueryTags:
		if len(a.Tags) == 0 {
			missing = "tags"
		}
	case ShareActionQueryPrefix:
		if a.Prefix == "" {
			missing = "prefix"
		}
	case ShareActionList:
	default:
		return ShareArgs{}, fmt.Errorf("swarm_share: unknown action %q; use one of %s",
			a.Action, strings.Join(shareActions(), ", "))
	}
	if missing != "" {
		return ShareArgs{}, fmt.Errorf("swarm_share: action %q requires %q", a.Action, missing)
	}
	return a, nil
}
