package llm

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"codeswarm/internal/secret"
)

const okCompletion = `{"id":"c1","object":"chat.completion","created":1,"model":"m",
"choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],
"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}`

func chatRequest(model string) openai.ChatCompletionRequest {
	return openai.ChatCompletionRequest{
		Model:    model,
		Messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: "hello"}},
	}
}

// serve starts an httptest server answering every request with h.
func serve(t *testing.T, h http.HandlerFunc) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return New(Options{BaseURL: srv.URL + "/v1", APIKey: "sk-test-secret-key-123456"})
}

func TestChatSuccess(t *testing.T) {
	var auth, path string
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		auth, path = r.Header.Get("Authorization"), r.URL.Path
		io.WriteString(w, okCompletion)
	})
	resp, err := c.Chat(context.Background(), chatRequest("m"))
	if err != nil {
		t.Fatalf("Chat: %v", err)
	}
	if resp.Choices[0].Message.Content != "hi" || resp.Usage.TotalTokens != 4 {
		t.Fatalf("unexpected response %+v", resp)
	}
	if auth != "Bearer sk-test-secret-key-123456" || path != "/v1/chat/completions" {
		t.Fatalf("server saw Authorization %q path %q", auth, path)
	}
}

func TestChatErrors(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		kind       Kind
		retryAfter time.Duration
	}{
		{"rate limit", 429, map[string]string{"Retry-After": "3"},
			`{"error":{"message":"Rate limit reached","type":"requests"}}`, KindRateLimit, 3 * time.Second},
		{"rate limit ms", 429, map[string]string{"Retry-After": "3", "retry-after-ms": "1200"},
			`{"error":{"message":"Rate limit reached"}}`, KindRateLimit, 1200 * time.Millisecond},
		{"litellm gateway header", 429, map[string]string{"llm_provider-retry-after": "6"},
			`{"error":{"message":"Rate limit reached"}}`, KindRateLimit, 6 * time.Second},
		{"x-ratelimit-reset", 429, map[string]string{"x-ratelimit-reset-requests": "1m30s", "x-ratelimit-reset-tokens": "6s"},
			`{"error":{"message":"Rate limit reached"}}`, KindRateLimit, 90 * time.Second},
		{"server", 500, nil, `{"error":{"message":"boom"}}`, KindServer, 0},
		{"proxy html", 502, nil, "<html><body>502 Bad Gateway</body></html>", KindServer, 0},
		{"overloaded with retry-after", 503, map[string]string{"Retry-After": "5"}, `{"error":{"message":"busy"}}`, KindServer, 5 * time.Second},
		{"context length", 400, nil,
			`{"error":{"message":"too long","type":"invalid_request_error","code":"context_length_exceeded"}}`, KindContextLength, 0},
		{"bad request", 400, nil, `{"error":{"message":"tools[0] invalid"}}`, KindBadRequest, 0},
		{"not found", 404, nil, `{"error":{"message":"The model x does not exist"}}`, KindNotFound, 0},
		{"garbage 200", 200, nil, "<html>login page</html>", KindMalformedResponse, 0},
		{"empty body 200", 200, nil, "", KindMalformedResponse, 0},
		{"empty choices", 200, nil, `{"id":"x","object":"chat.completion","choices":[]}`, KindEmptyResponse, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := serve(t, func(w http.ResponseWriter, _ *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})
			_, err := c.Chat(context.Background(), chatRequest("m"))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Chat error = %v (%T), want *Error", err, err)
			}
			if e.Kind != tt.kind || e.RetryAfter != tt.retryAfter {
				t.Fatalf("got kind %q retryAfter %v, want %q %v (%v)", e.Kind, e.RetryAfter, tt.kind, tt.retryAfter, e)
			}
		})
	}
}

func TestChatTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	c := New(Options{BaseURL: srv.URL, Timeout: 50 * time.Millisecond})
	_, err := c.Chat(context.Background(), chatRequest("m"))
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindTimeout || !e.Retryable() {
		t.Fatalf("Chat error = %v, want a retryable timeout", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("errors.Is(%v, context.DeadlineExceeded) = false", err)
	}
}

