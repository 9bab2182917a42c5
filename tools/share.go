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

// DefaultShareMaxValueBytes caps a published value when no limit is given
// (tools.share.max_value_bytes): every value lands in the parent's history.
const DefaultShareMaxValueBytes = 16 << 10

// DefaultShareMaxKeys caps the distinct keys of a run's store when no
// limit is given (tools.share.max_keys).
const DefaultShareMaxKeys = 256

// DefaultShareMaxTotalBytes caps the keys, values and tags that one run's
// sub-agents publish, together, when no limit is given
// (tools.share.max_total_bytes): every entry is carried across each of the
// parent's continue-as-new hand-overs.
const DefaultShareMaxTotalBytes = 512 << 10

// CheckShareTotal refuses a publish after which the run's published keys,
// values and tags would take total bytes, over maxTotal (<= 0: the
// default). Overwriting a key counts its new value instead of its old one.
func CheckShareTotal(total, maxTotal int) error {
	if maxTotal <= 0 {
		maxTotal = DefaultShareMaxTotalBytes
	}
	if total > maxTotal {
		return fmt.Errorf("swarm_share: not published: the run's shared keys, values and tags would take %d bytes, over the limit of %d (tools.share.max_total_bytes); overwrite or shorten an existing value, or write the details to a file and share its path",
			total, maxTotal)
	}
	return nil
}

// CheckShareNewKey refuses a publish of a new key to a store that already
// holds keys keys, at or over maxKeys (<= 0: the default). Overwriting an
// existing key is always allowed; the caller knows whether the key is new.
func CheckShareNewKey(keys, maxKeys int) error {
	if maxKeys <= 0 {
		maxKeys = DefaultShareMaxKeys
	}
	if keys >= maxKeys {
		return fmt.Errorf("swarm_share: not published: the run has %d keys (tools.share.max_keys); overwrite an existing key instead of adding new ones", keys)
	}
	return nil
}

// ParseShareArgs decodes swarm_share arguments and checks them with
// CheckShareArgs. The error text is meant for the model.
func ParseShareArgs(arguments string, maxValueBytes int) (ShareArgs, error) {
	var a ShareArgs
	if err := json.Unmarshal([]byte(strings.TrimSpace(arguments)), &a); err != nil {
		return ShareArgs{}, fmt.Errorf("invalid JSON arguments for swarm_share: %w", err)
	}
	if err := CheckShareArgs(a, maxValueBytes); err != nil {
		return ShareArgs{}, err
	}
	return a, nil
}

// CheckShareArgs checks the action and the fields it requires: publish
// needs a non-blank key and a value of at most maxValueBytes (<= 0: the
// default), get needs a non-blank key, query_tags needs tags, query_prefix
// needs prefix. The tool and the parent's publish validator both use it, so
// what the tool accepts the parent accepts.
func CheckShareArgs(a ShareArgs, maxValueBytes int) error {
	if maxValueBytes <= 0 {
		maxValueBytes = DefaultShareMaxValueBytes
	}
	var missing string
	switch a.Action {
	case ShareActionPublish:
		switch {
		case strings.TrimSpace(a.Key) == "":
			missing = "key"
		case len(bytes.TrimSpace(a.Value)) == 0 || bytes.Equal(bytes.TrimSpace(a.Value), []byte("null")):
			missing = "value"
		case len(a.Value) > maxValueBytes:
			return fmt.Errorf("swarm_share: the value is %d bytes, over the limit of %d (tools.share.max_value_bytes); publish a summary, or write the details to a file and share its path",
				len(a.Value), maxValueBytes)
		}
	case ShareActionGet:
		if strings.TrimSpace(a.Key) == "" {
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
		return fmt.Errorf("swarm_share: unknown action %q; use one of %s",
			a.Action, strings.Join(shareActions(), ", "))
	}
	if missing != "" {
		return fmt.Errorf("swarm_share: action %q requires %q (not blank)", a.Action, missing)
	}
	return nil
}
