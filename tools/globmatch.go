package tools

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
)

// globPattern matches slash-separated relative paths with doublestar's
// syntax: `*`, `?`, `[...]` within a segment, `**` for zero or more whole
// segments, `{a,b}` alternatives (a `{x}` without a comma is a one-way
// alternative, not the literal text).
type globPattern struct {
	pattern string
}

// compileGlob checks a pattern given to glob or grep's include. It is
// relative to the search path: absolute patterns and '..' are refused with
// an error the model can act on.
func compileGlob(p string) (globPattern, error) {
	p = strings.TrimPrefix(strings.TrimSpace(p), "./")
	switch {
	case p == "":
		return globPattern{}, errors.New("pattern is empty")
	case strings.HasPrefix(p, "/"):
		return globPattern{}, fmt.Errorf("pattern %q is absolute; patterns are relative to the search path", p)
	case slices.Contains(strings.Split(p, "/"), ".."):
		return globPattern{}, fmt.Errorf("pattern %q contains '..'; search from a path inside the worktree instead", p)
	case !doublestar.ValidatePattern(p):
		return globPattern{}, fmt.Errorf("pattern %q: %w", p, doublestar.ErrBadPattern)
	}
	return globPattern{pattern: p}, nil
}

// match reports whether the slash path rel matches.
func (g globPattern) match(rel string) bool {
	return doublestar.MatchUnvalidated(g.pattern, rel)
}

// maxDepth bounds how deep a walk must go for the pattern, or is -1 when
// `**` makes it unbounded. Every alternative has at most as many slashes as
// the whole pattern, so this is an upper bound.
func (g globPattern) maxDepth() int {
	if strings.Contains(g.pattern, "**") {
		return -1
	}
	return strings.Count(g.pattern, "/") + 1
}
