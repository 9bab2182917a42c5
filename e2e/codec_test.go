package e2e

import (
	"encoding/base64"
	"strings"
	"testing"

	"codeswarm/llm/scripted"
)

// TestEncryptedPayloads: with codec.key set, what Temporal stores is
// ciphertext, and the CLI (which has the key) still reads the result.
func TestEncryptedPayloads(t *testing.T) {
	h := newHarness(t, scripted.DemoScript())
	t.Setenv("CODESWARM_CODEC_KEY", base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")))
	repo := t.TempDir()
	if err := scripted.WriteDemoRepo(repo); err != nil {
		t.Fatal(err)
	}
	code, res := h.runJSON("run", "--repo", repo, "--task", scripted.DemoTask, "--id", "codec-demo")
	if code != 0 || !res.Success {
		t.Fatalf("encrypted run failed (exit %d):\n%s\n%s", code, fmtResult(res), tail(h.logs.String(), 3000))
	}
	hists := exportHistories(t, h.client) // a client without the key sees raw payloads
	if len(hists) < 4 {
		t.Fatalf("want the parent and 3 children, got %d histories", len(hists))
	}
	// Distinctive plain text that would be in inputs and results.
	for _, plain := range []string{"Rename greet.Hello", "Renamed greet.Hello", "STATUS", repo} {
		b64 := base64.StdEncoding.EncodeToString([]byte(plain))
		for id, hist := range hists {
			if strings.Contains(hist, plain) || strings.Contains(hist, b64[:len(b64)-4]) {
				t.Errorf("history %s holds %q in clear", id, plain)
			}
		}
	}
	for id, hist := range hists {
		if !strings.Contains(hist, base64.StdEncoding.EncodeToString([]byte("binary/encrypted"))) {
			t.Errorf("history %s has no encrypted payloads", id)
		}
	}
}
