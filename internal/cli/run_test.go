package cli

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"codeswarm/config"
)

// isolateConfig keeps the machine's CODESWARM_* variables and config files
// out of the test.
func isolateConfig(t *testing.T) {
	t.Helper()
	for _, key := range config.Keys() {
		t.Setenv(config.EnvName(key), "")
	}
	t.Setenv("OPENAI_BASE_URL", "")
	t.Setenv("OPENAI_API_KEY", "")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	t.Chdir(t.TempDir())
}

func TestRunModelFlags(t *testing.T) {
	tests := []struct {
		name                 string
		file                 string
		args                 []string
		wantModel, wantPlann string
	}{
		{"defaults", "", nil, "gpt-4.1-mini", "gpt-4.1-mini"},
		{"model drives the planner too", "", []string{"--model", "qwen3-coder"}, "qwen3-coder", "qwen3-coder"},
		{"both", "", []string{"--model", "qwen3-coder", "--planner-model", "o3"}, "qwen3-coder", "o3"},
		{"flags beat the file", "llm:\n  model: from-file\n  planner_model: planner-file\n", []string{"--model", "m"}, "m", "planner-file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			isolateConfig(t)
			g := &globalOpts{}
			if tc.file != "" {
				g.configFile = filepath.Join(t.TempDir(), "codeswarm.yaml")
				if err := os.WriteFile(g.configFile, []byte(tc.file), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cmd := newRunCmd(g, IO{Out: io.Discard, Err: io.Discard})
			if err := cmd.ParseFlags(tc.args); err != nil {
				t.Fatalf("parse %v: %v", tc.args, err)
			}
			cfg, _, err := loadConfig(g, cmd, runFlagKeys)
			if err != nil {
				t.Fatalf("loadConfig: %v", err)
			}
			in := swarmInput(cfg, "/repo", "task", &runOpts{})
			if in.Model != tc.wantModel || in.PlannerModel != tc.wantPlann {
				t.Fatalf("model %q planner %q, want %q %q", in.Model, in.PlannerModel, tc.wantModel, tc.wantPlann)
			}
		})
	}
}