func TestChatNetworkError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	_, err := New(Options{BaseURL: url}).Chat(context.Background(), chatRequest("m"))
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindUnreachable || !e.Retryable() {
		t.Fatalf("Chat error = %v, want a retryable unreachable", err)
	}
}

func TestChatLocalValidationIsBadRequest(t *testing.T) {
	var calls atomic.Int32
	c := serve(t, func(http.ResponseWriter, *http.Request) { calls.Add(1) })
	req := chatRequest("m")
	req.Stream = true
	_, err := c.Chat(context.Background(), req)
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindBadRequest || e.Retryable() {
		t.Fatalf("Chat error = %v, want non-retryable bad_request", err)
	}
	if calls.Load() != 0 {
		t.Fatalf("server got %d requests, want 0", calls.Load())
	}
}

func TestChatNeverLeaksKey(t *testing.T) {
	const key = "gw-live-0123456789abcdef" // not sk-: only the exact-key scrub can catch it
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A misbehaving proxy that echoes the credentials back.
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `{"error":{"message":"bad credentials %s (key=%s)"}}`, r.Header.Get("Authorization"), key)
	}))
	t.Cleanup(srv.Close)
	_, err := New(Options{BaseURL: srv.URL, APIKey: key}).Chat(context.Background(), chatRequest("m"))
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindAuth {
		t.Fatalf("Chat error = %v, want auth", err)
	}
	if strings.Contains(err.Error(), key) {
		t.Fatalf("error %q contains the API key", err)
	}
}

// TestChatErrorScrubsEncodedSecrets: an upstream error that echoes the key
// base64-encoded, or another configured secret (the codec key) in hex, reaches
// the caller without them.
func TestChatErrorScrubsEncodedSecrets(t *testing.T) {
	const key, codecKey = "gw-live-0123456789abcdef", "0123456789abcdef0123456789abcdef"
	b64 := base64.StdEncoding.EncodeToString([]byte("Authorization: Bearer " + key))
	hexCodec := hex.EncodeToString([]byte(codecKey))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":{"message":"bad request %s / %s"}}`, b64, hexCodec)
	}))
	t.Cleanup(srv.Close)
	c := New(Options{BaseURL: srv.URL, APIKey: key, Secrets: secret.New(key, codecKey)})
	_, err := c.Chat(context.Background(), chatRequest("m"))
	if err == nil {
		t.Fatal("Chat succeeded against a failing server")
	}
	for _, leak := range []string{b64[31 : len(b64)-2], hexCodec} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("error %q contains secret encoding %q", err, leak)
		}
	}
	if !strings.Contains(err.Error(), secret.Redacted) {
		t.Errorf("error %q shows no redaction", err)
	}
}

// TestChatRetryAfterPerCall checks that concurrent calls each see their own
// response's Retry-After, never another call's.
func TestChatRetryAfterPerCall(t *testing.T) {
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		// The model name "m-N" asks for Retry-After: N.
		_, after, _ := strings.Cut(string(body), `"model":"m-`)
		n, _, _ := strings.Cut(after, `"`)
		w.Header().Set("Retry-After", n)
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"error":{"message":"slow down"}}`)
	})
	var wg sync.WaitGroup
	errs := make([]error, 50)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = c.Chat(context.Background(), chatRequest("m-"+strconv.Itoa(i+1)))
		})
	}
	wg.Wait()
	for i, err := range errs {
		var e *Error
		if !errors.As(err, &e) || e.RetryAfter != time.Duration(i+1)*time.Second {
			t.Errorf("call %d: error %v, want RetryAfter %ds", i, err, i+1)
		}
	}
}

// A 404 says which URL was tried, so a base URL missing /v1 is easy to spot;
// credentials in the base URL are not repeated.
func TestChatNotFoundNamesEndpoint(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	base := strings.Replace(srv.URL, "http://", "http://user:hunter2@", 1)
	c := New(Options{BaseURL: base, APIKey: "sk-test-secret-key-123456"})
	_, err := c.Chat(context.Background(), chatRequest("m"))
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindNotFound {
		t.Fatalf("err = %v, want not_found", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "/chat/completions") || !strings.Contains(msg, "llm.base_url") || strings.Contains(msg, "hunter2") {
		t.Errorf("404 message = %q: want the endpoint tried, a hint at llm.base_url, no password", msg)
	}
}
