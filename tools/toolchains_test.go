package tools

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// realHome is the home directory of the user running the tests, read before
// newHost points HOME at a fake one.
var realHome, _ = os.UserHomeDir()

// needToolchain skips a test whose toolchain is not installed here, unless
// CODESWARM_TOOLCHAINS_REQUIRED=1 (then it fails).
func needToolchain(t *testing.T, what string, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if !exists(p) {
			if os.Getenv("CODESWARM_TOOLCHAINS_REQUIRED") == "1" {
				t.Fatalf("%s not installed (%s missing) and CODESWARM_TOOLCHAINS_REQUIRED=1", what, p)
			}
			t.Skipf("%s not installed here: %s is missing", what, p)
		}
	}
}

// inBoxLong is inBox with a longer timeout, for builds.
func inBoxLong(t *testing.T, h host, sb *Sandbox, env []string, command string) Result {
	t.Helper()
	return Run(t.Context(), Options{Root: h.worktree, Sandbox: sb, Env: env, BashTimeout: 5 * time.Minute},
		ToolBash, jsonArgs(t, map[string]any{"command": command}))
}

func passed(res Result) bool { return strings.HasSuffix(res.Output, "exit code: 0") && !res.IsError }

// goModule writes a module of a few packages with tests under dir.
func goModule(t *testing.T, dir string) {
	t.Helper()
	writeTestFile(t, filepath.Join(dir, "go.mod"), "module example.com/m\n\ngo 1.21\n")
	for _, p := range []string{"alpha", "beta", "gamma"} {
		writeTestFile(t, filepath.Join(dir, p, p+".go"), "package "+p+`

import (
	"sort"
	"strings"
)

// Join sorts and joins.
func Join(in []string) string {
	s := append([]string(nil), in...)
	sort.Strings(s)
	return strings.Join(s, ",")
}
`)
		writeTestFile(t, filepath.Join(dir, p, p+"_test.go"), "package "+p+`

import "testing"

func TestJoin(t *testing.T) {
	if got := Join([]string{"b", "a"}); got != "a,b" {
		t.Fatal(got)
	}
}
`)
	}
	writeTestFile(t, filepath.Join(dir, "cmd", "m", "main.go"), "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.com/m/alpha\"\n)\n\nfunc main() { fmt.Println(alpha.Join([]string{\"ok\"})) }\n")
}

// ageFiles sets every file's times a day back: Go 1.26 indexes a package
// directory in GOCACHE once its files are more than a few seconds old.
func ageFiles(t *testing.T, dir string) {
	t.Helper()
	old := time.Now().Add(-24 * time.Hour)
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, old, old)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// goHost is a host whose worktree holds a day-old Go module, with the real
// Go caches of the user running the tests, warmed for the module's imports.
func goHost(t *testing.T) (host, []string) {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		needToolchain(t, "go", "/nonexistent/go")
	}
	caches := map[string]string{}
	for _, name := range []string{"GOCACHE", "GOMODCACHE"} {
		out, err := exec.Command("go", "env", name).Output()
		if err != nil {
			t.Fatal(err)
		}
		caches[name] = strings.TrimSpace(string(out))
	}
	h := newHost(t)
	for name, dir := range caches {
		t.Setenv(name, dir)
	}
	goModule(t, h.worktree)
	// Warm the worker's cache while the files are new (no index written),
	// so the sandbox run is not a cold build of the standard library.
	warm := exec.Command("go", "vet", "./...")
	warm.Dir = h.worktree
	if out, err := warm.CombinedOutput(); err != nil {
		t.Fatalf("warm the cache: %v %s", err, out)
	}
	ageFiles(t, h.worktree)
	return h, append(testEnv(), "GOTOOLCHAIN=local")
}

