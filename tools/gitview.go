package tools

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
)

// gitViews shows the repository's git directory to the sandbox without
// what it holds for the user rather than for the work: credentials in its
// config (tokens in remote URLs, http.extraheader, credential.*, included
// files) and the stash. Filtered copies live in one directory per Sandbox,
// named by their content, and are bound over the originals.
type gitViews struct {
	mu  sync.Mutex
	dir string // created on first use
}

func newGitViews() *gitViews { return &gitViews{} }

func (v *gitViews) close() {
	if v == nil {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.dir != "" {
		_ = os.RemoveAll(v.dir)
		v.dir = ""
	}
}

// args returns the bwrap arguments that bind the filtered views over the
// git dirs of worktree root; empty is an empty read-only file.
func (v *gitViews) args(root, empty string) ([]string, error) {
	dirs := gitDirs(root)
	if fi, err := os.Stat(filepath.Join(root, ".git")); err == nil && fi.IsDir() {
		dirs = append(dirs, filepath.Join(root, ".git"))
	}
	var args []string
	for _, d := range dirs {
		for _, name := range []string{"config", "config.worktree"} {
			p := filepath.Join(d, name)
			data, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			view, err := v.file(filterGitConfig(data))
			if err != nil {
				return nil, err
			}
			args = append(args, "--ro-bind", view, p)
		}
		if p := filepath.Join(d, "packed-refs"); exists(p) {
			data, err := os.ReadFile(p)
			if err == nil && bytes.Contains(data, []byte(" refs/stash\n")) {
				view, err := v.file(dropStash(data))
				if err != nil {
					return nil, err
				}
				args = append(args, "--ro-bind", view, p)
			}
		}
		for _, rel := range []string{"refs/stash", "logs/refs/stash"} {
			if p := filepath.Join(d, rel); exists(p) {
				args = append(args, "--ro-bind", empty, p)
			}
		}
	}
	return args, nil
}

// file stores data under its hash and returns the path.
func (v *gitViews) file(data []byte) (string, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.dir == "" {
		dir, err := os.MkdirTemp("", "codeswarm-sandbox-git-")
		if err != nil {
			return "", err
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			return "", err
		}
		v.dir = dir
	}
	sum := sha256.Sum256(data)
	p := filepath.Join(v.dir, hex.EncodeToString(sum[:12]))
	if exists(p) {
		return p, nil
	}
	tmp, err := os.CreateTemp(v.dir, ".new-")
	if err != nil {
		return "", err
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := os.Chmod(tmp.Name(), 0o444); werr == nil && cerr == nil && err == nil {
		if err := os.Rename(tmp.Name(), p); err == nil {
			return p, nil
		} else {
			werr = err
		}
	} else if werr == nil {
		werr = cerr
		if werr == nil {
			werr = err
		}
	}
	_ = os.Remove(tmp.Name())
	return "", werr
}

// userinfo matches the user[:password]@ of a URL.
var userinfo = regexp.MustCompile(`(?i)([a-z][a-z0-9+.-]*://)[^/\s@"]*@`)

// filterGitConfig drops from a git config file the sections that hold or
// fetch credentials (credential, include, includeIf), http extra headers
// and cookie files, keys with secret-looking names, and comments, and
// strips the userinfo of every URL (remote URLs, url.<base>.insteadOf).
func filterGitConfig(data []byte) []byte {
	var out bytes.Buffer
	section, drop := "", false
	for _, line := range logicalLines(string(data)) {
		t := strings.TrimSpace(line)
		switch {
		case t == "" || t[0] == '#' || t[0] == ';':
			continue
		case t[0] == '[':
			end := strings.IndexByte(t, ']')
			if end < 0 {
				drop = true // malformed: show nothing of it
				continue
			}
			header := t[1:end]
			name := strings.ToLower(strings.TrimSpace(header))
			if i := strings.IndexAny(name, " \t.\""); i >= 0 {
				name = name[:i]
			}
			section = name
			drop = section == "credential" || section == "include" || section == "includeif"
			if drop {
				continue
			}
			out.WriteString("[" + userinfo.ReplaceAllString(header, "$1") + "]\n")
			if rest := strings.TrimSpace(t[end+1:]); rest != "" && !dropKey(section, rest) {
				out.WriteString("\t" + userinfo.ReplaceAllString(rest, "$1") + "\n")
			}
		case drop || dropKey(section, t):
		default:
			out.WriteString("\t" + userinfo.ReplaceAllString(t, "$1") + "\n")
		}
	}
	return out.Bytes()
}

// dropKey reports whether the key=value line of section is left out.
func dropKey(section, line string) bool {
	key := strings.ToLower(strings.TrimSpace(strings.SplitN(line, "=", 2)[0]))
	if i := strings.IndexAny(key, " \t"); i >= 0 {
		key = key[:i]
	}
	if section == "http" && (key == "extraheader" || key == "cookiefile") {
		return true
	}
	return isSecretName(key) || strings.Contains(key, "token") || strings.Contains(key, "password")
}

// logicalLines joins the lines continued with a trailing backslash.
func logicalLines(s string) []string {
	var out []string
	var cur strings.Builder
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSuffix(l, "\r")
		if strings.HasSuffix(l, "\\") && !strings.HasSuffix(l, "\\\\") {
			cur.WriteString(strings.TrimSuffix(l, "\\"))
			continue
		}
		cur.WriteString(l)
		out = append(out, cur.String())
		cur.Reset()
	}
	return out
}

// dropStash removes refs/stash from a packed-refs file.
func dropStash(data []byte) []byte {
	var out bytes.Buffer
	lines := strings.SplitAfter(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		if strings.HasSuffix(strings.TrimRight(lines[i], "\n"), " refs/stash") {
			if i+1 < len(lines) && strings.HasPrefix(lines[i+1], "^") {
				i++ // its peeled line
			}
			continue
		}
		out.WriteString(lines[i])
	}
	return out.Bytes()
}
