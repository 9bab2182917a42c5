// Package deploy holds the cluster deployment files (dynamic config, schema
// and namespace scripts) and the test that keeps docker-compose.yml, the
// Dockerfile and the README's description of them in agreement. No Docker
// engine runs where the tests run, so the file is checked, not started.
package deploy

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Build       any               `yaml:"build"`
	DependsOn   map[string]any    `yaml:"depends_on"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	Command     string            `yaml:"command"`
	SecurityOpt []string          `yaml:"security_opt"`
}

func repoFile(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func loadCompose(t *testing.T) (composeFile, map[string]string) {
	t.Helper()
	text := repoFile(t, "docker-compose.yml")
	var c composeFile
	if err := yaml.Unmarshal([]byte(text), &c); err != nil {
		t.Fatalf("docker-compose.yml does not parse: %v", err)
	}
	// Each service's own YAML text, to find ${VAR} interpolations.
	var raw struct {
		Services map[string]yaml.Node `yaml:"services"`
	}
	if err := yaml.Unmarshal([]byte(text), &raw); err != nil {
		t.Fatal(err)
	}
	texts := map[string]string{}
	for name, node := range raw.Services {
		out, err := yaml.Marshal(&node)
		if err != nil {
			t.Fatal(err)
		}
		texts[name] = string(out)
	}
	return c, texts
}

// readmeTable returns the rows (cells without backticks) of the table that
// follows marker in README.md.
func readmeTable(t *testing.T, marker string) [][]string {
	t.Helper()
	readme := repoFile(t, "README.md")
	i := strings.Index(readme, marker)
	if i < 0 {
		t.Fatalf("README.md has no %q table", marker)
	}
	var rows [][]string
	sc := bufio.NewScanner(strings.NewReader(readme[i:]))
	sc.Scan() // the marker line
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for k := range cells {
			cells[k] = strings.TrimSpace(cells[k])
		}
		rows = append(rows, cells)
	}
	if len(rows) < 3 {
		t.Fatalf("the %q table in README.md is empty", marker)
	}
	return rows[2:] // header and separator
}

var backticked = regexp.MustCompile("`([^`]+)`")

func ticks(cell string) []string {
	var out []string
	for _, m := range backticked.FindAllStringSubmatch(cell, -1) {
		out = append(out, m[1])
	}
	return out
}

// TestComposeMatchesREADME: every service, image, port and variable the
// README's cluster section names is in docker-compose.yml, and the README
// names every service the file defines.
func TestComposeMatchesREADME(t *testing.T) {
	c, texts := loadCompose(t)
	documented := map[string]bool{}
	for _, row := range readmeTable(t, "<!-- compose-services:") {
		name := ticks(row[0])[0]
		documented[name] = true
		svc, ok := c.Services[name]
		if !ok {
			t.Errorf("README names service %q; docker-compose.yml has no such service", name)
			continue
		}
		for _, img := range ticks(row[1]) {
			if img == "Dockerfile" {
				if svc.Build == nil {
					t.Errorf("service %s: README says it is built from the Dockerfile; it has no build", name)
				}
				continue
			}
			if !strings.HasPrefix(svc.Image, strings.SplitN(img, ":", 2)[0]) {
				t.Errorf("service %s: README says image %s, compose has %q", name, img, svc.Image)
			}
		}
		for _, port := range ticks(row[2]) {
			if !slices.Contains(svc.Ports, port) {
				t.Errorf("service %s: README says port %s, compose publishes %v", name, port, svc.Ports)
			}
		}
	}
	for name := range c.Services {
		if !documented[name] {
			t.Errorf("docker-compose.yml defines service %q that the README's table does not describe", name)
		}
	}
	for _, row := range readmeTable(t, "<!-- compose-env:") {
		v, svc := ticks(row[0])[0], ticks(row[1])[0]
		s, ok := c.Services[svc]
		if !ok {
			t.Errorf("README puts variable %s on service %q, which does not exist", v, svc)
			continue
		}
		if _, set := s.Environment[v]; !set && !strings.Contains(texts[svc], "${"+v) {
			t.Errorf("README says service %s uses %s; it neither sets nor interpolates it", svc, v)
		}
	}
}

// TestComposeIsConsistent checks what `docker compose config` would: every
// dependency and named volume exists, every bind-mounted path and script is
// in the repository, and no service uses the retired auto-setup image.
func TestComposeIsConsistent(t *testing.T) {
	c, _ := loadCompose(t)
	for name, svc := range c.Services {
		if strings.Contains(svc.Image, "auto-setup") {
			t.Errorf("service %s uses %s; Temporal no longer recommends auto-setup", name, svc.Image)
		}
		for dep := range svc.DependsOn {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("service %s depends on unknown service %q", name, dep)
			}
		}
		for _, v := range svc.Volumes {
			src := strings.SplitN(v, ":", 2)[0]
			switch {
			case strings.HasPrefix(src, "${"): // a docker-host path the user sets
			case strings.HasPrefix(src, "./"):
				if _, err := os.Stat(filepath.Join("..", src)); err != nil {
					t.Errorf("service %s mounts %s, which is not in the repository", name, src)
				}
			default:
				if _, ok := c.Volumes[src]; !ok {
					t.Errorf("service %s uses volume %q, which is not declared", name, src)
				}
			}
		}
		if script, ok := strings.CutPrefix(svc.Command, "/scripts/"); ok {
			info, err := os.Stat(filepath.Join("scripts", script))
			if err != nil || info.Mode()&0o111 == 0 {
				t.Errorf("service %s runs /scripts/%s, which is missing or not executable (%v)", name, script, err)
			}
		}
	}
	if dc := c.Services["temporal"].Environment["DYNAMIC_CONFIG_FILE_PATH"]; dc != "" {
		data, err := os.ReadFile(filepath.Join("dynamicconfig", filepath.Base(dc)))
		var parsed map[string]any
		if err == nil {
			err = yaml.Unmarshal(data, &parsed)
		}
		if err != nil || len(parsed) == 0 {
			t.Errorf("dynamic config %s: missing or invalid (%v)", dc, err)
		}
	}
	if !slices.Contains(c.Services["worker"].SecurityOpt, "seccomp=unconfined") {
		t.Error("worker: bubblewrap needs namespaces, which Docker's default seccomp profile forbids")
	}
}

// TestComposeServerVersionMatchesEmbedded keeps the cluster on the server
// version the tests run against (the embedded server in go.mod).
func TestComposeServerVersionMatchesEmbedded(t *testing.T) {
	m := regexp.MustCompile(`go\.temporal\.io/server v(\S+)`).FindStringSubmatch(repoFile(t, "go.mod"))
	if m == nil {
		t.Fatal("go.mod does not require go.temporal.io/server")
	}
	c, _ := loadCompose(t)
	for _, name := range []string{"temporal", "temporal-admin-tools", "temporal-create-namespace"} {
		if img := c.Services[name].Image; !strings.HasSuffix(img, ":-"+m[1]+"}") {
			t.Errorf("service %s image %q: default tag should be the embedded server's %s", name, img, m[1])
		}
	}
}

// TestDockerfileHasWhatWorkersNeed: git for worktrees, bubblewrap for the
// sandbox, and a Go toolchain for the sub-agents' builds.
func TestDockerfileHasWhatWorkersNeed(t *testing.T) {
	df := repoFile(t, "Dockerfile")
	stages := strings.Split(df, "\nFROM ")
	final := stages[len(stages)-1]
	if !strings.HasPrefix(final, "golang:") {
		t.Errorf("the worker image should be based on golang (Go toolchain for sub-agents); final stage is FROM %s", strings.SplitN(final, "\n", 2)[0])
	}
	for _, pkg := range []string{"git", "bubblewrap"} {
		if !regexp.MustCompile(`apt-get install[^\n]*\b` + pkg + `\b`).MatchString(final) {
			t.Errorf("the worker image does not install %s", pkg)
		}
	}
}
