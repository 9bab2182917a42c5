package activities

import (
	"strings"
	"unicode/utf8"
)

// ShortSHA abbreviates a commit SHA for messages and events.
func ShortSHA(sha string) string {
	if len(sha) > 10 {
		return sha[:10]
	}
	return sha
}

// FirstLine returns the first line of s without surrounding space, cut to
// at most n bytes (on a character boundary) with "…" when longer.
func FirstLine(s string, n int) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
