package activities

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	openai "github.com/sashabaranov/go-openai"

	"codeswarm/internal/transcript"
	"codeswarm/llm"
	"codeswarm/tools"
)

// Why an AgentStep answer was not used as is (AgentStepResult.NudgeReason).
const (
	NudgeUnusable = "unusable" // empty or malformed response, after retries
	NudgeLength   = "length"   // cut off by the token limit: asked to continue
	NudgeFormat   = "format"   // neither a tool call nor a final STATUS line
)

// maxFormatNudges bounds the reminders of the answer format in one
// conversation: past it, an answer without a STATUS line is final (and
// fails the sub-agent), so a model that never complies cannot loop.
const maxFormatNudges = 3

// Notes added to the conversation after an answer the loop cannot use.
const (
	continueNote = "Your previous answer was cut off by the output token limit. Continue exactly where it stopped. " +
		"If you were writing a tool call, it was incomplete and was not run: send it again, smaller " +
		"(for example several edits instead of one large write)."
	formatNote = "Your previous answer had no tool call and no STATUS line. Either call a tool through the tool-calling " +
		"interface, or, if the subtask is finished, reply with a short summary whose last line is " +
		"STATUS: completed, STATUS: blocked or STATUS: pending."
)

func defaultCallID(key string, i int) string { return fmt.Sprintf("call_%s_%d", key, i) }

// MaxCallsPerReply bounds the tool calls of one model answer that are run:
// each is an activity and an event in the sub-agent's history, so an answer
// of 10,000 calls would otherwise fill it in one turn. The rest are dropped
// from the answer, which says so, and the model sends them again.
const MaxCallsPerReply = 64

// shapeAgentAnswer makes a sub-agent answer usable in the conversation:
// tool calls written as text become real tool calls (with deterministic
// IDs), the tool calls of an answer cut off by the token limit are dropped
// when any is incomplete, since none of them can be run, and calls past
// MaxCallsPerReply are dropped with a note in the answer.
func shapeAgentAnswer(c openai.ChatCompletionChoice, key string) openai.ChatCompletionMessage {
	msg := shapeCalls(c, key)
	if n := len(msg.ToolCalls); n > MaxCallsPerReply {
		msg.ToolCalls = msg.ToolCalls[:MaxCallsPerReply:MaxCallsPerReply]
		msg.Content = strings.TrimSpace(msg.Content + fmt.Sprintf("\n\n[codeswarm: this answer had %d tool calls; only the first %d were run, "+
			"the other %d were dropped: send at most %d tool calls per answer]", n, MaxCallsPerReply, n-MaxCallsPerReply, MaxCallsPerReply))
	}
	return msg
}

func shapeCalls(c openai.ChatCompletionChoice, key string) openai.ChatCompletionMessage {
	msg := c.Message
	if c.FinishReason == openai.FinishReasonLength && slices.ContainsFunc(msg.ToolCalls, incompleteCall) {
		msg.ToolCalls = nil
		return msg
	}
	if len(msg.ToolCalls) > 0 {
		return msg
	}
	calls, rest, ok := llm.ParseTextCalls(msg.Content, knownTool)
	if !ok {
		return msg
	}
	msg.Content = rest
	for i, tc := range calls {
		msg.ToolCalls = append(msg.ToolCalls, openai.ToolCall{
			ID:       defaultCallID(key, i),
			Type:     openai.ToolTypeFunction,
			Function: openai.FunctionCall{Name: tc.Name, Arguments: tc.Arguments},
		})
	}
	return msg
}

func incompleteCall(tc openai.ToolCall) bool { return !json.Valid([]byte(tc.Function.Arguments)) }

func knownTool(name string) bool {
	return slices.ContainsFunc(tools.Definitions(), func(t openai.Tool) bool { return t.Function != nil && t.Function.Name == name })
}

// followUp turns a stored answer into the step's result. An answer cut off
// by the token limit, or one that is neither a tool call nor a final answer,
// gets a note asking for the next answer instead of ending the sub-agent.
// Notes are keyed by turn, so a retried step finds and reuses its own.
func (a *Activities) followUp(ref transcript.Ref, turn int, rec transcript.Record) (AgentStepResult, error) {
	res := stepResult(rec)
	if len(res.ToolCalls) > 0 {
		return res, nil
	}
	recs, err := a.Transcripts.Load(ref)
	if err != nil {
		return AgentStepResult{}, err
	}
	var note transcript.Record
	switch {
	case rec.FinishReason == string(openai.FinishReasonLength):
		res.NudgeReason = NudgeLength
		note = userNote(keyContinue(turn), continueNote)
	case ParseStatus(rec.Message.Content) != "":
		return res, nil
	case hasKey(recs, keyNudge(turn)) || countNudges(recs) < maxFormatNudges:
		res.NudgeReason = NudgeFormat
		note = userNote(keyNudge(turn), formatNote)
	default:
		return res, nil
	}
	res.Nudged, res.Final = true, ""
	return res, a.Transcripts.Append(ref, note)
}

func userNote(key, text string) transcript.Record {
	return transcript.Record{
		Key:     key,
		Message: openai.ChatCompletionMessage{Role: openai.ChatMessageRoleUser, Content: text},
	}
}

func hasKey(recs []transcript.Record, key string) bool {
	_, ok := transcript.Find(recs, key)
	return ok
}

func countNudges(recs []transcript.Record) int {
	n := 0
	for _, r := range recs {
		if strings.HasSuffix(r.Key, "-nudge") {
			n++
		}
	}
	return n
}
