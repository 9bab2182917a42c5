package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestLoadDefaults(t *testing.T) {
	isolate(t)
	state := os.Getenv("XDG_STATE_HOME")

	got, err := Load(LoadOptions{})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := Config{
		Temporal: TemporalConfig{Address: "", Namespace: "default", TaskQueue: "codeswarm"},
		Embedded: EmbeddedConfig{DBPath: filepath.Join(state, "codeswarm", "temporal.db"), IP: "127.0.0.1", Port: 7233, UIPort: 8233},
		LLM: LLMConfig{
			BaseURL: "https://api.openai.com/v1", APIKey: "", Model: "gpt-4.1-mini", PlannerModel: "gpt-4.1-mini",
			MaxConcurrent: 16, FairShare: true, RequestsPerSecond: 0, Timeout: 5 * time.Minute, ContextLimit: 256000, ContextTokens: 60000,
			Temperature: 0.7, MaxTokens: 8192, Reasoning: "auto", Prices: []string{},
		},
		Swarm: SwarmConfig{
			MaxSubagents: 100, MaxConcurrent: 4, MaxStepsPerSubagent: 100, MaxTotalSteps: 1500,
			SubagentTimeout: 10 * time.Minute, MaxRetries: 3, Strategy: "automatic",
		},
		Workspace: WorkspaceConfig{Root: filepath.Join(state, "codeswarm", "workspaces"), HostLostAfter: 90 * time.Second},
		Git:       GitConfig{AutoMerge: true, ResolveConflicts: true, BranchPrefix: "codeswarm"},
		Verify:    VerifyConfig{Command: "", Mode: "end"},
		Tools: ToolsConfig{
			Sandbox:      "on",
			MaxFileBytes: 8 << 20,
			Bash: BashConfig{
				Timeout:        2 * time.Minute,
				MaxTimeout:     10 * time.Minute,
				MaxOutputBytes: 30000,
				Network:        "off",
				EnvPassthrough: []string{},
				ReadOnlyPaths:  []string{},
				MemoryMaxBytes: 2 << 30,
				TmpMaxBytes:    1 << 30,
			},
			Share: ShareConfig{MaxValueBytes: 16384, MaxKeys: 256, MaxTotalBytes: 512 << 10},
		},
		Watch: WatchConfig{SlowCallAfter: 30 * time.Second},
		Cache: CacheConfig{Enabled: true, MaxEntries: 1000},
		Log:   LogConfig{Level: "info", Format: "console"},
		Codec: CodecConfig{Port: 8234},
	}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", *got, want)
	}
}

func TestLoadStateDirFallsBackToHome(t *testing.T) {
	isolate(t)
	t.Setenv("XDG_STATE_HOME", "relative/ignored") // the XDG spec says ignore relative values
	home := os.Getenv("HOME")

	got, err := Load(LoadOptions{})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if want := filepath.Join(home, ".local", "state", "codeswarm", "temporal.db"); got.Embedded.DBPath != want {
		t.Errorf("embedded.db_path = %q, want %q", got.Embedded.DBPath, want)
	}
	if want := filepath.Join(home, ".local", "state", "codeswarm", "workspaces"); got.Workspace.Root != want {
		t.Errorf("workspace.root = %q, want %q", got.Workspace.Root, want)
	}
}

// TestKeysMatchStruct keeps the key table and the Config struct in step:
// a field without a default would never see its env var.
func TestKeysMatchStruct(t *testing.T) {
	var leaves []string
	var walk func(reflect.Type, string)
	walk = func(typ reflect.Type, prefix string) {
		for f := range typ.Fields() {
			if f.Tag.Get("mapstructure") == "-" {
				continue // set by Load, not a key
			}
			key := prefix + f.Tag.Get("mapstructure")
			if f.Type.Kind() == reflect.Struct {
				walk(f.Type, key+".")
				continue
			}
			leaves = append(leaves, key)
		}
	}
	walk(reflect.TypeFor[Config](), "")

	got := Keys()
	if len(got) != len(leaves) {
		t.Fatalf("Keys() has %d keys, Config has %d fields: %v vs %v", len(got), len(leaves), got, leaves)
	}
	for _, leaf := range leaves {
		if !slices.Contains(got, leaf) {
			t.Errorf("field %q has no key spec", leaf)
		}
	}
	if !slices.IsSorted(got) {
		t.Errorf("Keys() not sorted: %v", got)
	}
}

