package scripted

import (
	"errors"
	"fmt"
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
