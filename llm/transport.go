package llm

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// exchange records what the transport saw for one Chat call. go-openai drops
// the response headers of a failed request, so the transport stores them
// here; each call puts its own exchange in its request context, which keeps
// concurrent calls from seeing each other's headers.
type exchange struct {
	mu     sync.Mutex
	sent   bool
	header http.Header
}

type exchangeKey struct{}

func withExchange(ctx context.Context, x *exchange) context.Context {
	return context.WithValue(ctx, exchangeKey{}, x)
}

func (x *exchange) record(h http.Header) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.sent = true
	x.header = h
}

func (x *exchange) result() (sent bool, h http.Header) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.sent, x.header
}

// recordingTransport copies response headers into the request's exchange.
type recordingTransport struct {
	base http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if x, ok := req.Context().Value(exchangeKey{}).(*exchange); ok {
		var h http.Header
		if resp != nil {
			h = resp.Header.Clone()
		}
		x.record(h)
	}
	return resp, err
}

// wrapHTTPClient returns a copy of c (or a fresh client) whose transport
// records headers; the caller's client is left untouched.
func wrapHTTPClient(c *http.Client) *http.Client {
	var wrapped http.Client
	if c != nil {
		wrapped = *c
	}
	base := wrapped.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	wrapped.Transport = recordingTransport{base: base}
	return &wrapped
}

// retryAfter reads the server's requested wait from h. Each source gives
// at most one wait: the standard pair (retry-after-ms, more precise, sent by
// OpenAI and Azure, wins over Retry-After, which is delta-seconds or an
// HTTP-date); the same pair as a LiteLLM-style gateway forwards it
// (llm_provider-retry-after-ms, llm_provider-retry-after); and OpenAI's
// x-ratelimit-reset-requests / x-ratelimit-reset-tokens ("6s", "1m30s",
// "20ms"). The largest sane wait wins: the server asked for at least that
// long. Callers cap it as before.
func retryAfter(h http.Header, now time.Time) time.Duration {
	if h == nil {
		return 0
	}
	wait := retryAfterPair(h, "Retry-After", now)
	wait = max(wait, retryAfterPair(h, "Llm_provider-Retry-After", now))
	wait = max(wait, resetDuration(h.Get("X-Ratelimit-Reset-Requests")))
	wait = max(wait, resetDuration(h.Get("X-Ratelimit-Reset-Tokens")))
	return wait
}

// retryAfterPair reads name+"-Ms" (milliseconds), which wins, else name
// (delta-seconds or an HTTP-date).
func retryAfterPair(h http.Header, name string, now time.Time) time.Duration {
	if ms := strings.TrimSpace(h.Get(name + "-Ms")); ms != "" {
		if v, err := strconv.ParseFloat(ms, 64); err == nil && v > 0 && !math.IsInf(v, 0) {
			return time.Duration(v * float64(time.Millisecond))
		}
	}
	ra := strings.TrimSpace(h.Get(name))
	if ra == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(ra, 64); err == nil {
		if secs <= 0 || math.IsInf(secs, 0) || math.IsNaN(secs) {
			return 0
		}
		return time.Duration(secs * float64(time.Second))
	}
	if at, err := http.ParseTime(ra); err == nil && at.After(now) {
		return at.Sub(now)
	}
	return 0
}

// resetDuration parses an x-ratelimit-reset-* value: a Go-style duration
// ("6s", "1m30s", "20ms") or bare seconds. Anything else is 0.
func resetDuration(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if d, err := time.ParseDuration(v); err == nil {
		return max(d, 0)
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil && secs > 0 && !math.IsInf(secs, 0) {
		return time.Duration(secs * float64(time.Second))
	}
	return 0
}
