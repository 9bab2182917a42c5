package tools

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// errorf builds an error Result for the model.
func errorf(format string, args ...any) Result {
	return Result{Output: fmt.Sprintf(format, args...), IsError: true}
}

// decodeArgs unmarshals the model's JSON arguments into dst and checks that
// every required key is present. Unknown keys are tolerated (models add
// stray fields), but they are named when a required key is missing because
// that usually means the model misspelled it.
func decodeArgs(tool, arguments string, dst any, required ...string) *Result {
	arguments = strings.TrimSpace(arguments)
	if arguments == "" {
		arguments = "{}" // some models send nothing for a call without arguments
	}
	raw := map[string]json.RawMessage{}
	if err := json.Unmarshal([]byte(arguments), &raw); err != nil {
		res := errorf("invalid JSON arguments for %s: %v; send one JSON object with the keys %s",
			tool, err, strings.Join(argNames(tool), ", "))
		return &res
	}
	for _, key := range required {
		if v, ok := raw[key]; !ok || bytes.Equal(v, []byte("null")) {
			res := errorf("%s: missing required argument %q%s", tool, key, unknownKeysHint(tool, raw))
			return &res
		}
	}
	if err := json.Unmarshal([]byte(arguments), dst); err != nil {
		res := errorf("invalid arguments for %s: %v; valid keys are %s",
			tool, err, strings.Join(argNames(tool), ", "))
		return &res
	}
	return nil
}

// unknownKeysHint names keys the tool does not know, with the valid ones.
func unknownKeysHint(tool string, raw map[string]json.RawMessage) string {
	valid := argNames(tool)
	var unknown []string
	for k := range raw {
		if !slices.Contains(valid, k) {
			unknown = append(unknown, strconv.Quote(k))
		}
	}
	if len(unknown) == 0 {
		return ""
	}
	slices.Sort(unknown)
	return fmt.Sprintf(" (got unknown %s; valid keys are %s)",
		strings.Join(unknown, ", "), strings.Join(valid, ", "))
}

// argNames returns the argument names of a tool, from its definition.
func argNames(tool string) []string {
	for _, d := range definitionSpecs() {
		if d.name == tool {
			names := make([]string, 0, len(d.params))
			for _, p := range d.params {
				names = append(names, p.name)
			}
			return names
		}
	}
	return nil
}

// flexInt accepts a JSON number or a numeric string: models send both.
type flexInt struct {
	set bool
	v   int
}

// UnmarshalJSON implements json.Unmarshaler.
func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "null" || s == "" {
		return nil
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("want an integer, got %s", b)
	}
	f.set, f.v = true, int(n)
	return nil
}

// flexFloat accepts a JSON number or a numeric string.
type flexFloat struct {
	set bool
	v   float64
}

// UnmarshalJSON implements json.Unmarshaler.
func (f *flexFloat) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "null" || s == "" {
		return nil
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("want a number, got %s", b)
	}
	f.set, f.v = true, n
	return nil
}

// flexBool accepts a JSON boolean or the strings "true"/"false".
type flexBool bool

// UnmarshalJSON implements json.Unmarshaler.
func (f *flexBool) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "null" || s == "" {
		return nil
	}
	v, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("want true or false, got %s", b)
	}
	*f = flexBool(v)
	return nil
}
