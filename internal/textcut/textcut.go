// Package textcut shortens text for messages, prompts, events and
// payloads. Every cut falls on a UTF-8 character boundary, so a shortened
// string is valid wherever the original was; lengths are in bytes, the
// unit of Temporal's payload limits and of model context budgets.
package textcut

import (
	"strings"
	"unicode/utf8"
)

// Prefix returns the longest prefix of s of at most n bytes that ends on a
// character boundary.
func Prefix(s string, n int) string {
	if n >= len(s) {
		return s
	}
	n = max(n, 0)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Suffix returns the longest suffix of s of at most n bytes that starts on
// a character boundary.
func Suffix(s string, n int) string {
	if n >= len(s) {
		return s
	}
	start := len(s) - max(n, 0)
	for start < len(s) && !utf8.RuneStart(s[start]) {
		start++
	}
	return s[start:]
}

// Head returns s if it fits in n bytes, else its Prefix of n bytes followed
// by mark (which is not counted in n).
func Head(s string, n int, mark string) string {
	if len(s) <= n {
		return s
	}
	return Prefix(s, n) + mark
}

// HeadTail returns s if it fits in n bytes, else its head and tail of about
// n/2 bytes each around mark(omitted), where omitted is the number of bytes
// left out.
func HeadTail(s string, n int, mark func(omitted int) string) string {
	if len(s) <= n {
		return s
	}
	head, tail := Prefix(s, n/2), Suffix(s, n/2)
	return head + mark(len(s)-len(head)-len(tail)) + tail
}

// FirstLine returns the first line of s without surrounding space, cut to
// at most n bytes with "…" when longer.
func FirstLine(s string, n int) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	return Head(s, n, "…")
}

// LinePrefix returns the longest prefix of s within n bytes that ends before
// a newline, or, with no newline in it, Prefix(s, n).
func LinePrefix(s string, n int) string {
	if n >= len(s) {
		return s
	}
	p := Prefix(s, n)
	if i := strings.LastIndexByte(p, '\n'); i >= 0 {
		return s[:i]
	}
	return p
}

// LineSuffix returns the longest suffix of s within n bytes that starts
// after a newline, or, with no newline in it, Suffix(s, n).
func LineSuffix(s string, n int) string {
	if n >= len(s) {
		return s
	}
	start := len(s) - len(Suffix(s, n))
	if start > 0 && s[start-1] == '\n' {
		return s[start:]
	}
	if j := strings.IndexByte(s[start:], '\n'); j >= 0 {
		return s[start+j+1:]
	}
	return s[start:]
}
