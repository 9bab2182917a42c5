package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"codeswarm/internal/secret"

	"codeswarm/internal/textcut"
)

// Kind classifies a failed LLM call so the caller (Temporal's retry policy)
// can decide whether another attempt can help.
type Kind string

// The kinds of LLM failure.
const (
	KindRateLimit         Kind = "rate_limit"
	KindServer            Kind = "server"
	KindTimeout           Kind = "timeout"
	KindBadRequest        Kind = "bad_request"
	KindAuth              Kind = "auth"
	KindNotFound          Kind = "not_found"
	KindContextLength     Kind = "context_length"
	KindMalformedResponse Kind = "malformed_response"
	KindEmptyResponse     Kind = "empty_response"
	KindNetwork           Kind = "network"
	// KindUnreachable: the endpoint refused the connection or its host
	// name does not resolve. A few quick attempts may meet a server that
	// is starting; after them, the caller gives up (see Sentence).
	KindUnreachable Kind = "unreachable"
)

// maxMessageBytes bounds how much of an upstream body ends up in an error:
// an HTML error page is useless past its first lines and bloats histories.
const maxMessageBytes = 512

// Error is a classified LLM failure. Message is scrubbed of secrets.
type Error struct {
	Kind       Kind
	StatusCode int           // HTTP status, 0 when no response arrived
	RetryAfter time.Duration // server's requested wait, 0 when it gave none
	Message    string
	// Endpoint is llm.base_url (credentials redacted) when the Client
	// knew it, for Sentence.
	Endpoint string

	unknownHost bool // KindUnreachable by DNS, not a refused connection

	// cause is kept only for context errors, so errors.Is(err,
	// context.Canceled) works without exposing unscrubbed upstream text.
	cause error
}

// Error implements error. It never contains the API key: Message is
// scrubbed when the Error is built.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("llm ")
	b.WriteString(string(e.Kind))
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, " (status %d)", e.StatusCode)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// Unwrap returns context.Canceled or context.DeadlineExceeded when the call
// ended because of its context, nil otherwise.
func (e *Error) Unwrap() error { return e.cause }

// Retryable reports whether another attempt of the same request may succeed.
func (e *Error) Retryable() bool {
	switch e.Kind {
	case KindRateLimit, KindServer, KindTimeout, KindNetwork, KindUnreachable,
		KindMalformedResponse, KindEmptyResponse:
		return true
	default:
		return false
	}
}

// Classify maps an error from go-openai (or the HTTP stack below it) to an
// *Error. It returns nil for nil and the error itself if it already is one.
// Upstream text is scrubbed of anything that looks like a key; Client.Chat
// additionally removes the configured key verbatim.
func Classify(err error) *Error {
	return classifyScrubbed(err, nil)
}

// classifyScrubbed classifies err and removes the secrets from the message
// before truncating it, so a key cut at the boundary cannot leave a fragment.
func classifyScrubbed(err error, secrets *secret.Scrubber) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	e = classify(err)
	e.Message = truncate(scrubSecrets(e.Message, secrets), maxMessageBytes)
	return e
}

func classify(err error) *Error {
	var apiErr *openai.APIError
	if errors.As(err, &apiErr) && apiErr.HTTPStatusCode != 0 {
		return fromStatus(apiErr.HTTPStatusCode, apiErr.Message, isContextLengthCode(apiErr))
	}
	var reqErr *openai.RequestError
	if errors.As(err, &reqErr) {
		return fromStatus(reqErr.HTTPStatusCode, requestErrorMessage(reqErr), false)
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{
			Kind:    KindTimeout,
			Message: "request timed out",
			cause:   context.DeadlineExceeded,
		}
	case errors.Is(err, context.Canceled):
		return &Error{Kind: KindNetwork, Message: "request canceled", cause: context.Canceled}
	case isLocalValidation(err):
		return &Error{Kind: KindBadRequest, Message: err.Error()}
	}
	var urlErr *url.Error
	var netErr net.Error
	switch {
	case errors.As(err, &netErr) && netErr.Timeout():
		return &Error{Kind: KindTimeout, Message: err.Error()}
	case isRefused(err):
		return &Error{Kind: KindUnreachable, Message: "connection refused"}
	case isUnknownHost(err):
		return &Error{Kind: KindUnreachable, Message: "host name not found", unknownHost: true}
	case errors.As(err, &urlErr), errors.As(err, &netErr):
		return &Error{Kind: KindNetwork, Message: err.Error()}
	case isDecodeError(err):
		return &Error{
			Kind:       KindMalformedResponse,
			StatusCode: http.StatusOK,
			Message:    "response body is not a chat completion: " + err.Error(),
		}
	}
	return &Error{Kind: KindNetwork, Message: err.Error()}
}