// TestSandboxGoOnOldFiles: go vet and go test of a module whose files are a
// day old pass in the sandbox, twice, with the worker's cache read-only
// (the sandbox runs as the worker's user).
func TestSandboxGoOnOldFiles(t *testing.T) {
	h, env := goHost(t)
	sb := h.sandbox(t, SandboxConfig{WorkspaceRoot: h.wsRoot})
	for i := range 2 {
		res := inBoxLong(t, h, sb, env, "go vet ./... && go test ./... && echo GOCACHE=$GOCACHE GODEBUG=$GODEBUG GOPROXY=$GOPROXY")
		if !passed(res) {
			t.Fatalf("run %d: go vet && go test in the sandbox: %s", i+1, res.Output)
		}
		if !strings.Contains(res.Output, "goindex=0") || !strings.Contains(res.Output, "GOPROXY=off") {
			t.Errorf("run %d: environment: %s", i+1, res.Output)
		}
	}
	if exists(filepath.Join(h.wsRoot, "run-1", ".state", "go-build")) {
		t.Errorf("a run cache was made although the sandbox runs as the worker's user")
	}
}

// TestSandboxReadmeVerifyExamples runs the README's verify.command examples
// as written on the day-old module.
func TestSandboxReadmeVerifyExamples(t *testing.T) {
	h, env := goHost(t)
	sb := h.sandbox(t, SandboxConfig{WorkspaceRoot: h.wsRoot})
	for _, cmd := range []string{
		"go build ./... && go test ./...",
		"go vet ./... && go test ./...",
		"go test -race ./...",
	} {
		if strings.Contains(cmd, "-race") {
			if _, err := exec.LookPath("gcc"); err != nil {
				continue // -race needs cgo
			}
		}
		if res := inBoxLong(t, h, sb, env, cmd); !passed(res) {
			t.Errorf("%s: %s", cmd, res.Output)
		}
	}
}

// TestSandboxPyenvPython: a pyenv interpreter under the hidden home runs
// through its shim; a venv made in the worktree runs unittest; pytest runs
// when the interpreter has it.
func TestSandboxPyenvPython(t *testing.T) {
	pyenv := filepath.Join(realHome, ".pyenv")
	needToolchain(t, "pyenv", filepath.Join(pyenv, "shims", "python3"), filepath.Join(pyenv, "version"))
	h := newHost(t)
	t.Setenv("HOME", realHome) // the real home is the hidden one
	writeTestFile(t, filepath.Join(h.worktree, "test_calc.py"), "import unittest\n\n\nclass T(unittest.TestCase):\n    def test_add(self):\n        self.assertEqual(1 + 1, 2)\n\n\ndef test_plain():\n    assert 2 * 2 == 4\n")
	sb := h.sandbox(t, SandboxConfig{WorkspaceRoot: h.wsRoot})
	env := append(testEnv(), "PATH="+filepath.Join(pyenv, "shims")+":/usr/bin:/bin")
	res := inBoxLong(t, h, sb, env, "python3 -c 'import sys; print(sys.prefix)' && ls "+filepath.Join(realHome, ".ssh")+" 2>&1 | wc -l")
	if !passed(res) || !strings.Contains(res.Output, filepath.Join(pyenv, "versions")) {
		t.Fatalf("python3 through the pyenv shim: %s", res.Output)
	}
	res = inBoxLong(t, h, sb, env, "python3 -m venv .venv && .venv/bin/python -m unittest -v test_calc 2>&1")
	if !passed(res) || !strings.Contains(res.Output, "test_add") || !strings.Contains(res.Output, "OK") {
		t.Fatalf("venv + unittest: %s", res.Output)
	}
	if res := inBoxLong(t, h, sb, env, "python3 -c 'import pytest'"); !passed(res) {
		t.Log("pytest is not installed in the pyenv interpreter: pytest not run (unittest ran)")
		return
	}
	if res := inBoxLong(t, h, sb, env, "python3 -m pytest -q -p no:cacheprovider"); !passed(res) {
		t.Errorf("pytest: %s", res.Output)
	}
}

