package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	openai "github.com/sashabaranov/go-openai"
)

func TestClassify(t *testing.T) {
	syntaxErr := json.Unmarshal([]byte("<html>"), &struct{}{})
	tests := []struct {
		name   string
		err    error
		kind   Kind
		status int
	}{
		{"429", &openai.APIError{HTTPStatusCode: 429, Message: "Rate limit reached"}, KindRateLimit, 429},
		{"500", &openai.APIError{HTTPStatusCode: 500, Message: "oops"}, KindServer, 500},
		{"503", &openai.APIError{HTTPStatusCode: 503, Message: "overloaded"}, KindServer, 503},
		{"401", &openai.APIError{HTTPStatusCode: 401, Message: "bad key"}, KindAuth, 401},
		{"403", &openai.APIError{HTTPStatusCode: 403, Message: "forbidden"}, KindAuth, 403},
		{"404", &openai.APIError{HTTPStatusCode: 404, Message: "model not found"}, KindNotFound, 404},
		{"408", &openai.APIError{HTTPStatusCode: 408, Message: "timeout"}, KindTimeout, 408},
		{"400 plain", &openai.APIError{HTTPStatusCode: 400, Message: "invalid tools"}, KindBadRequest, 400},
		{"400 code", &openai.APIError{HTTPStatusCode: 400, Code: "context_length_exceeded", Message: "x"}, KindContextLength, 400},
		{"400 maximum context length", &openai.APIError{HTTPStatusCode: 400,
			Message: "This model's maximum context length is 8192 tokens"}, KindContextLength, 400},
		{"400 context length", &openai.APIError{HTTPStatusCode: 400, Message: "prompt exceeds Context Length"}, KindContextLength, 400},
		{"400 too many tokens", &openai.APIError{HTTPStatusCode: 400, Message: "Too many tokens in prompt"}, KindContextLength, 400},
		{"429 tokens is rate limit", &openai.APIError{HTTPStatusCode: 429, Message: "too many tokens per min"}, KindRateLimit, 429},
		{"502 html", &openai.RequestError{HTTPStatusCode: 502, Body: []byte("<html>Bad Gateway</html>"), Err: syntaxErr}, KindServer, 502},
		{"400 html", &openai.RequestError{HTTPStatusCode: 400, Body: []byte("<html>bad</html>"), Err: syntaxErr}, KindBadRequest, 400},
		{"200 garbage", fmt.Errorf("decode: %w", syntaxErr), KindMalformedResponse, 200},
		{"200 empty body", io.EOF, KindMalformedResponse, 200},
		{"unknown", errors.New("x"), KindNetwork, 0},
		{"deadline", fmt.Errorf("post: %w", context.DeadlineExceeded), KindTimeout, 0},
		{"canceled", &url.Error{Op: "Post", URL: "u", Err: context.Canceled}, KindNetwork, 0},
		{"net timeout", &url.Error{Op: "Post", URL: "u", Err: timeoutErr{}}, KindTimeout, 0},
		{"conn refused", &url.Error{Op: "Post", URL: "u", Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}, KindNetwork, 0},
		{"local validation", openai.ErrChatCompletionStreamNotSupported, KindBadRequest, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Classify(tt.err)
			if got.Kind != tt.kind || got.StatusCode != tt.status {
				t.Fatalf("Classify(%v) = kind %q status %d, want %q %d", tt.err, got.Kind, got.StatusCode, tt.kind, tt.status)
			}
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestClassifyKeepsContextCause(t *testing.T) {
	for _, cause := range []error{context.Canceled, context.DeadlineExceeded} {
		if err := error(Classify(fmt.Errorf("post: %w", cause))); !errors.Is(err, cause) {
			t.Errorf("errors.Is(Classify(%v), %v) = false", cause, cause)
		}
	}
	if Classify(nil) != nil {
		t.Error("Classify(nil) != nil")
	}
	e := &Error{Kind: KindAuth}
	if Classify(fmt.Errorf("wrapped: %w", e)) != e {
		t.Error("Classify of a wrapped *Error did not return it")
	}
}

func TestRetryable(t *testing.T) {
	want := map[Kind]bool{
		KindRateLimit: true, KindServer: true, KindTimeout: true, KindNetwork: true,
		KindMalformedResponse: true, KindEmptyResponse: true,
		KindBadRequest: false, KindAuth: false, KindNotFound: false, KindContextLength: false,
	}
	for kind, retryable := range want {
		if got := (&Error{Kind: kind}).Retryable(); got != retryable {
			t.Errorf("Error{Kind: %q}.Retryable() = %v, want %v", kind, got, retryable)
		}
	}
}

func TestClassifyScrubsKeys(t *testing.T) {
	tests := []struct{ name, msg, secret string }{
		{"openai key", "Incorrect API key provided: sk-proj-abcdef123456.", "sk-proj-abcdef123456"},
		{"masked key", "Incorrect API key provided: sk-abc***********xyz9.", "sk-abc***********xyz9"},
		{"bearer", "header was Authorization: Bearer tok_123456 rejected", "tok_123456"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := Classify(&openai.APIError{HTTPStatusCode: 401, Message: tt.msg})
			if strings.Contains(e.Error(), tt.secret) {
				t.Fatalf("Error() = %q contains %q", e.Error(), tt.secret)
			}
		})
	}
	if got := scrubSecrets("task-list disk-usage-report", nil); got != "task-list disk-usage-report" {
		t.Errorf("scrubSecrets changed ordinary words: %q", got)
	}
}

func TestErrorMessageBounded(t *testing.T) {
	body := strings.Repeat("<p>proxy error</p>", 1000)
	e := Classify(&openai.RequestError{HTTPStatusCode: 502, Body: []byte(body)})
	if len(e.Message) > maxMessageBytes+len("…") {
		t.Fatalf("Message has %d bytes, want at most %d", len(e.Message), maxMessageBytes)
	}
}

func TestErrorString(t *testing.T) {
	e := &Error{Kind: KindRateLimit, StatusCode: 429, RetryAfter: 2_000_000_000, Message: "slow down"}
	want := "llm rate_limit (status 429): slow down (retry after 2s)"
	if got := e.Error(); got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}

func TestEndpointSentences(t *testing.T) {
	refused := New(Options{BaseURL: "http://127.0.0.1:1/v1", APIKey: "k"})
	_, err := refused.Chat(context.Background(), openai.ChatCompletionRequest{Model: "m", Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "hi"}}})
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindUnreachable || !e.Retryable() {
		t.Fatalf("refused connection: %v, want a retryable %s", err, KindUnreachable)
	}
	if got, want := e.Sentence(), "the model endpoint http://127.0.0.1:1/v1 refused the connection: is llm.base_url right?"; got != want {
		t.Errorf("Sentence = %q, want %q", got, want)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":{"message":"invalid key","type":"invalid_request_error"}}`))
	}))
	defer srv.Close()
	rejected := New(Options{BaseURL: srv.URL + "/v1", APIKey: "k"})
	_, err = rejected.Chat(context.Background(), openai.ChatCompletionRequest{Model: "m", Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "hi"}}})
	if !errors.As(err, &e) || e.Kind != KindAuth || e.Retryable() {
		t.Fatalf("401: %v, want a non-retryable %s", err, KindAuth)
	}
	if got, want := e.Sentence(), "the model endpoint "+srv.URL+"/v1 rejected the API key (401): check llm.api_key / OPENAI_API_KEY"; got != want {
		t.Errorf("Sentence = %q, want %q", got, want)
	}
}
