package llm

import (
	"fmt"

	openai "github.com/sashabaranov/go-openai"
)

// SummaryMarker is placed in the system message of every summarisation
// request so servers (and the scripted test server) can tell it apart from
// planner and sub-agent requests.
const SummaryMarker = "[codeswarm:summarize]"

// summaryInputChars bounds what is sent for summarising: past this size the
// request itself would overflow most context windows.
const summaryInputChars = 200_000

// SummaryRequest builds the request that asks model to summarise a large
// output of toolName, using the seed's prompt. content is cut to a safe size.
func SummaryRequest(model, toolName, content string) openai.ChatCompletionRequest {
	return openai.ChatCompletionRequest{
		Model: model,
		Messages: []openai.ChatCompletionMessage{
			{
				Role: openai.ChatMessageRoleSystem,
				Content: "You condense tool output for a coding agent that cannot read all of it. " +
					SummaryMarker,
			},
			{
				Role: openai.ChatMessageRoleUser,
				Content: fmt.Sprintf("Summarize the key information from this %s output. "+
					"Focus on: errors, warnings, important findings, and actionable items. "+
					"Be concise but thorough.\n\n%s", toolName, TruncateResult(content, summaryInputChars)),
			},
		},
	}
}