func TestLoadPrecedence(t *testing.T) {
	const file = "swarm:\n  max_subagents: 10\n  max_concurrent: 2\n"
	tests := []struct {
		name    string
		env     string // CODESWARM_SWARM_MAX_SUBAGENTS, "" = unset
		flag    string // --max-subagents, "" = not passed
		want    int
		wantCon int // swarm.max_concurrent, only ever from the file
	}{
		{name: "file over default", want: 10, wantCon: 2},
		{name: "env over file", env: "20", want: 20, wantCon: 2},
		{name: "flag over env", env: "20", flag: "30", want: 30, wantCon: 2},
		{name: "flag over file", flag: "30", want: 30, wantCon: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wd := isolate(t)
			writeFile(t, wd, "codeswarm.yaml", file)
			t.Setenv("CODESWARM_SWARM_MAX_SUBAGENTS", tt.env)
			flags := pflag.NewFlagSet("run", pflag.ContinueOnError)
			flags.Int("max-subagents", 99, "")
			flags.Int("max-concurrent", 77, "") // never passed: its default must not win
			var args []string
			if tt.flag != "" {
				args = append(args, "--max-subagents="+tt.flag)
			}
			if err := flags.Parse(args); err != nil {
				t.Fatal(err)
			}

			got, err := Load(LoadOptions{Flags: flags, FlagKeys: map[string]string{
				"max-subagents":  "swarm.max_subagents",
				"max-concurrent": "swarm.max_concurrent",
			}})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got.Swarm.MaxSubagents != tt.want {
				t.Errorf("swarm.max_subagents = %d, want %d", got.Swarm.MaxSubagents, tt.want)
			}
			if got.Swarm.MaxConcurrent != tt.wantCon {
				t.Errorf("swarm.max_concurrent = %d, want %d", got.Swarm.MaxConcurrent, tt.wantCon)
			}
		})
	}
}

func TestLoadEnvForEveryKind(t *testing.T) {
	isolate(t)
	t.Setenv("CODESWARM_SWARM_MAX_CONCURRENT", "9")
	t.Setenv("CODESWARM_LLM_REQUESTS_PER_SECOND", "0.5")
	t.Setenv("CODESWARM_GIT_AUTO_MERGE", "false")
	t.Setenv("CODESWARM_TOOLS_BASH_MAX_OUTPUT_BYTES", "1234")
	t.Setenv("CODESWARM_LLM_PLANNER_MODEL", "big-model")

	got, err := Load(LoadOptions{})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got.Swarm.MaxConcurrent != 9 || got.LLM.RequestsPerSecond != 0.5 || got.Git.AutoMerge ||
		got.Tools.Bash.MaxOutputBytes != 1234 || got.LLM.PlannerModel != "big-model" {
		t.Errorf("env not applied: %+v", *got)
	}
}

