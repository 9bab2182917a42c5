package workflows

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestFairnessKeyFitsTheServerLimit(t *testing.T) {
	short := "swarm-fix-tests-1a2b3c"
	if got := fairnessKey(short); got != short {
		t.Errorf("fairnessKey(%q) = %q, want it as is", short, got)
	}
	long1 := strings.Repeat("x", 70) + "-one"
	long2 := strings.Repeat("x", 70) + "-two"
	k1, k2 := fairnessKey(long1), fairnessKey(long2)
	if len(k1) > maxFairnessKey || len(k2) > maxFairnessKey || k1 == k2 {
		t.Errorf("long IDs gave %q (%d) and %q (%d): want distinct keys of at most %d bytes", k1, len(k1), k2, len(k2), maxFairnessKey)
	}
	if k := fairnessKey(strings.Repeat("é", 40)); len(k) > maxFairnessKey || !utf8.ValidString(k) {
		t.Errorf("key of a multi-byte ID %q: %d bytes, valid UTF-8 %v", k, len(k), utf8.ValidString(k))
	}
}
