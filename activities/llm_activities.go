package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	openai "github.com/sashabaranov/go-openai"
	"go.temporal.io/sdk/activity"

	"codeswarm/internal/transcript"
	"codeswarm/llm"
	"codeswarm/tools"

	"codeswarm/internal/textcut"
)

// Transcript keys. Turn t is the t-th model answer of a conversation.
func keySystem() string               { return "t0000-system" }
func keyUser() string                 { return "t0000-user" }
func keyAssistant(t int) string       { return fmt.Sprintf("t%04d-assistant", t) }
func keyNudge(t int) string           { return fmt.Sprintf("t%04d-nudge", t) }
func keyContinue(t int) string        { return fmt.Sprintf("t%04d-continue", t) }
func keyTool(t, i int) string         { return fmt.Sprintf("t%04d-tool-%02d", t, i) }
func keyRepair(attempt int) string    { return fmt.Sprintf("t%04d-repair", attempt) }
func plannerRef(runID string) ConvRef { return ConvRef{RunID: runID, SubtaskID: "planner"} }

// attemptsBeforeNudge is how many times an empty or malformed answer is
// retried before the loop feeds the model a note and moves on.
const attemptsBeforeNudge = 3

// answer returns the model's answer stored under key, or asks the model (the
// request built from the stored conversation) and stores the answer, made
// into the form the conversation needs by shape (may be nil), before
// returning it, so a retried activity never pays for the same answer twice.
// Model failures come back as *llm.Error for the caller to map.
func (a *Activities) answer(ctx context.Context, ref transcript.Ref, key string,
	build func([]openai.ChatCompletionMessage) openai.ChatCompletionRequest,
	shape func(openai.ChatCompletionChoice, string) openai.ChatCompletionMessage) (transcript.Record, bool, error) {
	recs, err := a.Transcripts.Load(ref)
	if err != nil {
		return transcript.Record{}, false, err
	}
	if r, ok := transcript.Find(recs, key); ok {
		return r, true, nil
	}
	if err := a.stopIfRunClosed(ctx, ref.RunID); err != nil {
		return transcript.Record{}, false, err
	}
	req := build(transcript.Messages(recs))
	resp, err := a.chat(ctx, ref.RunID, req)
	if err != nil {
		return transcript.Record{}, false, err
	}
	choice := resp.Choices[0]
	msg := choice.Message
	if shape != nil {
		msg = shape(choice, key)
	}
	msg.Role = openai.ChatMessageRoleAssistant
	// What the model writes flows into results, commits and shared values:
	// a secret it got hold of in a disguise the scrubber missed and decoded
	// itself stops here.
	msg.Content = a.scrub(msg.Content)
	for i := range msg.ToolCalls {
		msg.ToolCalls[i].Function.Arguments = a.scrub(msg.ToolCalls[i].Function.Arguments)
		if msg.ToolCalls[i].ID == "" {
			msg.ToolCalls[i].ID = defaultCallID(key, i)
		}
		msg.ToolCalls[i].Type = openai.ToolTypeFunction
	}
	u := responseUsage(req, resp)
	rec := transcript.Record{
		Key:                key,
		Message:            msg,
		PromptTokens:       u.PromptTokens,
		CompletionTokens:   u.CompletionTokens,
		CachedPromptTokens: u.CachedPromptTokens,
		FinishReason:       string(choice.FinishReason),
		UsageEstimated:     u.Estimated,
	}
	if err := a.Transcripts.Append(ref, rec); err != nil {
		return transcript.Record{}, false, err
	}
	return rec, false, nil
}

// LLMPermit lets one model call go ahead. It does nothing: it runs on the
// shared LLM queue, whose server-side rate limit (llm.requests_per_second,
// the adaptive cut after a 429) holds for every worker of the cluster, so a
// permit is handed out only as fast as that limit allows. The model call
// itself then runs on the run's host, where its conversation is.
func (a *Activities) LLMPermit(ctx context.Context) error {
	return nil
}

// AgentStepInput names one model turn of a sub-agent conversation.
type AgentStepInput struct {
	Ref          ConvRef `json:"ref"`
	Turn         int     `json:"turn"`
	Model        string  `json:"model"`
	ContextLimit int     `json:"context_limit"`
	// Notes are steering notes (codeswarm tell) the model reads before this
	// turn, appended once as user messages.
	Notes []string `json:"notes,omitempty"`
}

// ToolCallInfo is what the workflow needs of a tool call: the arguments stay
// in the transcript, only a signature travels (for the stuck-loop breaker).
type ToolCallInfo struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Signature string `json:"signature"`
	// Brief is the call in one line for people (ToolBrief): never file
	// contents. Empty in histories recorded before it existed.
	Brief string `json:"brief,omitempty"`
}

