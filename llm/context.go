package llm

import (
	"fmt"
	"regexp"
	"strings"

	openai "github.com/sashabaranov/go-openai"

	"codeswarm/internal/textcut"
)

// Context budget constants, ported from the seed executor.
const (
	// CharsPerToken is the conservative bytes-per-token ratio of estimates.
	CharsPerToken = 3.5
	// SimpleTruncateChars is the size a large tool result is cut to.
	SimpleTruncateChars = 6000
	// SummarizeThresholdChars is the result size above which a tool result
	// is summarised by the model instead of cut.
	SummarizeThresholdChars = 50000
	// ResponseReserveTokens is kept free for the model's answer.
	ResponseReserveTokens = 8192
	// TruncationThreshold is the share of the context limit we fill at most.
	TruncationThreshold = 0.85
)

// maxToolResultTokens is the size above which FitContext cuts a tool result.
const maxToolResultTokens = 2000

// keepHead and keepTail are the messages FitContext always keeps: the system
// prompt with the task, and the most recent exchange.
const (
	keepHead = 2
	keepTail = 4
)

// EstimateTokens estimates the tokens of s as ceil(len(s)/3.5).
func EstimateTokens(s string) int {
	// Integer form of ceil(n / 3.5) avoids float rounding at exact multiples.
	return (2*len(s) + 6) / 7
}

// EstimateMessageTokens estimates one message: 4 for the role, the content,
// each tool call (id + name + arguments + 10) and, for a tool result, its
// tool_call_id + 6.
func EstimateMessageTokens(m openai.ChatCompletionMessage) int {
	tokens := 4 + EstimateTokens(m.Content) + EstimateTokens(m.ReasoningContent)
	for _, p := range m.MultiContent {
		if p.Type == openai.ChatMessagePartTypeText {
			tokens += EstimateTokens(p.Text)
		} else {
			tokens += 2000 // images are expensive; the seed charges a flat 2000
		}
	}
	for _, tc := range m.ToolCalls {
		tokens += EstimateTokens(tc.ID) + EstimateTokens(tc.Function.Name) +
			EstimateTokens(tc.Function.Arguments) + 10
	}
	if m.Role == openai.ChatMessageRoleTool {
		tokens += EstimateTokens(m.ToolCallID) + 6
	}
	return tokens
}

func estimateAll(msgs []openai.ChatCompletionMessage) int {
	total := 0
	for _, m := range msgs {
		total += EstimateMessageTokens(m)
	}
	return total
}

// TruncateResult keeps content within about maxChars bytes: the first two
// thirds of the budget and the last third, cut at line breaks when there
// are any and never inside a UTF-8 sequence, joined by a marker saying how
// much was left out. The end of an output is where a build or test says
// what failed, so it is never dropped, and a final "exit code: N" line
// (the bash tool's last line) is always kept whole.
func TruncateResult(content string, maxChars int) string {
	if len(content) <= maxChars {
		return content
	}
	body, last := splitExitLine(content)
	budget := max(maxChars-len(last), 0)
	head := cutHead(body, budget*2/3)
	tail := cutTail(body[len(head):], budget-len(head))
	omitted := len(body) - len(head) - len(tail)
	return head + fmt.Sprintf("\n[… %d chars omitted …]\n", omitted) + tail + last
}

// exitLine is the bash tool's final line.
var exitLine = regexp.MustCompile(`^exit code: -?[0-9]+$`)

// splitExitLine splits off a final "exit code: N" line, with the newline
// before it.
func splitExitLine(s string) (body, last string) {
	i := strings.LastIndexByte(s, '\n')
	if i >= 0 && exitLine.MatchString(s[i+1:]) {
		return s[:i], s[i:]
	}
	return s, ""
}

// cutHead and cutTail keep whole lines where they can (textcut).
func cutHead(s string, n int) string { return textcut.LinePrefix(s, n) }

func cutTail(s string, n int) string { return textcut.LineSuffix(s, n) }

// FitReport says what FitContext did.
type FitReport struct {
	Before, After    int // estimated tokens
	TruncatedResults int // tool results cut to SimpleTruncateChars
	DroppedMessages  int // messages removed from the middle
}

