package scripted

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"strings"
	"time"

	"codeswarm/llm"
)

// serveFault answers f and returns the status sent.
func (h *Handler) serveFault(w http.ResponseWriter, r *http.Request, idx int, req wireRequest, f Fault) int {
	h.wait(r, time.Duration(f.Delay))
	h.awaitRelease(r, idx)
	if f.Hang {
		h.hang(r)
	}
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	if f.RetryAfterMS != "" {
		w.Header().Set("Retry-After-Ms", f.RetryAfterMS)
	}
	switch {
	case f.EmptyChoices:
		return writeJSON(w, http.StatusOK, completion{
			ID: "chatcmpl-empty", Object: "chat.completion", Created: time.Now().Unix(),
			Model: modelOf(req), Choices: []choice{},
		})
	case f.ContextLength:
		return writeError(w, http.StatusBadRequest, "invalid_request_error", "context_length_exceeded",
			"This model's maximum context length is 128000 tokens. However, your messages resulted in 200000 tokens. "+
				"Please reduce the length of the messages.")
	case f.Body != "":
		status := f.Status
		if status == 0 {
			status = http.StatusOK
		}
		w.Header().Set("Content-Type", sniffContentType(f.Body))
		w.WriteHeader(status)
		_, _ = io.WriteString(w, f.Body)
		return status
	}
	status := f.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	return writeError(w, status, errorType(status), "", fmt.Sprintf("scripted fault: %s", http.StatusText(status)))
}

func sniffContentType(body string) string {
	if t := strings.TrimSpace(body); strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[") {
		return "application/json"
	}
	return http.DetectContentType([]byte(body))
}

func errorType(status int) string {
	switch {
	case status == http.StatusTooManyRequests:
		return "rate_limit_error"
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return "authentication_error"
	case status >= 500:
		return "server_error"
	default:
		return "invalid_request_error"
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) int {
	data, err := json.Marshal(v)
	if err != nil {
		// Only our own types are marshalled; failing here is a bug in this package.
		panic(fmt.Sprintf("scripted: marshal response: %v", err))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(data)
	return status
}

func writeError(w http.ResponseWriter, status int, typ, code, msg string) int {
	e := apiError{Message: msg, Type: typ}
	if code != "" {
		e.Code = &code
	}
	return writeJSON(w, status, errorBody{Error: e})
}

func modelOf(req wireRequest) string {
	if req.Model == "" {
		return "scripted"
	}
	return req.Model
}

// buildCompletion renders reply as an OpenAI chat completion.
func buildCompletion(req wireRequest, body []byte, reply Reply, turn int) completion {
	msg := replyMessage{Role: "assistant"}
	finish := "stop"
	for i, tc := range reply.ToolCalls {
		msg.ToolCalls = append(msg.ToolCalls, wireToolCall{
			ID: fmt.Sprintf("call_%d_%d", turn, i), Type: "function",
			Function: wireFunction(tc),
		})
		finish = "tool_calls"
	}
	if reply.FinishReason != "" {
		finish = reply.FinishReason
	}
	if reply.Content != "" || len(reply.ToolCalls) == 0 {
		content := reply.Content
		msg.Content = &content
	}
	prompt, compl := reply.PromptTokens, reply.CompletionTokens
	if prompt == 0 {
		prompt = promptTokens(req)
	}
	if compl == 0 {
		compl = completionTokens(reply)
	}
	out := completion{
		ID: responseID(body), Object: "chat.completion", Created: time.Now().Unix(),
		Model: modelOf(req), Choices: []choice{{Message: msg, FinishReason: finish}},
		Usage: &usage{PromptTokens: prompt, CompletionTokens: compl, TotalTokens: prompt + compl},
	}
	if reply.CachedPromptTokens > 0 {
		out.Usage.PromptTokensDetails = &promptDetails{CachedTokens: min(reply.CachedPromptTokens, prompt)}
	}
	if reply.OmitUsage {
		out.Usage = nil
	}
	return out
}

// responseID is derived from the body so a retried request gets the same ID.
func responseID(body []byte) string {
	f := fnv.New64a()
	_, _ = f.Write(body)
	return fmt.Sprintf("chatcmpl-%016x", f.Sum64())
}

func promptTokens(req wireRequest) int {
	n := 0
	for _, m := range req.Messages {
		n += 4 + llm.EstimateTokens(m.text()) + llm.EstimateTokens(m.ToolCallID)
		for _, tc := range m.ToolCalls {
			n += 10 + llm.EstimateTokens(tc.ID+tc.Function.Name+tc.Function.Arguments)
		}
	}
	return n
}

func completionTokens(r Reply) int {
	n := llm.EstimateTokens(r.Content)
	for _, tc := range r.ToolCalls {
		n += 10 + llm.EstimateTokens(tc.Name+tc.Arguments)
	}
	return max(n, 1)
}
