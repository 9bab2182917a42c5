package llm

import (
	"errors"
	"math"
	"net/http"
	"path"
	"strings"
	"sync"

	openai "github.com/sashabaranov/go-openai"
)

// Reasoning modes of Sampling.Reasoning (config llm.reasoning).
const (
	ReasoningAuto = "auto" // detect reasoning models from the model name
	ReasoningOn   = "on"   // treat every model as a reasoning model
	ReasoningOff  = "off"  // treat every model as a classic chat model
)

// ReasoningModes lists the accepted values of llm.reasoning.
func ReasoningModes() []string { return []string{ReasoningAuto, ReasoningOn, ReasoningOff} }

// Sampling is what the client adds to every request it sends.
type Sampling struct {
	// Temperature is sent to classic chat models; nil sends none.
	Temperature *float32
	// MaxTokens bounds the answer: max_tokens for classic chat models,
	// max_completion_tokens for reasoning models. 0 sends neither.
	MaxTokens int
	// Reasoning is one of ReasoningModes(); "" means ReasoningAuto.
	Reasoning string
}

// reasoningPrefixes are the model families that reject temperature and
// max_tokens (OpenAI's o-series and gpt-5 and later). go-openai refuses such
// requests locally for the same prefixes.
var reasoningPrefixes = []string{"o1", "o3", "o4", "gpt-5", "gpt-6"}

// IsReasoningModel reports whether model belongs to a reasoning family. A
// provider prefix ("openai/o3-mini", as routers name models) is ignored.
func IsReasoningModel(model string) bool {
	base := strings.ToLower(path.Base(model))
	for _, p := range reasoningPrefixes {
		if strings.HasPrefix(base, p) {
			return true
		}
	}
	return false
}

// quirks say what to send to a model: reasoning comes from the model name
// or the setting, the rest from 400 answers that named a parameter.
type quirks struct {
	reasoning          bool
	noTemperature      bool
	noMaxTokens        bool // the server rejected max_tokens
	noCompletionTokens bool // the server rejected max_completion_tokens
}

// quirkCache remembers quirks per model for the life of the process, so a
// rejected parameter costs one 400 per model, not one per request.
type quirkCache struct {
	mu     sync.Mutex
	byName map[string]quirks
}

func (b *quirkCache) get(model string, s Sampling) quirks {
	b.mu.Lock()
	defer b.mu.Unlock()
	if q, ok := b.byName[model]; ok {
		return q
	}
	return quirks{reasoning: s.Reasoning == ReasoningOn || (s.Reasoning != ReasoningOff && IsReasoningModel(model))}
}

func (b *quirkCache) set(model string, q quirks) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.byName == nil {
		b.byName = map[string]quirks{}
	}
	b.byName[model] = q
}

// apply returns req with the sampling settings q allows. The caller sets
// no sampling fields of its own.
func (s Sampling) apply(req openai.ChatCompletionRequest, q quirks) openai.ChatCompletionRequest {
	if q.reasoning || q.noTemperature {
		req.Temperature = 0
	} else if s.Temperature != nil && req.Temperature == 0 {
		// go-openai omits a zero temperature; the smallest float32 is sent
		// instead and every server treats it as 0.
		req.Temperature = max(*s.Temperature, math.SmallestNonzeroFloat32)
	}
	if s.MaxTokens <= 0 {
		return req
	}
	completion := q.reasoning
	if (completion && q.noCompletionTokens) || (!completion && q.noMaxTokens) {
		completion = !completion
	}
	switch {
	case completion && !q.noCompletionTokens:
		req.MaxCompletionTokens = s.MaxTokens
	case !completion && !q.noMaxTokens:
		//lint:ignore SA1019 vLLM, Ollama and most compatible servers know only max_tokens
		req.MaxTokens = s.MaxTokens
	}
	return req
}

// Parameters a server may reject by name.
const (
	paramTemperature         = "temperature"
	paramMaxTokens           = "max_tokens"
	paramMaxCompletionTokens = "max_completion_tokens"
)

// rejectedParam names the sampling parameter err says the model does not
// accept, or "". It knows go-openai's local checks of reasoning models and
// a 400 answer that names the parameter in its "param" field or message.
func rejectedParam(err error) string {
	switch {
	case errors.Is(err, openai.ErrReasoningModelMaxTokensDeprecated):
		return paramMaxTokens
	case errors.Is(err, openai.ErrReasoningModelLimitationsOther), errors.Is(err, openai.ErrReasoningSamplingUnsupported):
		return paramTemperature
	}
	var apiErr *openai.APIError
	if !errors.As(err, &apiErr) || apiErr.HTTPStatusCode != http.StatusBadRequest {
		return ""
	}
	params := []string{paramTemperature, paramMaxTokens, paramMaxCompletionTokens}
	if apiErr.Param != nil {
		for _, p := range params {
			if *apiErr.Param == p {
				return p
			}
		}
	}
	return firstUnsupported(apiErr.Message, params)
}

// firstUnsupported returns the parameter msg names first, if msg says
// something is unsupported: OpenAI writes "Unsupported parameter:
// 'max_tokens' is not supported with this model. Use
// 'max_completion_tokens' instead." — the first name is the rejected one.
func firstUnsupported(msg string, params []string) string {
	m := strings.ToLower(msg)
	if !saysUnsupported(m) {
		return ""
	}
	best, at := "", len(m)
	for _, p := range params {
		for _, form := range []string{"'" + p + "'", "\"" + p + "\"", "`" + p + "`", p + " "} {
			if i := strings.Index(m, form); i >= 0 && i < at {
				best, at = p, i
			}
		}
	}
	return best
}

func saysUnsupported(m string) bool {
	for _, w := range []string{"unsupported", "not supported", "does not support", "unrecognized", "not allowed", "extra inputs", "unknown parameter"} {
		if strings.Contains(m, w) {
			return true
		}
	}
	return false
}

// without returns q changed so that param is no longer sent, and whether
// that changed anything (if not, retrying cannot fix the request).
func (q quirks) without(param string) (quirks, bool) {
	old := q
	switch param {
	case paramTemperature:
		q.noTemperature = true
	case paramMaxTokens:
		q.noMaxTokens = true
	case paramMaxCompletionTokens:
		q.noCompletionTokens = true
	}
	return q, q != old
}
