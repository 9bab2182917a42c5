// Package llm wraps an OpenAI-compatible Chat Completions API for codeswarm:
// one HTTP request per call, failures classified into *Error (Temporal owns
// retries, so the client never retries), and pure helpers that keep a
// conversation inside a model's context window.
package llm

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"codeswarm/internal/secret"
)

// Options configure a Client.
type Options struct {
	BaseURL    string        // e.g. "https://api.openai.com/v1"; empty means OpenAI's
	APIKey     string        // sent as a bearer token; may be empty for local servers
	Timeout    time.Duration // per request; 0 means only the caller's context bounds it
	HTTPClient *http.Client  // optional; copied, never modified
	Sampling   Sampling      // added to every request
	// Secrets scrubs error messages; nil scrubs APIKey (and its encodings).
	Secrets *secret.Scrubber
}

// Client sends chat completion requests. It is safe for concurrent use.
type Client struct {
	api      *openai.Client
	secrets  *secret.Scrubber
	endpoint string // the chat completions URL, credentials redacted, for error hints
	baseURL  string // llm.base_url, credentials redacted, for plain sentences
	timeout  time.Duration
	now      func() time.Time
	sampling Sampling
	quirks   quirkCache
}

// New builds a Client from opts.
func New(opts Options) *Client {
	cfg := openai.DefaultConfig(opts.APIKey)
	if opts.BaseURL != "" {
		cfg.BaseURL = opts.BaseURL
	}
	cfg.HTTPClient = wrapHTTPClient(opts.HTTPClient)
	return &Client{
		api:      openai.NewClientWithConfig(cfg),
		secrets:  cmp.Or(opts.Secrets, secret.New(opts.APIKey)),
		endpoint: redactURL(strings.TrimRight(cfg.BaseURL, "/") + "/chat/completions"),
		baseURL:  redactURL(strings.TrimRight(cfg.BaseURL, "/")),
		timeout:  opts.Timeout,
		now:      time.Now,
		sampling: opts.Sampling,
	}
}

// Timeout is the per-request timeout (0: none).
func (c *Client) Timeout() time.Duration { return c.timeout }

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable base URL)"
	}
	return u.Redacted()
}

// maxParamFallbacks bounds the re-sends after a rejected sampling
// parameter: each of the three can be dropped once.
const maxParamFallbacks = 3

// Chat sends req with the client's sampling settings. Every failure is an
// *Error; a response without choices is *Error{Kind: KindEmptyResponse}.
// When the server (or go-openai's local check) rejects a sampling parameter
// for the model, Chat sends the request again without it and remembers that
// for the model; a rejected request is not a paid answer, so this costs
// nothing. Otherwise it sends exactly one HTTP request.
func (c *Client) Chat(ctx context.Context, req openai.ChatCompletionRequest) (openai.ChatCompletionResponse, error) {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	q := c.quirks.get(req.Model, c.sampling)
	for fallbacks := 0; ; fallbacks++ {
		x := &exchange{}
		resp, err := c.api.CreateChatCompletion(withExchange(ctx, x), c.sampling.apply(req, q))
		if err == nil {
			return c.checkChoices(resp)
		}
		next, changed := q.without(rejectedParam(err))
		if !changed || fallbacks == maxParamFallbacks {
			return openai.ChatCompletionResponse{}, c.classify(err, x)
		}
		q = next
		c.quirks.set(req.Model, q)
	}
}

func (c *Client) checkChoices(resp openai.ChatCompletionResponse) (openai.ChatCompletionResponse, error) {
	if len(resp.Choices) == 0 {
		return openai.ChatCompletionResponse{}, &Error{
			Kind:       KindEmptyResponse,
			StatusCode: http.StatusOK,
			Message:    "response has no choices",
		}
	}
	return resp, nil
}

func (c *Client) classify(err error, x *exchange) *Error {
	e := classifyScrubbed(err, c.secrets)
	sent, header := x.result()
	if !sent && e.Kind == KindNetwork && e.cause == nil {
		// go-openai refused the request before sending it (e.g. a body that
		// does not marshal): retrying the same request cannot help.
		e.Kind = KindBadRequest
	}
	if e.StatusCode != 0 {
		e.RetryAfter = retryAfter(header, c.now())
	}
	e.Endpoint = c.baseURL
	if e.Kind == KindNotFound {
		// A wrong base URL (often a missing /v1) and an unknown model both
		// answer 404: say where we looked so the user can tell which.
		e.Message += fmt.Sprintf(" (POST %s; check llm.base_url, which usually ends in /v1, and llm.model)", c.endpoint)
	}
	return e
}

// Identity names what of the client, beyond a request's messages and
// model, decides the answer: the endpoint (credentials redacted) and the
// sampling settings. The result cache keys on it. A nil client has none.
func (c *Client) Identity() string {
	if c == nil {
		return ""
	}
	temp := "unset"
	if t := c.sampling.Temperature; t != nil {
		temp = strconv.FormatFloat(float64(*t), 'g', -1, 32)
	}
	return fmt.Sprintf("%s temperature=%s max_tokens=%d reasoning=%s",
		c.baseURL, temp, c.sampling.MaxTokens, cmp.Or(c.sampling.Reasoning, ReasoningAuto))
}
