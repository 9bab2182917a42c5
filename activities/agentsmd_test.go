package activities

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"codeswarm/internal/secret"
)

// TestStartSubtaskAgentsMDNotFollowed commits AGENTS.md as a symlink to the
// worker's environment, its secret files and an endless device: the
// sub-agent's system prompt must hold none of them, and the subtask must
// start all the same (a refusal is a warning, not a failure).
func TestStartSubtaskAgentsMDNotFollowed(t *testing.T) {
	const key = "sk-agentsmd-Zq9x7Kp0wLmN3vR8"
	t.Setenv("CODESWARM_TEST_SECRET", key)
	outside := filepath.Join(t.TempDir(), "worker-config.yaml")
	writeFile(t, outside, "llm:\n  api_key: "+key+"\n")
	tests := []struct{ name, target string }{
		{"environ", "/proc/self/environ"},
		{"device", "/dev/zero"},
		{"outside file", outside},
		{"inside file", "b.txt"}, // a symlink is refused even when it stays inside
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newGitFixture(t)
			f.a.Secrets = secret.New(key)
			_ = os.Remove(filepath.Join(f.repo.dir, "AGENTS.md"))
			if err := os.Symlink(tt.target, filepath.Join(f.repo.dir, "AGENTS.md")); err != nil {
				t.Fatal(err)
			}
			f.repo.git("add", "-A")
			f.repo.git("commit", "-q", "-m", "AGENTS.md is a symlink")
			f.prepare(t)
			start := time.Now()
			in := startInput(f, "01-x", "x")
			mustRun[StartSubtaskResult](t, f.env, f.a.StartSubtask, in)
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("StartSubtask took %v", d)
			}
			sys := load(t, f.a.Transcripts, in.Ref)[0].Message.Content
			if strings.Contains(sys, "PROJECT INSTRUCTIONS") || strings.Contains(sys, key) || strings.Contains(sys, "CODESWARM_TEST_SECRET") {
				t.Errorf("system prompt took the symlink's target in:\n%s", sys)
			}
		})
	}
}

// TestStartSubtaskAgentsMDCappedAndScrubbed: a huge AGENTS.md is read only
// up to its cap (the prompt says so), and a secret in it is scrubbed.
func TestStartSubtaskAgentsMDCappedAndScrubbed(t *testing.T) {
	const key = "sk-agentsmd-Zq9x7Kp0wLmN3vR8"
	f := newGitFixture(t)
	f.a.Secrets = secret.New(key)
	f.repo.write("AGENTS.md", "Use key "+key+" nowhere.\n"+strings.Repeat("x", 1<<20))
	f.repo.git("add", "-A")
	f.repo.git("commit", "-q", "-m", "big AGENTS.md")
	f.prepare(t)
	in := startInput(f, "01-x", "x")
	mustRun[StartSubtaskResult](t, f.env, f.a.StartSubtask, in)
	sys := load(t, f.a.Transcripts, in.Ref)[0].Message.Content
	if strings.Contains(sys, key) || !strings.Contains(sys, "Use key "+secret.Redacted) {
		t.Errorf("secret in AGENTS.md not scrubbed:\n%.300s", sys)
	}
	if !strings.Contains(sys, "AGENTS.md is larger than 64 KiB") {
		t.Error("system prompt does not say AGENTS.md was truncated")
	}
	if len(sys) > agentsMDCap+8000 {
		t.Errorf("system prompt is %d bytes", len(sys))
	}
}
