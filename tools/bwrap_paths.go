package tools

import (
	"os"
	"path/filepath"
	"strings"
)

// gitDirs returns the git directories a linked worktree's .git file points
// at: its admin dir and the repository's common dir (refs, objects, config).
func gitDirs(root string) []string {
	data, err := os.ReadFile(filepath.Join(root, ".git"))
	if err != nil {
		return nil // no .git, or a directory inside root (bound with root)
	}
	admin, ok := strings.CutPrefix(strings.TrimSpace(string(data)), "gitdir:")
	if !ok {
		return nil
	}
	admin = strings.TrimSpace(admin)
	if !filepath.IsAbs(admin) {
		admin = filepath.Join(root, admin)
	}
	out := []string{filepath.Clean(admin)}
	if c, err := os.ReadFile(filepath.Join(admin, "commondir")); err == nil {
		common := strings.TrimSpace(string(c))
		if !filepath.IsAbs(common) {
			common = filepath.Join(admin, common)
		}
		out = append(out, filepath.Clean(common))
	}
	return slicesFilter(out, exists)
}

// findCaches locates the Go module and build caches and the npm cache.
func findCaches(home string) []cacheDir {
	var out []cacheDir
	add := func(env, value, bind string) {
		if value != "" && filepath.IsAbs(bind) && exists(bind) {
			out = append(out, cacheDir{env: env, value: value, bind: filepath.Clean(bind)})
		}
	}
	mod := os.Getenv("GOMODCACHE")
	if mod == "" {
		gopath := filepath.SplitList(os.Getenv("GOPATH"))
		if len(gopath) == 0 || gopath[0] == "" {
			gopath = []string{filepath.Join(home, "go")}
		}
		mod = filepath.Join(gopath[0], "pkg", "mod")
	}
	add("GOMODCACHE", mod, mod)
	build := os.Getenv("GOCACHE")
	if build == "" {
		if dir, err := os.UserCacheDir(); err == nil {
			build = filepath.Join(dir, "go-build")
		}
	}
	if build != "off" {
		add("GOCACHE", build, build)
	}
	npm := os.Getenv("npm_config_cache")
	if npm == "" && home != "" {
		npm = filepath.Join(home, ".npm")
	}
	// Only the content store: ~/.npm also keeps logs that may echo tokens.
	add("npm_config_cache", npm, filepath.Join(npm, "_cacache"))
	return out
}

func homeDir() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return home
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// underAny reports whether p is one of dirs or below one of them.
func underAny(p string, dirs []string) bool {
	for _, d := range dirs {
		if _, ok := within(d, p); ok {
			return true
		}
	}
	return false
}

func lookupEnv(environ []string, name string) (string, bool) {
	for i := len(environ) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(environ[i], "="); ok && k == name {
			return v, true
		}
	}
	return "", false
}

func envValue(environ []string, name string) string {
	v, _ := lookupEnv(environ, name)
	return v
}

func slicesFilter(in []string, keep func(string) bool) []string {
	out := in[:0]
	for _, s := range in {
		if keep(s) {
			out = append(out, s)
		}
	}
	return out
}