// isRefused reports a connection the endpoint refused: nothing listens.
func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// isUnknownHost reports a host name that does not resolve.
func isUnknownHost(err error) bool {
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr) && dnsErr.IsNotFound
}

// Sentence says in plain words why no call to the endpoint can succeed,
// for the endpoint failures a user must fix in config (unreachable, a
// rejected key, a wrong URL or model); "" for the others.
func (e *Error) Sentence() string {
	where := "the model endpoint"
	if e.Endpoint != "" {
		where += " " + e.Endpoint
	}
	switch e.Kind {
	case KindUnreachable:
		if e.unknownHost {
			return where + ": its host name does not resolve: is llm.base_url right?"
		}
		return where + " refused the connection: is llm.base_url right?"
	case KindAuth:
		return fmt.Sprintf("%s rejected the API key (%d): check llm.api_key / OPENAI_API_KEY", where, e.StatusCode)
	case KindNotFound:
		return where + " answered 404: " + e.Message
	}
	return ""
}

// fromStatus classifies an HTTP error response by its status code.
func fromStatus(status int, msg string, contextCode bool) *Error {
	e := &Error{StatusCode: status, Message: msg}
	switch {
	case status == http.StatusTooManyRequests:
		e.Kind = KindRateLimit
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		e.Kind = KindAuth
	case status == http.StatusNotFound:
		e.Kind = KindNotFound
	case status == http.StatusRequestTimeout:
		e.Kind = KindTimeout
	case status >= 500:
		e.Kind = KindServer
	case status >= 400 && (contextCode || mentionsContextLength(msg)):
		e.Kind = KindContextLength
	case status >= 400:
		e.Kind = KindBadRequest
	default:
		// A 1xx/3xx that reached us is not something a chat client can use.
		e.Kind = KindMalformedResponse
	}
	return e
}

func isContextLengthCode(e *openai.APIError) bool {
	const code = "context_length_exceeded"
	if c, ok := e.Code.(string); ok && c == code {
		return true
	}
	return e.InnerError != nil && e.InnerError.Code == code
}

// mentionsContextLength recognises servers (vLLM, llama.cpp, proxies) that
// report an oversized prompt only in prose.
func mentionsContextLength(msg string) bool {
	m := strings.ToLower(msg)
	for _, s := range []string{"context_length_exceeded", "maximum context length", "context length", "too many tokens"} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// requestErrorMessage prefers the body, because for a non-JSON error page
// the decode error go-openai wraps says nothing about the failure.
func requestErrorMessage(e *openai.RequestError) string {
	if body := strings.TrimSpace(string(e.Body)); body != "" {
		return body
	}
	if e.Err != nil {
		return e.Err.Error()
	}
	return e.HTTPStatus
}

// isLocalValidation reports errors go-openai raises before sending anything.
func isLocalValidation(err error) bool {
	for _, target := range []error{
		openai.ErrChatCompletionInvalidModel,
		openai.ErrChatCompletionStreamNotSupported,
		openai.ErrContentFieldsMisused,
		openai.ErrReasoningEffortUnsupported,
		openai.ErrReasoningToolsRequireResponses,
		openai.ErrReasoningSamplingUnsupported,
		openai.ErrO1BetaLimitationsMessageTypes,
		openai.ErrO1BetaLimitationsTools,
		openai.ErrO1BetaLimitationsOther,
		openai.ErrReasoningModelMaxTokensDeprecated,
		openai.ErrReasoningModelLimitationsLogprobs,
		openai.ErrReasoningModelLimitationsOther,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// isDecodeError reports a 2xx body that is not JSON (or not the right JSON).
// A bare EOF here means an empty body: transport failures arrive wrapped in
// *url.Error and are matched before this.
func isDecodeError(err error) bool {
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	return errors.As(err, &syntaxErr) || errors.As(err, &typeErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

func truncate(s string, n int) string { return textcut.Head(s, n, "…") }
