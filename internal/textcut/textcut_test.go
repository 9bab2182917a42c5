package textcut

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// Every cut of a string of multi-byte characters, at every length, is
// valid UTF-8 and within its bound.
func TestCutsAreValidUTF8(t *testing.T) {
	s := strings.Repeat("héllo wörld ✓ 日本\n", 7)
	mark := func(n int) string { return "[…]" }
	for n := 0; n <= len(s)+1; n++ {
		for name, got := range map[string]string{
			"Prefix": Prefix(s, n), "Suffix": Suffix(s, n), "Head": strings.TrimSuffix(Head(s, n, "…"), "…"),
			"LinePrefix": LinePrefix(s, n), "LineSuffix": LineSuffix(s, n),
		} {
			if !utf8.ValidString(got) || len(got) > max(n, 0) {
				t.Fatalf("%s(%d) = %q: invalid or over the bound", name, n, got)
			}
		}
		if ht := HeadTail(s, n, mark); !utf8.ValidString(ht) || (len(s) > n && len(ht) > n+len(mark(0))) {
			t.Fatalf("HeadTail(%d) = %q", n, ht)
		}
	}
}

func TestCuts(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{Prefix("日本語", 4), "日"},
		{Suffix("日本語", 4), "語"},
		{Head("abcdef", 3, "…"), "abc…"},
		{Head("abc", 3, "…"), "abc"},
		{FirstLine("  first line  \nsecond", 5), "first…"},
		{FirstLine("short\nsecond", 10), "short"},
		{HeadTail("0123456789", 4, func(n int) string { return "<" + strings.Repeat("x", n) + ">" }), "01<xxxxxx>89"},
		{LinePrefix("one\ntwo\nthree", 9), "one\ntwo"},
		{LineSuffix("one\ntwo\nthree", 9), "two\nthree"},
		{LinePrefix("abcdef", 3), "abc"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