// AgentStepResult is kept small on purpose: history must not grow with the
// conversation.
type AgentStepResult struct {
	ToolCalls        []ToolCallInfo `json:"tool_calls,omitempty"`
	Final            string         `json:"final,omitempty"` // final text, when there are no tool calls
	Usage            Usage          `json:"usage"`
	Nudged           bool           `json:"nudged,omitempty"` // the model must answer again: no tools to run, not final
	NudgeReason      string         `json:"nudge_reason,omitempty"`
	Reused           bool           `json:"reused,omitempty"`
	DroppedMessages  int            `json:"dropped_messages,omitempty"`
	TruncatedResults int            `json:"truncated_results,omitempty"`
	// NoRateLimit: no LLM rate limit was in force on this worker's last look
	// (see LLMPace.Limited), so the next turn may call the model without a
	// permit from the shared LLM queue.
	NoRateLimit bool `json:"unpaced,omitempty"`
	// ModelMs is how long the model took to answer (0 when the answer was
	// stored already): the workflow calls a slow model in an activity.
	ModelMs int64 `json:"model_ms,omitempty"`
}

// finalTextCap bounds the final message carried in history and the result.
const finalTextCap = 16 << 10

// AgentStep runs one model turn: load the transcript, fit it into the context
// window, call the model with tools, store the answer.
func (a *Activities) AgentStep(ctx context.Context, in AgentStepInput) (AgentStepResult, error) {
	ref := tref(in.Ref)
	if err := a.appendNotes(ref, in.Turn, in.Notes); err != nil {
		return AgentStepResult{}, err
	}
	var fit llm.FitReport
	began := time.Now()
	rec, reused, err := a.answer(ctx, ref, keyAssistant(in.Turn), func(msgs []openai.ChatCompletionMessage) openai.ChatCompletionRequest {
		// The tool definitions, the system prompt and the instruction come
		// first and never change, and llm.FitBudget cuts the rest only in
		// large steps, so the provider's prompt cache serves most of every
		// request.
		defs := tools.Definitions()
		var fitted []openai.ChatCompletionMessage
		fitted, fit = llm.FitBudget(msgs, in.ContextLimit, llm.Budget{
			Tokens:   a.ContextTokens,
			Overhead: toolTokens(),
		})
		return openai.ChatCompletionRequest{Model: in.Model, Messages: fitted, Tools: defs}
	}, shapeAgentAnswer)
	if err != nil {
		if nudgeable(err) && activity.GetInfo(ctx).Attempt >= attemptsBeforeNudge {
			return a.nudge(ref, in.Turn, err)
		}
		return AgentStepResult{}, llmError(err)
	}
	res, err := a.followUp(ref, in.Turn, rec)
	if err != nil {
		return AgentStepResult{}, err
	}
	res.Reused = reused
	if !reused {
		res.ModelMs = elapsedMs(began)
	}
	res.DroppedMessages, res.TruncatedResults = fit.DroppedMessages, fit.TruncatedResults
	res.NoRateLimit = !a.paced()
	return res, nil
}

// elapsedMs is the milliseconds since began, at least 1: 0 means "not
// measured" (an answer stored already).
func elapsedMs(began time.Time) int64 {
	return max(1, time.Since(began).Milliseconds())
}

func nudgeable(err error) bool {
	var e *llm.Error
	return errors.As(err, &e) && (e.Kind == llm.KindEmptyResponse || e.Kind == llm.KindMalformedResponse)
}

// nudge records an unusable answer as an empty assistant turn followed by a
// note, so the conversation goes on instead of failing the sub-agent.
func (a *Activities) nudge(ref transcript.Ref, turn int, cause error) (AgentStepResult, error) {
	recs := []transcript.Record{
		{
			Key: keyAssistant(turn),
			Message: openai.ChatCompletionMessage{
				Role:    openai.ChatMessageRoleAssistant,
				Content: "(no usable answer)",
			},
		},
		{
			Key: keyNudge(turn),
			Message: openai.ChatCompletionMessage{
				Role:    openai.ChatMessageRoleUser,
				Content: "Your previous answer could not be used (" + cause.Error() + "). Continue the task with tool calls, or finish with a summary ending in a STATUS line.",
			},
		},
	}
	if err := a.Transcripts.Append(ref, recs...); err != nil {
		return AgentStepResult{}, err
	}
	return AgentStepResult{Nudged: true, NudgeReason: NudgeUnusable}, nil
}

func stepResult(r transcript.Record) AgentStepResult {
	res := AgentStepResult{Usage: recUsage(r)}
	for _, tc := range r.Message.ToolCalls {
		res.ToolCalls = append(res.ToolCalls, ToolCallInfo{
			ID:        tc.ID,
			Name:      tc.Function.Name,
			Signature: callSignature(tc.Function.Name, tc.Function.Arguments),
			Brief:     ToolBrief(tc.Function.Name, tc.Function.Arguments),
		})
	}
	if len(res.ToolCalls) == 0 {
		res.Final = capText(r.Message.Content, finalTextCap)
	}
	return res
}

