package workflows

import (
	"slices"
	"testing"
)

// splitUnder names a run's worktrees by their one directory, and gives up
// (full paths) when they are not all in one.
func TestSplitUnder(t *testing.T) {
	for _, c := range []struct {
		paths []string
		dir   string
		names []string
	}{
		{[]string{"/ws/run/01-a", "/ws/run/02-b-r2"}, "/ws/run", []string{"01-a", "02-b-r2"}},
		{[]string{"/ws/run/01-a"}, "/ws/run", []string{"01-a"}},
		{nil, "", nil},
		{[]string{"/ws/run/01-a", "/ws/other/02-b"}, "", nil},
		{[]string{"/ws/run/01-a", "/ws/run/sub/02-b"}, "", nil},
		{[]string{"/ws/run/01-a", "/ws/run/"}, "", nil},
		{[]string{"/ws/run/01-a", "/ws/run/.."}, "", nil},
	} {
		dir, names := splitUnder(c.paths)
		if dir != c.dir || !slices.Equal(names, c.names) {
			t.Errorf("splitUnder(%q) = %q, %q; want %q, %q", c.paths, dir, names, c.dir, c.names)
		}
	}
}
