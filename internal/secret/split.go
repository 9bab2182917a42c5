package secret

import (
	"encoding/hex"
	"strings"
)

// A secret can also leave spelled out with a separator between its
// characters ("s k - t e s t …", "s.k.-.t…", one per line) or as hex in
// mixed case. Those are found on the text's skeleton: the text without
// separators, each kept byte remembering where it was. The secret's own
// skeleton (its bytes without separators) is searched for there, and its
// hex (lower case) in the lower-cased skeleton; a match is redacted only
// when no gap between two of its bytes in the original text is longer than
// maxGap separators, so that words that merely follow each other are not.

// maxGap is the longest run of separators allowed between two bytes of a
// split secret ("\r\n", ", ").
const maxGap = 3

// isSeparator reports whether c may be put between a secret's bytes.
func isSeparator(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '.', '-', '_', ',', ':', ';', '|', '\'', '"', '`', '/', '\\':
		return true
	}
	return false
}

// skeletonOf is s without separators.
func skeletonOf(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if !isSeparator(s[i]) {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// splitNeedles are one secret's skeleton forms.
type splitNeedles struct {
	plain string // the secret without separators, case as given ("" when too short)
	lower string // plain in lower case: the skeleton is searched in lower case
	// gaps[k] is how many separators the secret itself has between the
	// bytes k-1 and k of plain: a split copy may spell those out too.
	gaps []int
	hex  string // its hex, lower case
}

func newSplitNeedles(v string) splitNeedles {
	n := splitNeedles{hex: hex.EncodeToString([]byte(v))}
	sk := skeletonOf(v)
	if len(sk) < MinLen {
		return n
	}
	n.plain, n.lower = sk, strings.ToLower(sk)
	n.gaps = make([]int, len(sk))
	k, run := 0, 0
	for i := 0; i < len(v); i++ {
		if isSeparator(v[i]) {
			run++
			continue
		}
		n.gaps[k], run, k = run, 0, k+1
	}
	return n
}

// scrubSplit redacts the split and mixed-case forms of the secrets. The
// common case, no match, costs one pass building the lower-case skeleton
// and a search per form.
func scrubSplit(text string, needles []splitNeedles) string {
	if len(needles) == 0 {
		return text
	}
	var lower strings.Builder
	lower.Grow(len(text))
	for i := 0; i < len(text); i++ {
		if c := text[i]; !isSeparator(c) {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			lower.WriteByte(c)
		}
	}
	sk := lower.String()
	hit := false
	for _, n := range needles {
		if (n.lower != "" && strings.Contains(sk, n.lower)) || strings.Contains(sk, n.hex) {
			hit = true
			break
		}
	}
	if !hit {
		return text
	}
	keep := make([]int, 0, len(sk))
	for i := 0; i < len(text); i++ {
		if !isSeparator(text[i]) {
			keep = append(keep, i)
		}
	}
	var spans [][2]int
	find := func(needle string, gaps []int, exact string) {
		for from := 0; needle != "" && from+len(needle) <= len(sk); {
			i := strings.Index(sk[from:], needle)
			if i < 0 {
				return
			}
			i += from
			from = i + 1
			if exact != "" && !sameBytes(text, keep[i:i+len(needle)], exact) {
				continue // the secret is case-sensitive; only its hex is not
			}
			if span, ok := compact(keep, i, i+len(needle), gaps); ok {
				spans = append(spans, span)
			}
		}
	}
	for _, n := range needles {
		find(n.lower, n.gaps, n.plain)
		find(n.hex, nil, "")
	}
	if len(spans) == 0 {
		return text
	}
	return redactSpans(text, spans)
}

// sameBytes reports whether the text bytes at positions at spell want.
func sameBytes(text string, at []int, want string) bool {
	for k, i := range at {
		if text[i] != want[k] {
			return false
		}
	}
	return true
}

// compact maps the skeleton range [from, to) back to the text and reports
// whether its bytes are no more than maxGap separators apart (more where
// the secret has separators of its own there).
func compact(keep []int, from, to int, gaps []int) ([2]int, bool) {
	for k := from + 1; k < to; k++ {
		allowed := maxGap
		if gaps != nil {
			allowed += gaps[k-from] * (maxGap + 1)
		}
		if keep[k]-keep[k-1]-1 > allowed {
			return [2]int{}, false
		}
	}
	return [2]int{keep[from], keep[to-1] + 1}, true
}

// redactSpans replaces each span of text (possibly overlapping) once.
func redactSpans(text string, spans [][2]int) string {
	var b strings.Builder
	at := 0
	for len(spans) > 0 {
		// The earliest span first; overlapping ones join it.
		first := 0
		for i, sp := range spans {
			if sp[0] < spans[first][0] {
				first = i
			}
		}
		start, end := spans[first][0], spans[first][1]
		rest := spans[:0:0]
		for i, sp := range spans {
			switch {
			case i == first:
			case sp[0] < end:
				end = max(end, sp[1])
			default:
				rest = append(rest, sp)
			}
		}
		spans = rest
		if start < at {
			start = at
		}
		b.WriteString(text[at:start])
		b.WriteString(Redacted)
		at = max(at, end)
	}
	b.WriteString(text[at:])
	return b.String()
}
