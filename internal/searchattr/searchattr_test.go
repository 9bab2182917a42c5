package searchattr

import (
	"strings"
	"testing"

	"codeswarm/control"

	enumspb "go.temporal.io/api/enums/v1"
)

func TestMissingOf(t *testing.T) {
	want := control.SearchAttributeTypes()
	have := map[string]enumspb.IndexedValueType{control.SAStatus: enumspb.INDEXED_VALUE_TYPE_KEYWORD, "Other": enumspb.INDEXED_VALUE_TYPE_INT}
	missing, err := missingOf(have, want)
	if err != nil || len(missing) != len(want)-1 || missing[control.SATask] != enumspb.INDEXED_VALUE_TYPE_TEXT {
		t.Fatalf("missing = %v, %v; want all but %s", missing, err, control.SAStatus)
	}
	if _, ok := missing[control.SAStatus]; ok {
		t.Error("a present attribute is reported missing")
	}
	have[control.SATokens] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
	if _, err := missingOf(have, want); err == nil || !strings.Contains(err.Error(), control.SATokens) {
		t.Errorf("a wrongly typed attribute: err = %v, want one naming %s", err, control.SATokens)
	}
}

func TestHint(t *testing.T) {
	h := Hint("default")
	for _, want := range []string{"--namespace default", "--name CodeswarmCostUSD --type Double", "--name CodeswarmTask --type Text", "--name CodeswarmTokens --type Int"} {
		if !strings.Contains(h, want) {
			t.Errorf("hint %q lacks %q", h, want)
		}
	}
}
