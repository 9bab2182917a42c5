package activities

import (
	"codeswarm/internal/textcut"
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
func FirstLine(s string, n int) string { return textcut.FirstLine(s, n) }
