package scripted

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
)

// validate applies the message-order rules a strict server enforces: every
// tool message answers a call of the assistant message right before its
// run of tool messages, and every such call gets exactly one answer.
func validate(msgs []wireMessage) error {
	if len(msgs) == 0 {
		return errors.New("'messages' must contain at least one message")
	}
	var pending []string // call IDs of the last assistant message not yet answered
	for i, m := range msgs {
		if m.Role == "tool" {
			j := slices.Index(pending, m.ToolCallID)
			if j < 0 {
				return fmt.Errorf("messages[%d]: tool message with tool_call_id %q does not answer "+
					"a tool call of a preceding assistant message", i, m.ToolCallID)
			}
			pending = slices.Delete(pending, j, j+1)
			continue
		}
		if len(pending) > 0 {
			return unanswered(i, pending)
		}
		for _, tc := range m.ToolCalls {
			pending = append(pending, tc.ID)
		}
	}
	if len(pending) > 0 {
		return unanswered(len(msgs), pending)
	}
	return nil
}

func unanswered(i int, pending []string) error {
	return fmt.Errorf("messages[%d]: an assistant message with 'tool_calls' must be followed by "+
		"tool messages responding to each 'tool_call_id'; missing %q", i, pending)
}

// rejectedParam returns the first of the script's RejectParams present in
// the request body, or "".
func (h *Handler) rejectedParam(body []byte) string {
	if len(h.script.RejectParams) == 0 {
		return ""
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil {
		return ""
	}
	for _, p := range h.script.RejectParams {
		if _, ok := fields[p]; ok {
			return p
		}
	}
	return ""
}

// writeParamError answers as OpenAI does for a parameter the model rejects.
func writeParamError(w http.ResponseWriter, param string) int {
	code := "unsupported_parameter"
	return writeJSON(w, http.StatusBadRequest, errorBody{Error: apiError{
		Message: fmt.Sprintf("Unsupported parameter: '%s' is not supported with this model.", param),
		Type:    "invalid_request_error", Param: &param, Code: &code,
	}})
}
