package tools

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
)

const (
	grepMaxMatches   = 200
	grepMaxLineChars = 300
)

type grepArgs struct {
	Pattern string `json:"pattern"`
	Path    string `json:"path"`
	Include string `json:"include"`
}

// grepper accumulates matches up to the caps.
type grepper struct {
	re          *regexp.Regexp
	include     *globPattern
	includePath bool // include is matched against the root-relative path
	maxBytes    int
	out         strings.Builder
	matches     int
	full        bool
	br          *bufio.Reader // reused across files
	line        []byte        // reused across lines
}

func (t *toolbox) grep(arguments string) Result {
	var a grepArgs
	if res := decodeArgs(ToolGrep, arguments, &a, "pattern"); res != nil {
		return *res
	}
	re, err := regexp.Compile(a.Pattern)
	if err != nil {
		return errorf("grep: invalid regular expression %q: %v (Go RE2 syntax: no lookaround or backreferences)", a.Pattern, err)
	}
	g := &grepper{re: re, maxBytes: t.opts.MaxOutputBytes, br: bufio.NewReaderSize(nil, 64<<10)}
	if a.Include != "" {
		inc, err := compileGlob(a.Include)
		if err != nil {
			return errorf("grep: include: %v", err)
		}
		g.include, g.includePath = &inc, strings.Contains(a.Include, "/")
	}
	if a.Path == "" {
		a.Path = "."
	}
	base, err := t.box.resolve(a.Path)
	if err != nil {
		return errorf("grep: %v", err)
	}
	fi, err := os.Stat(base.abs)
	switch {
	case os.IsNotExist(err):
		return errorf("grep: %s does not exist; use list or glob to find the right path", a.Path)
	case err != nil:
		return errorf("grep %s: %v", a.Path, err)
	case fi.IsDir():
		t.grepTree(g, base)
	case specialKind(fi.Mode()) != "":
		return errorf("grep: %s %v", a.Path, &specialFileError{kind: specialKind(fi.Mode())})
	default:
		g.file(base.abs, base.rel)
	}
	return g.result(a.Pattern)
}

func (g *grepper) result(pattern string) Result {
	if g.matches == 0 {
		return Result{Output: fmt.Sprintf("No matches for %q", pattern)}
	}
	if g.full {
		fmt.Fprintf(&g.out, "... stopped after %d matches (output limit); narrow the pattern, path or include\n", g.matches)
	}
	return Result{Output: g.out.String()}
}

// grepTree searches base recursively, honouring .gitignore files found on
// the way from the root down.
func (t *toolbox) grepTree(g *grepper, base target) {
	ig := newIgnorer(t.box.real, base.rel)
	_ = filepath.WalkDir(base.abs, func(p string, d fs.DirEntry, err error) error {
		if g.full {
			return filepath.SkipAll
		}
		if err != nil || d.Name() == ".git" {
			if d != nil {
				return skipEntry(d)
			}
			return nil
		}
		rel := t.rootRel(p)
		parts := strings.Split(rel, "/")
		if d.IsDir() {
			if p != base.abs && ig.ignored(parts, true) {
				return filepath.SkipDir
			}
			ig.load(p, parts)
			return nil
		}
		if ig.ignored(parts, false) || !g.wants(rel) {
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return t.grepSymlink(g, rel)
		}
		if d.Type().IsRegular() {
			g.file(p, rel)
		}
		return nil
	})
}

// grepSymlink searches a symlinked file only when it stays in the worktree.
func (t *toolbox) grepSymlink(g *grepper, rel string) error {
	tg, err := t.box.resolve(rel)
	if err != nil {
		return nil
	}
	if fi, err := os.Stat(tg.abs); err == nil && fi.Mode().IsRegular() {
		g.file(tg.abs, rel)
	}
	return nil
}

// wants applies the include filter.
func (g *grepper) wants(rel string) bool {
	switch {
	case g.include == nil:
		return true
	case g.includePath:
		return g.include.match(rel)
	default:
		return g.include.match(rel[strings.LastIndexByte(rel, '/')+1:])
	}
}

// file searches one file, skipping binary ones.
func (g *grepper) file(abs, rel string) {
	f, err := openRegular(abs) // a FIFO in the tree is skipped, never waited on
	if err != nil {
		return
	}
	defer f.Close()
	g.br.Reset(f)
	if head, _ := g.br.Peek(binarySniffBytes); bytes.IndexByte(head, 0) >= 0 {
		return
	}
	for n := 1; !g.full; n++ {
		var err error
		if g.line, _, err = readLine(g.br, readMaxLineChars, g.line); err != nil {
			return // io.EOF or a read error: either way this file is done
		}
		if g.re.Match(g.line) {
			g.add(rel, n, g.line)
		}
	}
}

func (g *grepper) add(rel string, n int, line []byte) {
	text := string(line)
	if cut, ok := finishLine(line, grepMaxLineChars); ok {
		text = string(cut) + " [...]"
	}
	entry := fmt.Sprintf("%s:%d: %s\n", rel, n, text)
	if g.out.Len()+len(entry) > g.maxBytes {
		g.full = true
		return
	}
	g.out.WriteString(entry)
	g.matches++
	if g.matches >= grepMaxMatches {
		g.full = true
	}
}

// ignorer collects .gitignore patterns, each scoped to its directory.
type ignorer struct {
	patterns []gitignore.Pattern
}

// newIgnorer loads .git/info/exclude and the .gitignore files of the
// directories above base (base's own is loaded when the walk visits it).
func newIgnorer(root, baseRel string) *ignorer {
	ig := &ignorer{}
	ig.readFile(filepath.Join(root, ".git", "info", "exclude"), nil)
	if baseRel == "." {
		return ig
	}
	parts := strings.Split(baseRel, "/")
	ig.load(root, nil)
	for i := 1; i < len(parts); i++ {
		ig.load(filepath.Join(root, filepath.Join(parts[:i]...)), parts[:i])
	}
	return ig
}

// load reads dir/.gitignore; domain is dir's root-relative path components.
func (ig *ignorer) load(dir string, domain []string) {
	if len(domain) == 1 && domain[0] == "." {
		domain = nil
	}
	ig.readFile(filepath.Join(dir, ".gitignore"), domain)
}

func (ig *ignorer) readFile(path string, domain []string) {
	f, err := openRegular(path) // a .gitignore FIFO must not hang grep or glob
	if err != nil {
		return
	}
	data, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		ig.patterns = append(ig.patterns, gitignore.ParsePattern(line, domain))
	}
}

func (ig *ignorer) ignored(parts []string, isDir bool) bool {
	if len(parts) == 1 && parts[0] == "." {
		return false
	}
	return gitignore.NewMatcher(ig.patterns).Match(parts, isDir)
}