func callSignature(name, args string) string {
	sum := sha256.Sum256([]byte(name + "\x00" + args))
	return name + ":" + hex.EncodeToString(sum[:8])
}

// capText keeps the head and the tail of s within n bytes, UTF-8 safe.
func capText(s string, n int) string {
	return textcut.HeadTail(s, n, func(omitted int) string { return fmt.Sprintf("\n…[%d bytes omitted]…\n", omitted) })
}

// SummarizeInput names a tool result too large for the conversation.
type SummarizeInput struct {
	Ref      ConvRef `json:"ref"`
	Turn     int     `json:"turn"`
	Index    int     `json:"index"`
	ToolName string  `json:"tool_name"`
	CallID   string  `json:"call_id"`
	Model    string  `json:"model"`
}

// SummarizeResult says how the large result was reduced.
type SummarizeResult struct {
	Summarized bool  `json:"summarized"`
	Chars      int   `json:"chars"`
	Usage      Usage `json:"usage"`
}

// Summarize replaces a tool output over llm.SummarizeThresholdChars by a model
// summary focused on errors, warnings and findings; if the model fails, by a
// truncation.
func (a *Activities) Summarize(ctx context.Context, in SummarizeInput) (SummarizeResult, error) {
	ref := tref(in.Ref)
	key := keyTool(in.Turn, in.Index)
	recs, err := a.Transcripts.Load(ref)
	if err != nil {
		return SummarizeResult{}, err
	}
	if r, ok := transcript.Find(recs, key); ok {
		return SummarizeResult{Chars: len(r.Message.Content)}, nil
	}
	raw, err := a.Transcripts.GetBlob(ref, key)
	if err != nil {
		return SummarizeResult{}, fmt.Errorf("read raw tool output: %w", err)
	}
	out := SummarizeResult{}
	content := ""
	resp, err := a.chat(ctx, ref.RunID, llm.SummaryRequest(in.Model, in.ToolName, string(raw)))
	switch {
	case err == nil:
		summary := a.scrub(resp.Choices[0].Message.Content)
		content = fmt.Sprintf("[Summary of %s output (%d chars → %d chars)]\n\n%s", in.ToolName, len(raw), len(summary), summary)
		out.Summarized = true
		out.Usage = responseUsage(llm.SummaryRequest(in.Model, in.ToolName, string(raw)), resp)
	case llmRetryable(err) && activity.GetInfo(ctx).Attempt < attemptsBeforeNudge:
		return SummarizeResult{}, llmError(err)
	default:
		content = llm.TruncateResult(string(raw), llm.SimpleTruncateChars)
	}
	rec := transcript.Record{
		Key: key,
		Message: openai.ChatCompletionMessage{
			Role:       openai.ChatMessageRoleTool,
			Content:    content,
			ToolCallID: in.CallID,
			Name:       in.ToolName,
		},
	}
	if err := a.Transcripts.Append(ref, rec); err != nil {
		return SummarizeResult{}, err
	}
	out.Chars = len(content)
	return out, nil
}

// llmRetryable: a model error of a retryable kind, or any other failure.
func llmRetryable(err error) bool {
	var e *llm.Error
	return !errors.As(err, &e) || e.Retryable()
}

func keyNote(t, i int) string { return fmt.Sprintf("t%04d-note-%02d", t, i) }

// NotePrefix opens a steering note in the conversation.
const NotePrefix = "Note from the user who runs this swarm (codeswarm tell): "

// appendNotes puts a turn's steering notes at the end of the conversation,
// unless the turn's answer is already stored (a retry after the call): then
// they are there already, and a note after the answer would split it from
// its tool results.
func (a *Activities) appendNotes(ref transcript.Ref, turn int, notes []string) error {
	if len(notes) == 0 {
		return nil
	}
	recs, err := a.Transcripts.Load(ref)
	if err != nil {
		return err
	}
	if _, done := transcript.Find(recs, keyAssistant(turn)); done {
		return nil
	}
	out := make([]transcript.Record, len(notes))
	for i, n := range notes {
		out[i] = transcript.Record{
			Key: keyNote(turn, i),
			Message: openai.ChatCompletionMessage{
				Role:    openai.ChatMessageRoleUser,
				Content: NotePrefix + n,
			},
		}
	}
	return a.Transcripts.Append(ref, out...)
}

// toolTokens is the estimated size of the tool definitions every sub-agent
// request carries; they never change, so it is measured once.
var toolTokens = sync.OnceValue(func() int { return llm.EstimateToolTokens(tools.Definitions()) })
