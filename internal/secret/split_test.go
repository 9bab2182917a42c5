package secret

import (
	"encoding/hex"
	"strings"
	"testing"
	"unicode"
)

// spellOut puts sep between the bytes of s.
func spellOut(s, sep string) string {
	return strings.Join(strings.Split(s, ""), sep)
}

// mixedCase upper-cases every other letter of s.
func mixedCase(s string) string {
	b := []rune(s)
	for i := range b {
		if i%2 == 0 {
			b[i] = unicode.ToUpper(b[i])
		}
	}
	return string(b)
}

// TestScrubSplitSecrets: a key spelled out with a separator between its
// characters, or printed as hex in mixed case or with spaces (xxd), is
// redacted; what surrounds it is kept.
func TestScrubSplitSecrets(t *testing.T) {
	s := New(fakeKey)
	h := hex.EncodeToString([]byte(fakeKey))
	cases := map[string]string{
		"spaced":        spellOut(fakeKey, " "),
		"dotted":        spellOut(fakeKey, "."),
		"dashed":        spellOut(fakeKey, "-"),
		"newlines":      spellOut(fakeKey, "\n"),
		"crlf":          spellOut(fakeKey, "\r\n"),
		"mixed hex":     mixedCase(h),
		"spaced hex":    spellOut(h, " "),
		"xxd groups":    strings.Join(chunks(h, 4), " "),
		"hex per line":  strings.Join(chunks(strings.ToUpper(h), 2), "\n"),
		"comma-spelled": spellOut(fakeKey, ", "),
	}
	for name, form := range cases {
		text := "before> " + form + " <after"
		out := s.Scrub(text)
		if !strings.Contains(out, Redacted) || !strings.HasPrefix(out, "before>") || !strings.HasSuffix(out, "<after") {
			t.Errorf("%s: %q", name, out)
		}
		if strings.Contains(skeletonOf(out), skeletonOf(fakeKey)) || strings.Contains(strings.ToLower(skeletonOf(out)), h) {
			t.Errorf("%s: the key is still there: %q", name, out)
		}
	}
}

// TestScrubSplitLeavesProseAlone: words that only happen to follow each
// other far apart, and text without the key, are left as they are.
func TestScrubSplitLeavesProseAlone(t *testing.T) {
	s := New("abcdefghij")
	for _, in := range []string{
		"a  -  b  -  c  -  d  -  e  -  f  -  g  -  h  -  i  -  j", // gaps of 5 separators
		"the quick brown fox jumps over the lazy dog; 0123456789abcdef",
		"ab cd ef gh i",
	} {
		if got := s.Scrub(in); got != in {
			t.Errorf("Scrub(%q) = %q, want it unchanged", in, got)
		}
	}
}

func chunks(s string, n int) []string {
	var out []string
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	return append(out, s)
}
