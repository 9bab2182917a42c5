package searchattr

import (
	"strings"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"

	"codeswarm/activities"
)

func TestMissingOf(t *testing.T) {
	want := activities.SearchAttributeTypes()
	have := map[string]enumspb.IndexedValueType{activities.SAStatus: enumspb.INDEXED_VALUE_TYPE_KEYWORD, "Other": enumspb.INDEXED_VALUE_TYPE_INT}
	missing, err := missingOf(have, want)
	if err != nil || len(missing) != len(want)-1 || missing[activities.SATask] != enumspb.INDEXED_VALUE_TYPE_TEXT {
		t.Fatalf("missing = %v, %v; want all but %s", missing, err, activities.SAStatus)
	}
	if _, ok := missing[activities.SAStatus]; ok {
		t.Error("a present attribute is reported missing")
	}
	have[activities.SATokens] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
	if _, err := missingOf(have, want); err == nil || !strings.Contains(err.Error(), activities.SATokens) {
		t.Errorf("a wrongly typed attribute: err = %v, want one naming %s", err, activities.SATokens)
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
