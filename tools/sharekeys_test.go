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

func TestCheckShareTotal(t *testing.T) {
	if err := CheckShareTotal(300, 300); err != nil {
		t.Errorf("300 of 300 bytes: %v", err)
	}
	err := CheckShareTotal(301, 300)
	if err == nil || !strings.Contains(err.Error(), "would take 301 bytes, over the limit of 300 (tools.share.max_total_bytes)") {
		t.Errorf("301 of 300 bytes: %v", err)
	}
	if CheckShareTotal(DefaultShareMaxTotalBytes, 0) != nil || CheckShareTotal(DefaultShareMaxTotalBytes+1, 0) == nil {
		t.Error("0 does not mean the default cap")
	}
}
