package secret

import (
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"
)

const fakeKey = "sk-test-Zq9+/x7Kp0_wLmN3vR8sT2uY" // has + and /, so std and URL base64 differ

// encoders are the ways a hostile command could print the key.
var encoders = map[string]func(string) string{
	"plain":      func(s string) string { return s },
	"reversed":   reverse,
	"hex":        func(s string) string { return hex.EncodeToString([]byte(s)) },
	"HEX":        func(s string) string { return strings.ToUpper(hex.EncodeToString([]byte(s))) },
	"query":      url.QueryEscape,
	"path":       url.PathEscape,
	"percentAll": func(s string) string { return percentAll(s, true) },
	"percentlow": func(s string) string { return percentAll(s, false) },
	"b64std":     b64(base64.StdEncoding),
	"b64raw":     b64(base64.RawStdEncoding),
	"b64url":     b64(base64.URLEncoding),
	"b64rawurl":  b64(base64.RawURLEncoding),
	// base64 and xxd -p wrap their lines at 76 and 60 columns.
	"b64wrapped": func(s string) string { return wrap(base64.StdEncoding.EncodeToString([]byte(s)), 76) },
	"hexwrapped": func(s string) string { return wrap(hex.EncodeToString([]byte(s)), 60) },
}

func wrap(s string, width int) string {
	var b strings.Builder
	for len(s) > width {
		b.WriteString(s[:width] + "\n")
		s = s[width:]
	}
	b.WriteString(s)
	return b.String()
}

func b64(enc *base64.Encoding) func(string) string {
	return func(s string) string { return enc.EncodeToString([]byte(s)) }
}

// TestScrubEncodings embeds the key at offsets 0..5 of a longer value (so
// every base64 alignment occurs), encodes the whole value, embeds that in
// tool-like output, and checks that no decoder gets the key back.
func TestScrubEncodings(t *testing.T) {
	s := New(fakeKey)
	for name, enc := range encoders {
		for off := range 6 {
			value := strings.Repeat("A", off) + "OPENAI_API_KEY=" + fakeKey + "\nPATH=/usr/bin\n"
			text := "$ cat /proc/1/environ | " + name + "\n" + enc(value) + "\ndone\n"
			if !recoverable(text, fakeKey) {
				t.Fatalf("%s/%d: test decoder cannot find the key even before scrubbing", name, off)
			}
			out := s.Scrub(text)
			if recoverable(out, fakeKey) {
				t.Errorf("%s at offset %d: key recoverable after scrubbing:\n%s", name, off, out)
			}
			if !strings.Contains(out, Redacted) || !strings.HasPrefix(out, "$ cat /proc/1/environ") || !strings.HasSuffix(out, "\ndone\n") {
				t.Errorf("%s at offset %d: surrounding text not kept:\n%s", name, off, out)
			}
		}
	}
}

// recoverable is the attacker's view: it tries every decoding on every
// window of text, with and without its line breaks, and reports whether the
// key comes out.
func recoverable(text, key string) bool {
	return decodesTo(text, key) || decodesTo(strings.ReplaceAll(text, "\n", ""), key)
}

func decodesTo(text, key string) bool {
	candidates := []string{text, reverse(text)}
	if u, err := url.QueryUnescape(text); err == nil {
		candidates = append(candidates, u)
	}
	if u, err := url.PathUnescape(text); err == nil {
		candidates = append(candidates, u)
	}
	for _, run := range runs(text, "0123456789abcdefABCDEF") {
		for off := range 2 {
			if b, err := hex.DecodeString(evenPrefix(run[off:])); err == nil {
				candidates = append(candidates, string(b))
			}
		}
	}
	const std, url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for _, a := range []struct {
		alphabet string
		enc      *base64.Encoding
	}{{std, base64.RawStdEncoding}, {url, base64.RawURLEncoding}} {
		for _, run := range runs(text, a.alphabet) {
			for off := 0; off < 4 && off < len(run); off++ {
				r := run[off:]
				r = r[:len(r)/4*4]
				if b, err := a.enc.DecodeString(r); err == nil {
					candidates = append(candidates, string(b))
				}
			}
		}
	}
	for _, c := range candidates {
		if strings.Contains(c, key) {
			return true
		}
	}
	return false
}

// runs splits text into maximal runs of characters from alphabet.
func runs(text, alphabet string) []string {
	return strings.FieldsFunc(text, func(r rune) bool { return !strings.ContainsRune(alphabet, r) })
}

func evenPrefix(s string) string { return s[:len(s)/2*2] }

func TestScrubEveryConfiguredSecret(t *testing.T) {
	codecText := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	s := New("sk-one-aaaaaaaaaaaa", codecText, "0123456789abcdef0123456789abcdef")
	in := "a sk-one-aaaaaaaaaaaa b " + codecText + " c " + hex.EncodeToString([]byte("0123456789abcdef0123456789abcdef")) + " d"
	want := "a [REDACTED] b [REDACTED] c [REDACTED] d"
	if got := s.Scrub(in); got != want {
		t.Errorf("Scrub = %q, want %q", got, want)
	}
}

func TestScrubLeavesOrdinaryTextAlone(t *testing.T) {
	s := New(fakeKey, "short") // "short" is below MinLen: ordinary words must survive
	in := "a short note about base64, hex 0123456789abcdef and 100% of PATH"
	if got := s.Scrub(in); got != in {
		t.Errorf("Scrub changed text without secrets: %q", got)
	}
	var nilScrubber *Scrubber
	if got := nilScrubber.Scrub(fakeKey); got != fakeKey || !nilScrubber.Empty() || !New("", "short").Empty() {
		t.Errorf("nil or empty scrubber must be a no-op")
	}
}

// TestScrubLongestMatchWins: the key's plain form is a prefix of nothing
// shorter left behind, e.g. the upper-case hex and the plain key overlap.
func TestScrubLongestMatchWins(t *testing.T) {
	s := New("abcdefgh", "abcdefghijkl")
	if got := s.Scrub("xabcdefghijkly"); got != "x"+Redacted+"y" {
		t.Errorf("Scrub = %q, want one replacement of the longer secret", got)
	}
}

// BenchmarkScrub30k scrubs a 30 kB tool output (the default bash output cap)
// holding no secret, with an API key and a codec key configured.
func BenchmarkScrub30k(b *testing.B) {
	codecRaw := "0123456789abcdef0123456789abcdef"
	s := New(fakeKey, base64.StdEncoding.EncodeToString([]byte(codecRaw)), codecRaw)
	line := "ok  \tcodeswarm/tools\t0.412s\tcoverage: 81.3% of statements 0xDEADBEEF a+b/c==\n"
	text := strings.Repeat(line, 30000/len(line))
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		_ = s.Scrub(text)
	}
}

// BenchmarkNew builds the scrubber for an API key and a codec key, as each
// worker does once at start-up (the Replacer builds its trie on first use,
// hence the one Scrub).
func BenchmarkNew(b *testing.B) {
	codecRaw := "0123456789abcdef0123456789abcdef"
	b.ReportAllocs()
	for b.Loop() {
		_ = New(fakeKey, base64.StdEncoding.EncodeToString([]byte(codecRaw)), codecRaw).Scrub("x")
	}
}
