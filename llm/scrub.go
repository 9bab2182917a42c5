package llm

import (
	"strings"

	"codeswarm/internal/secret"
)

const redacted = secret.Redacted

// scrubSecrets removes the configured secrets (in any encoding the scrubber
// knows) from s, and anything that looks like a bearer token or an
// OpenAI-style key ("sk-..."), which some proxies echo back.
func scrubSecrets(s string, secrets *secret.Scrubber) string {
	s = secrets.Scrub(s)
	s = redactAfter(s, "Bearer ", 1)
	s = redactAfter(s, "bearer ", 1)
	return redactAfter(s, "sk-", 6)
}

// redactAfter replaces every token that starts with prefix at a word
// boundary and continues with at least minLen token characters.
func redactAfter(s, prefix string, minLen int) string {
	var b strings.Builder
	for {
		i := strings.Index(s, prefix)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := i + len(prefix)
		for end < len(s) && isTokenChar(s[end]) {
			end++
		}
		b.WriteString(s[:i])
		atBoundary := i == 0 || !isTokenChar(s[i-1])
		if atBoundary && end-i-len(prefix) >= minLen {
			b.WriteString(redacted)
		} else {
			b.WriteString(s[i:end])
		}
		s = s[end:]
	}
}

func isTokenChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '*'
}
