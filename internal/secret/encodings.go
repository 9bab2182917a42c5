package secret

import (
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"strings"
)

// Encodings lists the forms in which v is looked for: v itself, reversed,
// hex (lower and upper case), percent-encoded (query, path and every byte),
// and base64 (standard and URL alphabets) as it appears at each of the three
// byte alignments in a longer encoded stream. The base64 forms are the
// characters that depend on v alone, so they match padded, unpadded and
// mid-stream encodings alike. Tools wrap long base64 and hex output (base64
// at 76 columns, xxd -p at 60), so those forms are also looked for with a
// line break at every position. Duplicates are possible.
func Encodings(v string) []string {
	hexLower := hex.EncodeToString([]byte(v))
	wrappable := []string{hexLower, strings.ToUpper(hexLower)}
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		for shift := range 3 {
			wrappable = append(wrappable, base64Core(enc, v, shift))
		}
	}
	out := []string{v, reverse(v), url.QueryEscape(v), url.PathEscape(v), percentAll(v, true), percentAll(v, false)}
	for _, w := range wrappable {
		out = append(out, w)
		out = append(out, lineBroken(w)...)
	}
	return out
}

// lineBroken lists s with a newline inserted at each inner position.
func lineBroken(s string) []string {
	out := make([]string, 0, len(s))
	for i := 1; i < len(s); i++ {
		out = append(out, s[:i]+"\n"+s[i:])
	}
	return out
}

// base64Core is the part of the base64 of v that is the same whatever the
// shift bytes before v and whatever bytes follow it: encoding a stream in
// which v starts at offset shift (mod 3), the first characters mix bits of
// the preceding bytes and the last one mixes bits of the following bytes.
func base64Core(enc *base64.Encoding, v string, shift int) string {
	buf := make([]byte, shift+len(v))
	copy(buf[shift:], v)
	full := enc.EncodeToString(buf)
	start := (8*shift + 5) / 6      // first character made of v's bits only
	end := 8 * (shift + len(v)) / 6 // characters wholly inside the known bits
	if start >= end {
		return ""
	}
	return full[start:end]
}

// percentAll percent-encodes every byte of v, as some encoders and
// hand-written exfiltration do.
func percentAll(v string, upper bool) string {
	h := hex.EncodeToString([]byte(v))
	if upper {
		h = strings.ToUpper(h)
	}
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		b.WriteString("%" + h[i:i+2])
	}
	return b.String()
}

func reverse(v string) string {
	b := []byte(v)
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return string(b)
}
