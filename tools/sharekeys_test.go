package tools

import (
	"strings"
	"testing"
)

func TestCheckShareNewKey(t *testing.T) {
	if err := CheckShareNewKey(19, 20); err != nil {
		t.Errorf("19 of 20 keys: %v", err)
	}
	err := CheckShareNewKey(20, 20)
	if err == nil || !strings.Contains(err.Error(), "run has 20 keys (tools.share.max_keys); overwrite an existing key") || strings.Contains(err.Error(), "Published") {
		t.Errorf("20 of 20 keys: %v", err)
	}
	if CheckShareNewKey(DefaultShareMaxKeys-1, 0) != nil || CheckShareNewKey(DefaultShareMaxKeys, 0) == nil {
		t.Error("0 does not mean the default cap")
	}
}
