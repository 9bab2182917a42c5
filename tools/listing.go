package tools

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

const (
	globMaxResults = 500
	listMaxEntries = 1000
)

type globArgs struct {
	Pattern string `json:"pattern"`
	Path    string `json:"path"`
}

func (t *toolbox) glob(arguments string) Result {
	var a globArgs
	if res := decodeArgs(ToolGlob, arguments, &a, "pattern"); res != nil {
		return *res
	}
	g, err := compileGlob(a.Pattern)
	if err != nil {
		return errorf("glob: %v", err)
	}
	base, res, ok := t.searchDir(ToolGlob, a.Path)
	if !ok {
		return res
	}
	matches := t.walkGlob(base, g)
	if len(matches) == 0 {
		return Result{Output: fmt.Sprintf("No files match %q under %s", a.Pattern, base.rel)}
	}
	slices.Sort(matches)
	var b strings.Builder
	for _, m := range matches[:min(len(matches), globMaxResults)] {
		b.WriteString(m)
		b.WriteByte('\n')
	}
	if len(matches) > globMaxResults {
		fmt.Fprintf(&b, "... %d more files not shown (%d total); narrow the pattern or path\n",
			len(matches)-globMaxResults, len(matches))
	}
	return Result{Output: b.String()}
}

// walkGlob returns root-relative slash paths of the non-directories under
// base whose base-relative path matches g.
func (t *toolbox) walkGlob(base target, g globPattern) []string {
	maxDepth := g.maxDepth()
	var matches []string
	_ = filepath.WalkDir(base.abs, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == base.abs {
			return nil // unreadable entries are skipped, not fatal
		}
		if d.Name() == ".git" {
			return skipEntry(d)
		}
		relBase, _ := filepath.Rel(base.abs, p)
		relBase = filepath.ToSlash(relBase)
		if d.IsDir() {
			if maxDepth >= 0 && strings.Count(relBase, "/")+1 >= maxDepth {
				return filepath.SkipDir
			}
			return nil
		}
		if g.match(relBase) {
			matches = append(matches, t.rootRel(p))
		}
		return nil
	})
	return matches
}

// skipEntry skips a directory's subtree or just a file.
func skipEntry(d fs.DirEntry) error {
	if d.IsDir() {
		return filepath.SkipDir
	}
	return nil
}

// rootRel returns the slash path of abs relative to the real root.
func (t *toolbox) rootRel(abs string) string {
	r, _ := filepath.Rel(t.box.real, abs)
	return filepath.ToSlash(r)
}

// searchDir resolves an optional directory argument (default: the root).
func (t *toolbox) searchDir(tool, p string) (target, Result, bool) {
	if p == "" {
		p = "."
	}
	tg, err := t.box.resolve(p)
	if err != nil {
		return target{}, errorf("%s: %v", tool, err), false
	}
	fi, err := os.Stat(tg.abs)
	switch {
	case os.IsNotExist(err):
		return target{}, errorf("%s: directory %s does not exist; use list to see what is there", tool, p), false
	case err != nil:
		return target{}, errorf("%s %s: %v", tool, p, err), false
	case specialKind(fi.Mode()) != "":
		return target{}, errorf("%s: %s %v", tool, p, &specialFileError{kind: specialKind(fi.Mode())}), false
	case !fi.IsDir():
		return target{}, errorf("%s: %s is a file, not a directory; use read to see it", tool, p), false
	}
	return tg, Result{}, true
}

type listArgs struct {
	Path string `json:"path"`
}

func (t *toolbox) list(arguments string) Result {
	var a listArgs
	if res := decodeArgs(ToolList, arguments, &a); res != nil {
		return *res
	}
	dir, res, ok := t.searchDir(ToolList, a.Path)
	if !ok {
		return res
	}
	entries, err := os.ReadDir(dir.abs)
	if err != nil {
		return errorf("list %s: %v", dir.rel, err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s/\n", dir.rel)
	shown := 0
	for _, e := range entries {
		if e.Name() == ".git" {
			continue
		}
		if shown == listMaxEntries {
			fmt.Fprintf(&b, "... more entries not shown (%d in total); use glob to narrow down\n", len(entries))
			break
		}
		shown++
		b.WriteString(describeEntry(dir.abs, e))
		b.WriteByte('\n')
	}
	if shown == 0 {
		b.WriteString("(empty directory)\n")
	}
	return Result{Output: b.String()}
}

// describeEntry renders one list line: dirs end with /, files show a size,
// symlinks show their target.
func describeEntry(dir string, e fs.DirEntry) string {
	switch {
	case e.IsDir():
		return e.Name() + "/"
	case e.Type()&fs.ModeSymlink != 0:
		dest, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			return e.Name() + " -> ?"
		}
		return e.Name() + " -> " + dest
	}
	fi, err := e.Info()
	if err != nil {
		return e.Name()
	}
	return fmt.Sprintf("%s  (%d bytes)", e.Name(), fi.Size())
}
