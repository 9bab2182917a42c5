// Package secret removes configured secrets from text that leaves the worker:
// tool output stored in transcripts, error messages, shared values, logs.
// A command run by the model can print a secret in many disguises, so each
// secret is searched for verbatim and in its common encodings.
package secret

import (
	"cmp"
	"slices"
	"strings"
)

// Redacted replaces every occurrence of a secret.
const Redacted = "[REDACTED]"

// MinLen is the shortest secret that is scrubbed: shorter values would match
// ordinary text (and a real key is much longer).
const MinLen = 8

// Scrubber replaces secrets and their encodings. The needles are computed
// once, so scrubbing costs one pass over the text. The zero value and nil
// scrub nothing. It is safe for concurrent use.
type Scrubber struct {
	r     *strings.Replacer
	split []splitNeedles
}

// New returns a Scrubber for values; values shorter than MinLen are ignored.
func New(values ...string) *Scrubber {
	seen := map[string]bool{}
	var needles []string
	var split []splitNeedles
	for _, v := range values {
		if len(v) < MinLen {
			continue
		}
		split = append(split, newSplitNeedles(v))
		for _, n := range Encodings(v) {
			if len(n) >= MinLen && !seen[n] {
				seen[n] = true
				needles = append(needles, n)
			}
		}
	}
	s := &Scrubber{split: split}
	if len(needles) == 0 {
		return s
	}
	// At one position the Replacer takes the first listed needle that
	// matches: longest first, so no prefix of a longer match survives.
	slices.SortFunc(needles, func(a, b string) int { return cmp.Or(len(b)-len(a), strings.Compare(a, b)) })
	pairs := make([]string, 0, 2*len(needles))
	for _, n := range needles {
		pairs = append(pairs, n, Redacted)
	}
	s.r = strings.NewReplacer(pairs...)
	return s
}

// Scrub returns text with every secret and encoding of one replaced by
// Redacted.
func (s *Scrubber) Scrub(text string) string {
	if s == nil || s.r == nil {
		return text
	}
	return scrubSplit(s.r.Replace(text), s.split)
}

// Empty reports whether s has nothing to scrub.
func (s *Scrubber) Empty() bool { return s == nil || s.r == nil }
