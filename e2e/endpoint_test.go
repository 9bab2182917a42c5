package e2e

import (
	"strings"
	"testing"
	"time"

	"codeswarm/llm/scripted"
)

// endpointFailsFast runs the demo task against a model endpoint no call can
// succeed with and checks that the run fails within limit, exit 1, with
// want (one plain sentence) as the reason.
func endpointFailsFast(t *testing.T, h *harness, want string, limit time.Duration) {
	t.Helper()
	began := time.Now()
	repo := faultRepo(t)
	code, res := h.runJSON("run", "--repo", repo, "--task", scripted.DemoTask)
	took := time.Since(began)
	if code != 1 || res.Success {
		t.Fatalf("exit %d success=%v, want exit 1 and a failed run: %s", code, res.Success, fmtResult(res))
	}
	if took > limit {
		t.Errorf("the run took %s to fail, want under %s", took, limit)
	}
	if !strings.Contains(res.Error, want) {
		t.Errorf("result error %q, want it to contain %q", res.Error, want)
	}
	if strings.Contains(res.Error, testAPIKey) {
		t.Errorf("result error holds the API key: %q", res.Error)
	}
	// Nothing was merged: the run leaves no empty integration branch.
	if left := git(t, repo, "branch", "--list", "codeswarm/*"); res.Branch != "" || left != "" {
		t.Errorf("result branch %q, branches left %q; want none", res.Branch, left)
	}
}

// TestModelEndpointRefusedFailsFast: a base URL where nothing listens fails
// the run after a few quick attempts, not an hour of retries.
func TestModelEndpointRefusedFailsFast(t *testing.T) {
	h := newHarness(t, scripted.DemoScript())
	t.Setenv("CODESWARM_LLM_BASE_URL", "http://127.0.0.1:1/v1")
	endpointFailsFast(t, h, "the model endpoint http://127.0.0.1:1/v1 refused the connection: is llm.base_url right?", 45*time.Second)
}

// TestModelKeyRejectedFailsFast: a 401 fails the run at once.
func TestModelKeyRejectedFailsFast(t *testing.T) {
	h := newHarness(t, scripted.DemoScript())
	t.Setenv("CODESWARM_LLM_API_KEY", "sk-wrong-key-000000000000")
	endpointFailsFast(t, h, "rejected the API key (401): check llm.api_key / OPENAI_API_KEY", 30*time.Second)
	if n := len(h.model.Requests()); n != 1 {
		t.Errorf("model requests: %d, want 1 (a rejected key is not retried)", n)
	}
}
