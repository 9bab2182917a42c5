package tools

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

const maxBraceExpansions = 64

// globPattern matches slash-separated relative paths. `*`, `?` and `[...]`
// work per segment as in path.Match, `**` matches zero or more whole
// segments, and `{a,b}` alternatives are expanded first.
type globPattern struct {
	alts [][]string
}

func compileGlob(p string) (globPattern, error) {
	p = strings.TrimPrefix(strings.TrimSpace(p), "./")
	if p == "" {
		return globPattern{}, errors.New("pattern is empty")
	}
	if strings.HasPrefix(p, "/") {
		return globPattern{}, fmt.Errorf("pattern %q is absolute; patterns are relative to the search path", p)
	}
	expanded, err := expandBraces(p)
	if err != nil {
		return globPattern{}, err
	}
	var g globPattern
	for _, alt := range expanded {
		segs := strings.Split(alt, "/")
		for _, s := range segs {
			if s == ".." {
				return globPattern{}, fmt.Errorf("pattern %q contains '..'; search from a path inside the worktree instead", p)
			}
			if _, err := path.Match(s, ""); err != nil {
				return globPattern{}, fmt.Errorf("pattern %q: segment %q: %w", p, s, err)
			}
		}
		g.alts = append(g.alts, segs)
	}
	return g, nil
}

// match reports whether the slash path rel matches any alternative.
func (g globPattern) match(rel string) bool {
	name := strings.Split(rel, "/")
	for _, alt := range g.alts {
		if matchSegments(alt, name) {
			return true
		}
	}
	return false
}

// maxDepth is the deepest path the pattern can match, or -1 if unbounded.
func (g globPattern) maxDepth() int {
	depth := 0
	for _, alt := range g.alts {
		for _, s := range alt {
			if s == "**" {
				return -1
			}
		}
		depth = max(depth, len(alt))
	}
	return depth
}

func matchSegments(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for len(pat) > 1 && pat[1] == "**" {
				pat = pat[1:]
			}
			if len(pat) == 1 {
				return true
			}
			for i := 0; i <= len(name); i++ {
				if matchSegments(pat[1:], name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], name[0]); !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}

// expandBraces expands the first top-level {a,b,...} group recursively.
func expandBraces(p string) ([]string, error) {
	open := strings.IndexByte(p, '{')
	if open < 0 {
		return []string{p}, nil
	}
	depth, closing := 0, -1
	var commas []int
	for i := open; i < len(p) && closing < 0; i++ {
		switch p[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				closing = i
			}
		case ',':
			if depth == 1 {
				commas = append(commas, i)
			}
		}
	}
	if closing < 0 {
		return nil, fmt.Errorf("pattern %q has an unclosed '{'", p)
	}
	if len(commas) == 0 {
		// A literal {x}: keep it and expand what follows.
		rest, err := expandBraces(p[closing+1:])
		if err != nil {
			return nil, err
		}
		return prefixAll(p[:closing+1], rest), nil
	}
	var out []string
	start := open + 1
	for _, end := range append(commas, closing) {
		sub, err := expandBraces(p[:open] + p[start:end] + p[closing+1:])
		if err != nil {
			return nil, err
		}
		out = append(out, sub...)
		if len(out) > maxBraceExpansions {
			return nil, fmt.Errorf("pattern %q expands to more than %d alternatives", p, maxBraceExpansions)
		}
		start = end + 1
	}
	return out, nil
}

func prefixAll(prefix string, ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = prefix + s
	}
	return out
}
