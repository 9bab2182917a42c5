package tools

import (
	"fmt"
	"strings"

	"codeswarm/internal/textdist"

	"codeswarm/internal/textcut"
)

const hintMaxLineBytes = 200

// notFoundHint explains why old_string did not match: a line-ending or
// whitespace mismatch, or the most similar line of the file.
func notFoundHint(content, old string) string {
	if strings.Contains(content, "\r\n") && !strings.Contains(old, "\r\n") &&
		strings.Contains(content, strings.ReplaceAll(old, "\n", "\r\n")) {
		return "; the file uses CRLF (\\r\\n) line endings, so old_string must too"
	}
	if strings.Contains(collapseSpace(content), collapseSpace(old)) {
		return "; it matches only if whitespace is ignored, so indentation, tabs vs spaces or line breaks differ: read the file and copy the exact text"
	}
	needle := firstNonBlankLine(old)
	if needle == "" {
		return "; read the file and copy the exact text"
	}
	lineNo, line, dist := closestLine(content, needle)
	if lineNo == 0 || dist > len(needle)/2 {
		return "; no similar line exists: read the file again, it may have changed"
	}
	return fmt.Sprintf("; the closest line is %d: %q, read the file and copy the exact text", lineNo, line)
}

// collapseSpace replaces every whitespace run with one space.
func collapseSpace(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func firstNonBlankLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if t := strings.TrimSpace(l); t != "" {
			return clip(t, hintMaxLineBytes)
		}
	}
	return ""
}

// closestLine returns the 1-based number, text and edit distance of the
// line of content most similar to needle (compared without surrounding
// whitespace).
func closestLine(content, needle string) (int, string, int) {
	best, bestLine, bestDist := 0, "", len(needle)+1
	for i, l := range strings.Split(content, "\n") {
		t := clip(strings.TrimSpace(l), hintMaxLineBytes)
		if t == "" {
			continue
		}
		if d := textdist.Levenshtein(needle, t, bestDist); d < bestDist {
			best, bestLine, bestDist = i+1, strings.TrimRight(l, "\r"), d
		}
	}
	return best, bestLine, bestDist
}

func clip(s string, n int) string { return textcut.Prefix(s, n) }