// FitContext returns msgs shrunk to fit a model with contextLimit tokens,
// leaving TruncationThreshold headroom and ResponseReserveTokens for the
// answer. First it cuts tool results over 2000 tokens; if that is not
// enough and there are more than 6 messages it drops the middle, keeping
// the first 2 and the last 4 and a note naming the tools used in what was
// dropped. Unlike the seed, it never splits an assistant message with tool
// calls from its tool results, which strict servers reject. The input slice
// is not modified.
func FitContext(msgs []openai.ChatCompletionMessage, contextLimit int) ([]openai.ChatCompletionMessage, FitReport) {
	out := append([]openai.ChatCompletionMessage(nil), msgs...)
	rep := FitReport{Before: estimateAll(out)}
	target := int(float64(contextLimit)*TruncationThreshold) - ResponseReserveTokens
	if rep.Before <= target {
		rep.After = rep.Before
		return out, rep
	}
	rep.TruncatedResults = truncateToolResults(out)
	if estimateAll(out) > target && len(out) > keepHead+keepTail {
		out, rep.DroppedMessages = dropMiddle(out)
	}
	rep.After = estimateAll(out)
	return out, rep
}

// truncateToolResults cuts oversized tool results in place (msgs is already
// a copy) and returns how many it cut.
func truncateToolResults(msgs []openai.ChatCompletionMessage) int {
	n := 0
	for i := range msgs {
		m := &msgs[i]
		if m.Role != openai.ChatMessageRoleTool || EstimateTokens(m.Content) <= maxToolResultTokens {
			continue
		}
		if cut := TruncateResult(m.Content, SimpleTruncateChars); len(cut) < len(m.Content) {
			m.Content = cut
			n++
		}
	}
	return n
}

// dropMiddle removes whole blocks between the kept head and tail and puts a
// note in their place. It returns the new slice and the messages dropped.
func dropMiddle(msgs []openai.ChatCompletionMessage) ([]openai.ChatCompletionMessage, int) {
	blocks := toolBlocks(msgs)
	headEnd, tailStart := 0, len(msgs)
	b := 0
	for ; b < len(blocks) && headEnd < keepHead; b++ {
		headEnd = blocks[b].end
	}
	for e := len(blocks) - 1; e >= b && len(msgs)-tailStart < keepTail; e-- {
		tailStart = blocks[e].start
	}
	if tailStart <= headEnd {
		return msgs, 0
	}
	dropped := msgs[headEnd:tailStart]
	out := make([]openai.ChatCompletionMessage, 0, headEnd+1+len(msgs)-tailStart)
	out = append(out, msgs[:headEnd]...)
	out = append(out, openai.ChatCompletionMessage{
		Role:    openai.ChatMessageRoleUser,
		Content: truncationNote(dropped),
	})
	out = append(out, msgs[tailStart:]...)
	return out, len(dropped)
}

// block is a half-open range of messages that must be kept or dropped
// together: an assistant message with tool calls and the tool results that
// follow it, or any single other message.
type block struct{ start, end int }

func toolBlocks(msgs []openai.ChatCompletionMessage) []block {
	var blocks []block
	for i := 0; i < len(msgs); {
		j := i + 1
		if msgs[i].Role == openai.ChatMessageRoleAssistant && len(msgs[i].ToolCalls) > 0 {
			for j < len(msgs) && msgs[j].Role == openai.ChatMessageRoleTool {
				j++
			}
		}
		blocks = append(blocks, block{start: i, end: j})
		i = j
	}
	return blocks
}

// truncationNote tells the model what it lost, as the seed does.
func truncationNote(dropped []openai.ChatCompletionMessage) string {
	var names []string
	seen := map[string]bool{}
	for _, m := range dropped {
		for _, tc := range m.ToolCalls {
			if !seen[tc.Function.Name] {
				seen[tc.Function.Name] = true
				names = append(names, tc.Function.Name)
			}
		}
	}
	note := fmt.Sprintf("[Context truncated: %d earlier messages removed to fit context window]", len(dropped))
	if len(names) > 0 {
		note += "\nTools used in truncated history: " + strings.Join(names, ", ")
	}
	return note
}