func TestLoadEnvAliases(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		get  func(*Config) string
		want string
	}{
		{"TEMPORAL_ADDRESS", map[string]string{"TEMPORAL_ADDRESS": "t:1"},
			func(c *Config) string { return c.Temporal.Address }, "t:1"},
		{"CODESWARM_TEMPORAL_ADDRESS wins", map[string]string{"TEMPORAL_ADDRESS": "t:1", "CODESWARM_TEMPORAL_ADDRESS": "c:2"},
			func(c *Config) string { return c.Temporal.Address }, "c:2"},
		{"TEMPORAL_NAMESPACE", map[string]string{"TEMPORAL_NAMESPACE": "ns"},
			func(c *Config) string { return c.Temporal.Namespace }, "ns"},
		{"CODESWARM_TEMPORAL_NAMESPACE wins", map[string]string{"TEMPORAL_NAMESPACE": "ns", "CODESWARM_TEMPORAL_NAMESPACE": "mine"},
			func(c *Config) string { return c.Temporal.Namespace }, "mine"},
		{"OPENAI_API_KEY", map[string]string{"OPENAI_API_KEY": "sk-a"},
			func(c *Config) string { return c.LLM.APIKey }, "sk-a"},
		{"CODESWARM_LLM_API_KEY wins", map[string]string{"OPENAI_API_KEY": "sk-a", "CODESWARM_LLM_API_KEY": "sk-b"},
			func(c *Config) string { return c.LLM.APIKey }, "sk-b"},
		{"OPENAI_BASE_URL", map[string]string{"OPENAI_BASE_URL": "http://localhost:8080/v1"},
			func(c *Config) string { return c.LLM.BaseURL }, "http://localhost:8080/v1"},
		{"CODESWARM_LLM_BASE_URL wins", map[string]string{"OPENAI_BASE_URL": "http://a/v1", "CODESWARM_LLM_BASE_URL": "http://b/v1"},
			func(c *Config) string { return c.LLM.BaseURL }, "http://b/v1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolate(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			got, err := Load(LoadOptions{})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if g := tt.get(got); g != tt.want {
				t.Errorf("got %q, want %q", g, tt.want)
			}
		})
	}
}

func TestLoadAliasDoesNotBeatFile(t *testing.T) {
	wd := isolate(t)
	writeFile(t, wd, "codeswarm.yaml", "llm:\n  api_key: from-file\n")
	t.Setenv("OPENAI_API_KEY", "from-env")

	got, err := Load(LoadOptions{})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	// env > file holds for aliases too
	if got.LLM.APIKey != "from-env" {
		t.Errorf("llm.api_key = %q, want from-env", got.LLM.APIKey)
	}
}

func TestLoadDurations(t *testing.T) {
	wd := isolate(t)
	writeFile(t, wd, "codeswarm.yaml", "llm:\n  timeout: 90s\ntools:\n  bash:\n    timeout: 1m30s\n    max_timeout: 1h\n")
	t.Setenv("CODESWARM_SWARM_SUBAGENT_TIMEOUT", "2h45m")
	flags := pflag.NewFlagSet("run", pflag.ContinueOnError)
	flags.Duration("timeout", 0, "")
	if err := flags.Parse([]string{"--timeout=45s"}); err != nil {
		t.Fatal(err)
	}

	got, err := Load(LoadOptions{Flags: flags, FlagKeys: map[string]string{"timeout": "llm.timeout"}})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	checks := []struct {
		key       string
		got, want time.Duration
	}{
		{"llm.timeout", got.LLM.Timeout, 45 * time.Second},
		{"tools.bash.timeout", got.Tools.Bash.Timeout, 90 * time.Second},
		{"tools.bash.max_timeout", got.Tools.Bash.MaxTimeout, time.Hour},
		{"swarm.subagent_timeout", got.Swarm.SubagentTimeout, 2*time.Hour + 45*time.Minute},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %s, want %s", c.key, c.got, c.want)
		}
	}
}