// TestSandboxPyenvStylePytest runs `python3 -m pytest -q` through a
// pyenv-style layout under the hidden home, built here so that it runs
// wherever Python and pytest are installed (CI installs python3-pytest):
// a shim that picks $PYENV_ROOT/versions/$(cat $PYENV_ROOT/version), and a
// version that is a venv of the system interpreter with its packages.
func TestSandboxPyenvStylePytest(t *testing.T) {
	const system = "/usr/bin/python3" // not a python3 in PATH: that may be a real pyenv's
	if exec.Command(system, "-c", "import pytest, venv, ensurepip").Run() != nil {
		if os.Getenv("CODESWARM_CI") == "1" {
			t.Fatalf("%s cannot import pytest and venv, and .ci/run installs them", system)
		}
		needToolchain(t, system+" with pytest and venv (Debian: python3-pytest python3-venv)", "/nonexistent/python3-pytest")
	}
	h := newHost(t)
	t.Setenv("HOME", h.home)
	t.Setenv("PYENV_ROOT", "") // found under home, as pyenv's default
	pyenv := filepath.Join(h.home, ".pyenv")
	if out, err := exec.Command(system, "-m", "venv", "--without-pip", "--system-site-packages", filepath.Join(pyenv, "versions", "3-system")).CombinedOutput(); err != nil {
		t.Fatalf("venv for the pyenv-style version: %v\n%s", err, out)
	}
	writeTestFile(t, filepath.Join(pyenv, "version"), "3-system\n")
	shim := filepath.Join(pyenv, "shims", "python3")
	writeTestFile(t, shim, "#!/bin/sh\nset -e\nexec \"$PYENV_ROOT/versions/$(cat \"$PYENV_ROOT/version\")/bin/python3\" \"$@\"\n")
	if err := os.Chmod(shim, 0o755); err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(h.worktree, "test_calc.py"), "def test_add():\n    assert 1 + 1 == 2\n\n\ndef test_mul():\n    assert 2 * 3 == 6\n")
	old := time.Now().Add(-48 * time.Hour)
	for _, f := range []string{"test_calc.py"} {
		if err := os.Chtimes(filepath.Join(h.worktree, f), old, old); err != nil {
			t.Fatal(err)
		}
	}
	sb := h.sandbox(t, SandboxConfig{WorkspaceRoot: h.wsRoot})
	env := append(testEnv(), "PATH="+filepath.Join(pyenv, "shims")+":/usr/bin:/bin")
	res := inBoxLong(t, h, sb, env, "python3 -c 'import sys; print(sys.prefix)' && python3 -m pytest -q -p no:cacheprovider 2>&1; ls "+filepath.Join(h.home, ".ssh")+" 2>&1 | head -1")
	if !strings.Contains(res.Output, filepath.Join(pyenv, "versions", "3-system")) {
		t.Errorf("python3 did not run through the pyenv-style shim: %s", res.Output)
	}
	if !strings.Contains(res.Output, "2 passed") {
		t.Errorf("python3 -m pytest -q: %s", res.Output)
	}
	if strings.Contains(res.Output, "id_ed25519") {
		t.Errorf("the rest of home is visible: %s", res.Output)
	}
}

// TestSandboxRustupCargoOffline builds and runs a tiny crate offline with
// the rustup toolchain under the hidden home.
func TestSandboxRustupCargoOffline(t *testing.T) {
	needToolchain(t, "rustup/cargo", filepath.Join(realHome, ".rustup", "settings.toml"), filepath.Join(realHome, ".cargo", "bin", "cargo"))
	h := newHost(t)
	t.Setenv("HOME", realHome)
	writeTestFile(t, filepath.Join(h.worktree, "tiny", "Cargo.toml"), "[package]\nname = \"tiny\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n")
	writeTestFile(t, filepath.Join(h.worktree, "tiny", "src", "main.rs"), "fn main() { println!(\"tiny rust ok\"); }\n\n#[test]\nfn adds() { assert_eq!(1 + 1, 2); }\n")
	sb := h.sandbox(t, SandboxConfig{WorkspaceRoot: h.wsRoot})
	env := append(testEnv(), "PATH="+filepath.Join(realHome, ".cargo", "bin")+":/usr/bin:/bin")
	res := inBoxLong(t, h, sb, env, "cd tiny && cargo build --offline -q && ./target/debug/tiny && cargo test --offline -q 2>&1")
	if !passed(res) || !strings.Contains(res.Output, "tiny rust ok") {
		t.Fatalf("cargo in the sandbox: %s", res.Output)
	}
}

