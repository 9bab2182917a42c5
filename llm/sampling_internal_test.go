package llm

import (
	"net/http"
	"testing"

	openai "github.com/sashabaranov/go-openai"
)

func TestRejectedParamFromMessage(t *testing.T) {
	tests := []struct{ msg, want string }{
		{"Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.", "max_tokens"},
		{"Unsupported value: 'temperature' does not support 0.7 with this model.", "temperature"},
		{`[{'type': 'extra_forbidden', 'loc': ('body', "max_completion_tokens"), 'msg': 'Extra inputs are not permitted'}]`, "max_completion_tokens"},
		{"temperature is not supported for this model", "temperature"},
		{"messages[2]: tool message does not answer a tool call", ""},
		{"max_tokens must be at most 4096", ""},
	}
	for _, tc := range tests {
		err := &openai.APIError{HTTPStatusCode: http.StatusBadRequest, Message: tc.msg}
		if got := rejectedParam(err); got != tc.want {
			t.Errorf("rejectedParam(%q) = %q, want %q", tc.msg, got, tc.want)
		}
	}
	if got := rejectedParam(&openai.APIError{HTTPStatusCode: http.StatusInternalServerError, Message: "temperature is not supported"}); got != "" {
		t.Errorf("a 500 named a parameter: %q", got)
	}
}

func TestIsReasoningModel(t *testing.T) {
	for model, want := range map[string]bool{
		"o1": true, "o3-mini": true, "o4-mini": true, "gpt-5": true, "gpt-5-mini": true, "openai/o3": true, "GPT-5.1": true,
		"gpt-4.1-mini": false, "gpt-4o": false, "qwen2.5-coder:32b": false, "llama3.1": false, "omni": false,
	} {
		if got := IsReasoningModel(model); got != want {
			t.Errorf("IsReasoningModel(%q) = %v, want %v", model, got, want)
		}
	}
}
