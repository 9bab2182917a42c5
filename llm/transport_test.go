package llm

import (
	"net/http"
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name   string
		header map[string]string
		want   time.Duration
	}{
		{"none", nil, 0},
		{"seconds", map[string]string{"Retry-After": "7"}, 7 * time.Second},
		{"fractional seconds", map[string]string{"Retry-After": "1.5"}, 1500 * time.Millisecond},
		{"http date", map[string]string{"Retry-After": now.Add(90 * time.Second).Format(http.TimeFormat)}, 90 * time.Second},
		{"date in the past", map[string]string{"Retry-After": now.Add(-time.Minute).Format(http.TimeFormat)}, 0},
		{"negative", map[string]string{"Retry-After": "-3"}, 0},
		{"garbage", map[string]string{"Retry-After": "soon"}, 0},
		{"ms wins", map[string]string{"Retry-After": "7", "retry-after-ms": "250"}, 250 * time.Millisecond},
		{"bad ms falls back", map[string]string{"Retry-After": "7", "retry-after-ms": "x"}, 7 * time.Second},
		{"litellm gateway", map[string]string{"llm_provider-retry-after": "6"}, 6 * time.Second},
		{"litellm gateway ms", map[string]string{"llm_provider-retry-after-ms": "2500"}, 2500 * time.Millisecond},
		{"gateway larger than standard", map[string]string{"Retry-After": "1", "llm_provider-retry-after": "6"}, 6 * time.Second},
		{"reset requests", map[string]string{"x-ratelimit-reset-requests": "1m30s"}, 90 * time.Second},
		{"reset tokens largest", map[string]string{"x-ratelimit-reset-requests": "6s", "x-ratelimit-reset-tokens": "20s"}, 20 * time.Second},
		{"reset ms", map[string]string{"x-ratelimit-reset-tokens": "20ms"}, 20 * time.Millisecond},
		{"reset garbage", map[string]string{"x-ratelimit-reset-tokens": "later"}, 0},
		{"reset negative", map[string]string{"x-ratelimit-reset-tokens": "-5s"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			if got := retryAfter(h, now); got != tt.want {
				t.Fatalf("retryAfter(%v) = %v, want %v", tt.header, got, tt.want)
			}
		})
	}
}

func TestWrapHTTPClientLeavesCallerClientAlone(t *testing.T) {
	orig := &http.Client{Timeout: time.Minute}
	wrapped := wrapHTTPClient(orig)
	if orig.Transport != nil {
		t.Fatal("caller's client Transport was modified")
	}
	if wrapped.Timeout != time.Minute {
		t.Fatalf("wrapped Timeout = %v, want the caller's 1m", wrapped.Timeout)
	}
	if _, ok := wrapped.Transport.(recordingTransport); !ok {
		t.Fatalf("wrapped Transport is %T, want recordingTransport", wrapped.Transport)
	}
}
