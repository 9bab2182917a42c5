package textdist

import "testing"

func TestLevenshtein(t *testing.T) {
	cases := []struct {
		a, b  string
		bound int
		want  int
	}{
		{"", "", 10, 0},
		{"kitten", "sitting", 10, 3},
		{"swarm.max_subagent", "swarm.max_subagents", 10, 1},
		{"abc", "abc", 10, 0},
		{"abc", "xyz", 10, 3},
		{"kitten", "sitting", 2, 2},
		{"a", "abcdefgh", 3, 3},
	}
	for _, c := range cases {
		if got := Levenshtein(c.a, c.b, c.bound); got != c.want {
			t.Errorf("Levenshtein(%q, %q, %d) = %d, want %d", c.a, c.b, c.bound, got, c.want)
		}
	}
}