// TestSandboxReadOnlyPaths: a tools.bash.read_only_paths entry under the
// hidden home is visible and read-only; the rest of home stays hidden; a
// missing entry and one holding the home are skipped and named by Describe.
func TestSandboxReadOnlyPaths(t *testing.T) {
	h := newHost(t)
	tool := filepath.Join(h.home, "opt", "tool")
	writeTestFile(t, filepath.Join(tool, "bin", "hello"), "#!/bin/sh\necho hello from tool\n")
	if err := os.Chmod(filepath.Join(tool, "bin", "hello"), 0o755); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(h.home, "nope")
	sb := h.sandbox(t, SandboxConfig{ReadOnlyPaths: []string{tool, missing, h.home, "/"}})
	res := inBox(t, h, sb, nil, tool+"/bin/hello; touch "+tool+"/x 2>&1; ls "+h.home+"/.ssh 2>&1; ls -A "+h.home+"; ls "+h.home+"/opt")
	if !strings.Contains(res.Output, "hello from tool") {
		t.Errorf("read_only_paths entry not usable: %s", res.Output)
	}
	if !strings.Contains(res.Output, "Read-only file system") {
		t.Errorf("read_only_paths entry writable: %s", res.Output)
	}
	if strings.Contains(res.Output, "id_ed25519") || strings.Contains(res.Output, ".git-credentials") || !strings.Contains(res.Output, "No such file") {
		t.Errorf("the rest of home is visible: %s", res.Output)
	}
	if exists(filepath.Join(tool, "x")) {
		t.Errorf("wrote into the read-only path")
	}
	d := sb.Describe()
	for _, want := range []string{"read_only_paths " + tool, missing + " (missing)", h.home + " (holds hidden state", "/ (holds hidden state"} {
		if !strings.Contains(d, want) {
			t.Errorf("Describe lacks %q: %s", want, d)
		}
	}
}

// TestDetectToolchains finds pyenv, nvm, rustup and cargo homes by their
// default place under home and by their variables, and nothing else.
func TestDetectToolchains(t *testing.T) {
	home := t.TempDir()
	for _, d := range []string{".pyenv/versions/3.12.0/bin", ".nvm/versions/node/v20.1.0/bin", ".ssh", ".config"} {
		if err := os.MkdirAll(filepath.Join(home, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	rustup := filepath.Join(t.TempDir(), "rustup")
	if err := os.MkdirAll(rustup, 0o755); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"RUSTUP_HOME": rustup, "PATH": "/nonexistent"}
	got := map[string]toolchain{}
	for _, tc := range detectToolchains(home, func(k string) string { return env[k] }) {
		got[tc.name] = tc
	}
	want := map[string]toolchain{
		"pyenv":  {name: "pyenv", dir: filepath.Join(home, ".pyenv"), env: "PYENV_ROOT"},
		"nvm":    {name: "nvm", dir: filepath.Join(home, ".nvm"), env: "NVM_DIR"},
		"rustup": {name: "rustup", dir: rustup, env: "RUSTUP_HOME"},
	}
	if len(got) != len(want) {
		t.Errorf("found %v, want %v", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %+v, want %+v", k, got[k], w)
		}
	}
}

// TestSandboxNvmNode: node installed by nvm under the hidden home runs in
// the sandbox, with NVM_DIR set, and nvm's own files are visible.
func TestSandboxNvmNode(t *testing.T) {
	h := newHost(t)
	nvm := filepath.Join(h.home, ".nvm")
	bin := filepath.Join(nvm, "versions", "node", "v20.1.0", "bin")
	// A stand-in node that needs a file of its install beside the binary.
	writeTestFile(t, filepath.Join(bin, "..", "lib", "node_modules", "npm", "package.json"), "{\"version\":\"10.0.0\"}\n")
	writeTestFile(t, filepath.Join(bin, "node"), "#!/bin/sh\necho node v20.1.0 npm $(cat \"$NVM_DIR/versions/node/v20.1.0/lib/node_modules/npm/package.json\")\n")
	writeTestFile(t, filepath.Join(nvm, "nvm.sh"), "# nvm\n")
	if err := os.Chmod(filepath.Join(bin, "node"), 0o755); err != nil {
		t.Fatal(err)
	}
	sb := h.sandbox(t, SandboxConfig{})
	env := append(testEnv(), "PATH="+bin+":/usr/bin:/bin")
	res := inBox(t, h, sb, env, "node && test -f \"$NVM_DIR/nvm.sh\" && ls "+h.home+"/.ssh 2>&1")
	if !strings.Contains(res.Output, "node v20.1.0 npm {\"version\":\"10.0.0\"}") || !strings.Contains(res.Output, "No such file") {
		t.Errorf("nvm's node in the sandbox: %s", res.Output)
	}
}