func TestLoadBadValueNamesKey(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  map[string]string
		want []string // substrings of the error
	}{
		{"int from text", "swarm:\n  max_subagents: lots\n", nil,
			[]string{`swarm.max_subagents: "lots" is not a valid integer`}},
		{"fraction for int", "swarm:\n  max_retries: 1.5\n", nil,
			[]string{"swarm.max_retries: 1.5 is not a whole number"}},
		{"bool from text", "git:\n  auto_merge: maybe\n", nil,
			[]string{`git.auto_merge: "maybe" is not a valid boolean`}},
		{"duration without unit", "llm:\n  timeout: 90\n", nil,
			[]string{`llm.timeout: 90 needs a unit`}},
		{"duration garbage from env", "", map[string]string{"CODESWARM_TOOLS_BASH_TIMEOUT": "soon"},
			[]string{`tools.bash.timeout: "soon" is not a duration`}},
		{"float from text", "", map[string]string{"CODESWARM_LLM_REQUESTS_PER_SECOND": "fast"},
			[]string{`llm.requests_per_second: "fast" is not a valid number`}},
		{"two at once", "swarm:\n  max_subagents: x\n  max_concurrent: y\n", nil,
			[]string{"swarm.max_subagents", "swarm.max_concurrent"}},
		{"validation after decode", "", map[string]string{"CODESWARM_SWARM_STRATEGY": "foo"},
			[]string{`swarm.strategy: "foo" is not one of automatic, by_domain, by_data, by_stage, none`}},
		{"negative context budget", "", map[string]string{"CODESWARM_LLM_CONTEXT_TOKENS": "-1"},
			[]string{`llm.context_tokens: -1 must be at least 0`}},
		{"deployment name with a dot", "", map[string]string{"CODESWARM_WORKER_DEPLOYMENT": "codeswarm.v2"},
			[]string{`worker.deployment: "codeswarm.v2" must not contain "."`}},
		{"build ID without a deployment", "", map[string]string{"CODESWARM_WORKER_BUILD_ID": "b1"},
			[]string{`worker.build_id: "b1" needs worker.deployment`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wd := isolate(t)
			if tt.file != "" {
				writeFile(t, wd, "codeswarm.yaml", tt.file)
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			_, err := Load(LoadOptions{})
			if err == nil {
				t.Fatal("Load succeeded, want error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			var ke *KeyError
			if !errors.As(err, &ke) {
				t.Errorf("error %q is not a *KeyError", err)
			}
		})
	}
}

func TestLoadUnknownKeys(t *testing.T) {
	tests := []struct {
		name string
		file string
		want string
	}{
		{"typo", "swarm:\n  max_subagent: 5\n",
			`config file codeswarm.yaml: unknown key "swarm.max_subagent" (did you mean "swarm.max_subagents"?)`},
		{"no near key", "frobnicate: true\n", `config file codeswarm.yaml: unknown key "frobnicate"`},
		{"section given a value", "swarm: 5\n", `config file codeswarm.yaml: "swarm" is a section`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wd := isolate(t)
			writeFile(t, wd, "codeswarm.yaml", tt.file)
			_, err := Load(LoadOptions{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
			if tt.name == "no near key" && strings.Contains(err.Error(), "did you mean") {
				t.Errorf("error %q suggests a key that is not close", err)
			}
		})
	}
}

func TestLoadFileNullsKeepDefaults(t *testing.T) {
	wd := isolate(t)
	writeFile(t, wd, "codeswarm.yaml", "swarm:\n  # max_subagents: 3\ngit: {}\nllm:\n  model:\n  timeout: 1m\n")
	got, err := Load(LoadOptions{})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got.Swarm.MaxSubagents != 100 || got.LLM.Model != "gpt-4.1-mini" || got.LLM.Timeout != time.Minute {
		t.Errorf("got swarm %+v llm %+v, want defaults except llm.timeout 1m", got.Swarm, got.LLM)
	}
}

func TestLoadFileLookup(t *testing.T) {
	t.Run("explicit missing file is an error", func(t *testing.T) {
		wd := isolate(t)
		missing := filepath.Join(wd, "nope.yaml")
		_, err := Load(LoadOptions{File: missing})
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
			t.Fatalf("error = %v, want fs.ErrNotExist naming %s", err, missing)
		}
	})
	t.Run("explicit file with tilde", func(t *testing.T) {
		isolate(t)
		writeFile(t, os.Getenv("HOME"), "cs.yaml", "llm:\n  model: tilde\n")
		got, err := Load(LoadOptions{File: "~/cs.yaml"})
		if err != nil || got.LLM.Model != "tilde" {
			t.Fatalf("Load = %+v, %v; want model tilde", got, err)
		}
	})
	t.Run("explicit file beats working directory", func(t *testing.T) {
		wd := isolate(t)
		writeFile(t, wd, "codeswarm.yaml", "llm:\n  model: wd\n")
		explicit := writeFile(t, t.TempDir(), "other.yml", "llm:\n  model: explicit\n")
		got, err := Load(LoadOptions{File: explicit})
		if err != nil || got.LLM.Model != "explicit" {
			t.Fatalf("Load = %+v, %v; want model explicit", got, err)
		}
	})
	t.Run("xdg config file", func(t *testing.T) {
		isolate(t)
		writeFile(t, os.Getenv("XDG_CONFIG_HOME"), "codeswarm/codeswarm.yaml", "llm:\n  model: xdg\n")
		got, err := Load(LoadOptions{})
		if err != nil || got.LLM.Model != "xdg" {
			t.Fatalf("Load = %+v, %v; want model xdg", got, err)
		}
	})
	t.Run("working directory beats xdg", func(t *testing.T) {
		wd := isolate(t)
		writeFile(t, os.Getenv("XDG_CONFIG_HOME"), "codeswarm/codeswarm.yaml", "llm:\n  model: xdg\n")
		writeFile(t, wd, "codeswarm.yaml", "llm:\n  model: wd\n")
		got, err := Load(LoadOptions{})
		if err != nil || got.LLM.Model != "wd" {
			t.Fatalf("Load = %+v, %v; want model wd", got, err)
		}
	})
	t.Run("malformed yaml names the file", func(t *testing.T) {
		wd := isolate(t)
		writeFile(t, wd, "codeswarm.yaml", "llm: [unclosed\n")
		_, err := Load(LoadOptions{})
		if err == nil || !strings.Contains(err.Error(), "config file codeswarm.yaml") {
			t.Fatalf("error = %v, want it to name codeswarm.yaml", err)
		}
	})
}

func TestLoadFlagMistakes(t *testing.T) {
	tests := []struct {
		name     string
		flagKeys map[string]string
		want     string
	}{
		{"flag not defined", map[string]string{"missing": "llm.model"}, "flag --missing (for llm.model) is not defined"},
		{"key not known", map[string]string{"model": "llm.modle"}, `flag --model maps to unknown key "llm.modle"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolate(t)
			flags := pflag.NewFlagSet("run", pflag.ContinueOnError)
			flags.String("model", "", "")
			_, err := Load(LoadOptions{Flags: flags, FlagKeys: tt.flagKeys})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestLoadPlannerModelDefaultsToModel(t *testing.T) {
	isolate(t)
	t.Setenv("CODESWARM_LLM_MODEL", "m1")
	got, err := Load(LoadOptions{})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got.LLM.PlannerModel != "m1" {
		t.Errorf("llm.planner_model = %q, want m1", got.LLM.PlannerModel)
	}
}

func TestExpandHome(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	tests := []struct{ in, want string }{
		{"~", home},
		{"~/x/y", filepath.Join(home, "x", "y")},
		{"~user/x", "~user/x"},
		{"/abs/~/x", "/abs/~/x"},
		{"rel", "rel"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := ExpandHome(tt.in); got != tt.want {
			t.Errorf("ExpandHome(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func BenchmarkLoad(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "codeswarm.yaml")
	if err := os.WriteFile(path, []byte("swarm:\n  max_subagents: 10\nllm:\n  timeout: 90s\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Load(LoadOptions{File: path}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestLoadSandboxKeys(t *testing.T) {
	wd := isolate(t)
	writeFile(t, wd, "codeswarm.yaml", "tools:\n  sandbox: OFF\n  bash:\n    network: on\n")
	t.Setenv("CODESWARM_TOOLS_BASH_ENV_PASSTHROUGH", "GOFLAGS,CGO_ENABLED")
	got, err := Load(LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Tools.Sandbox != "off" || got.Tools.Bash.Network != "on" {
		t.Errorf("sandbox %q network %q, want off and on from the file", got.Tools.Sandbox, got.Tools.Bash.Network)
	}
	if !slices.Equal(got.Tools.Bash.EnvPassthrough, []string{"GOFLAGS", "CGO_ENABLED"}) {
		t.Errorf("env_passthrough = %q, want the two names of the env var", got.Tools.Bash.EnvPassthrough)
	}
	if got.File != filepath.Join(wd, "codeswarm.yaml") {
		t.Errorf("File = %q, want the file read", got.File)
	}
}
