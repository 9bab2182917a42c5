package config

import (
	"os"
	"path/filepath"
	"testing"
)

// isolate makes Load see only what the test sets: fresh HOME and XDG dirs,
// an empty working directory and no config variables from the real
// environment. It returns the working directory.
func isolate(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, env := range []string{"HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME"} {
		dir := filepath.Join(root, env)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Setenv(env, dir)
	}
	for _, s := range keySpecs("") {
		for _, name := range s.envNames() {
			t.Setenv(name, "") // viper ignores empty variables
		}
	}
	wd := filepath.Join(root, "wd")
	if err := os.MkdirAll(wd, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(wd)
	return wd
}

// writeFile writes content to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
