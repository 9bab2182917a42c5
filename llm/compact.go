package llm

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	openai "github.com/sashabaranov/go-openai"
)

// Budget bounds the conversation sent with every call of a sub-agent
// (llm.context_tokens), so that prompt tokens per call stay flat instead of
// growing with the steps, and so that what is sent stays cacheable by the
// provider's automatic prefix caching.
type Budget struct {
	// Tokens is the most a request may carry, messages and Overhead
	// together (estimated); 0: no budget, only the model's limit applies.
	Tokens int
	// Overhead is what every request carries besides its messages: the
	// tool definitions (EstimateToolTokens).
	Overhead int
	// KeepResults is how many of the most recent tool results a cut keeps
	// whole; 0 is DefaultKeepResults.
	KeepResults int
}

// DefaultKeepResults is the number of recent tool results a cut keeps whole.
const DefaultKeepResults = 8

// EstimateToolTokens estimates the tokens of the tool definitions of a
// request, from their JSON.
func EstimateToolTokens(tools []openai.Tool) int {
	if len(tools) == 0 {
		return 0
	}
	b, err := json.Marshal(tools)
	if err != nil {
		return 0
	}
	return EstimateTokens(string(b))
}

// FitBudget bounds msgs by b (Compact), then by the model's context limit
// (FitContext, as without a budget). A budget above the model's limit is
// lowered to it, so that the model's limit is met by Compact's stable cuts
// rather than by FitContext's, which move with every call.
func FitBudget(msgs []openai.ChatCompletionMessage, contextLimit int, b Budget) ([]openai.ChatCompletionMessage, FitReport) {
	if b.Tokens <= 0 {
		return FitContext(msgs, contextLimit)
	}
	if target := int(float64(contextLimit)*TruncationThreshold) - ResponseReserveTokens; contextLimit > 0 && target > 0 && target < b.Tokens {
		b.Tokens = target
	}
	out, rep := Compact(msgs, b)
	out, fit := FitContext(out, contextLimit)
	rep.After = fit.After
	rep.TruncatedResults += fit.TruncatedResults
	rep.DroppedMessages += fit.DroppedMessages
	return out, rep
}

// Compact keeps a conversation within b.Tokens while keeping what it sends
// cacheable across calls.
//
// The first keepHead messages (the system prompt and the instruction: with
// the tool definitions, the stable prefix) are never changed. Past them the
// conversation is cut in large steps, never a little at every call: when a
// request would pass the budget, every tool result but the
// b.KeepResults most recent is replaced by a stub naming the tool and the
// size of its output; if that leaves more than half the budget, the oldest
// exchanges are dropped too, replaced by one note that sums up what they
// did (the seed's truncation note: how many messages, which tools, which
// paths), until half the budget is left. The next cut comes only after the
// conversation has grown by half the budget again, and between two cuts
// every request starts with the previous request's messages, byte for byte.
//
// The cuts are not stored: they are found again at every call by replaying
// the conversation's growth exchange by exchange, which gives the same cuts
// for the same messages, so a retried or resumed step sends what the
// first attempt sent. An assistant message is never split from its tool
// results, and the most recent exchange is always kept whole. The input
// slice is not modified.
func Compact(msgs []openai.ChatCompletionMessage, b Budget) ([]openai.ChatCompletionMessage, FitReport) {
	// The conversation only grows, so one that fits whole never needed a
	// cut on its way here: no replay (the common case, every call until
	// the first cut).
	if total := b.Overhead + estimateAll(msgs); b.Tokens <= 0 || total <= b.Tokens {
		return append([]openai.ChatCompletionMessage(nil), msgs...), FitReport{Before: total, After: total}
	}
	c := newCompactor(msgs, b)
	rep := FitReport{Before: b.Overhead + c.full(0, len(msgs))}
	if b.Tokens <= 0 || len(msgs) <= keepHead {
		rep.After = rep.Before
		return append([]openai.ChatCompletionMessage(nil), msgs...), rep
	}
	for _, bl := range c.blocks {
		if c.size(bl.end) > b.Tokens {
			c.cut(bl.end)
		}
	}
	out := c.render()
	rep.After = b.Overhead + estimateAll(out)
	rep.DroppedMessages = c.drop - keepHead
	rep.TruncatedResults = c.stubbed()
	return out, rep
}

// compactor replays a conversation's growth to place its two cuts: tool
// results in [keepHead, stub) are stubbed, messages in [keepHead, drop) are
// replaced by a note (drop ≤ stub).
type compactor struct {
	msgs       []openai.ChatCompletionMessage
	b          Budget
	blocks     []block // of msgs[keepHead:], with absolute indexes
	fullSum    []int   // fullSum[i]: estimated tokens of msgs[:i]
	stubSum    []int   // the same with every tool result stubbed
	stubText   []string
	head       int
	stub, drop int
	note       noteState
	noteTokens int
}

func newCompactor(msgs []openai.ChatCompletionMessage, b Budget) *compactor {
	if b.KeepResults <= 0 {
		b.KeepResults = DefaultKeepResults
	}
	c := &compactor{msgs: msgs, b: b, fullSum: make([]int, len(msgs)+1), stubSum: make([]int, len(msgs)+1),
		stubText: make([]string, len(msgs))}
	names := map[string]string{} // tool call ID → tool name
	for i, m := range msgs {
		for _, tc := range m.ToolCalls {
			names[tc.ID] = tc.Function.Name
		}
		full := EstimateMessageTokens(m)
		stub := full
		if i >= keepHead && m.Role == openai.ChatMessageRoleTool {
			name := m.Name
			if name == "" {
				name = names[m.ToolCallID]
			}
			c.stubText[i] = resultStub(name, len(m.Content))
			s := m
			s.Content = c.stubText[i]
			stub = min(full, EstimateMessageTokens(s))
			if stub == full {
				c.stubText[i] = "" // already as small as its stub: kept
			}
		}
		c.fullSum[i+1] = c.fullSum[i] + full
		c.stubSum[i+1] = c.stubSum[i] + stub
	}
	c.head = min(keepHead, len(msgs))
	c.stub, c.drop = c.head, c.head
	for _, bl := range toolBlocks(msgs[c.head:]) {
		c.blocks = append(c.blocks, block{start: bl.start + c.head, end: bl.end + c.head})
	}
	return c
}

// resultStub replaces an old tool result.
func resultStub(tool string, chars int) string {
	if tool == "" {
		tool = "tool"
	}
	return fmt.Sprintf("[earlier %s result elided to save context: %d chars]", tool, chars)
}

func (c *compactor) full(from, to int) int { return c.fullSum[to] - c.fullSum[from] }

// size is the estimated tokens of a request whose conversation is msgs[:end].
func (c *compactor) size(end int) int {
	return c.b.Overhead + c.full(0, c.head) + c.noteTokens +
		c.stubSum[c.stub] - c.stubSum[c.drop] + c.full(c.stub, end)
}

// cut moves the cuts so that a request of msgs[:end] carries at most half
// the budget, or as little as it can.
func (c *compactor) cut(end int) {
	low := c.b.Tokens / 2
	// Stub every tool result but the KeepResults most recent.
	kept := 0
	for i := end - 1; i >= c.stub; i-- {
		if c.msgs[i].Role == openai.ChatMessageRoleTool {
			if kept++; kept == c.b.KeepResults {
				c.stub = c.blockStart(i)
				break
			}
		}
	}
	// Drop the oldest exchanges while that is still too much, never the
	// last exchange.
	last := c.blockStart(end - 1)
	for c.size(end) > low && c.drop < last {
		next := c.blockEnd(c.drop)
		c.note.add(c.msgs[c.drop:next])
		c.drop = next
		c.stub = max(c.stub, c.drop)
		c.noteTokens = EstimateMessageTokens(c.noteMessage())
	}
}

// blockStart is the start of the block holding message i; blockEnd the end
// of the block starting at i.
func (c *compactor) blockStart(i int) int {
	k, _ := slices.BinarySearchFunc(c.blocks, i, func(b block, i int) int {
		switch {
		case b.end <= i:
			return -1
		case b.start > i:
			return 1
		}
		return 0
	})
	return c.blocks[k].start
}

func (c *compactor) blockEnd(i int) int {
	k, _ := slices.BinarySearchFunc(c.blocks, i, func(b block, i int) int { return b.start - i })
	return c.blocks[k].end
}

func (c *compactor) stubbed() int {
	n := 0
	for i := c.drop; i < c.stub; i++ {
		if c.stubText[i] != "" {
			n++
		}
	}
	return n
}

func (c *compactor) noteMessage() openai.ChatCompletionMessage {
	return openai.ChatCompletionMessage{Role: openai.ChatMessageRoleUser, Content: c.note.text()}
}

func (c *compactor) render() []openai.ChatCompletionMessage {
	out := make([]openai.ChatCompletionMessage, 0, len(c.msgs)-(c.drop-c.head)+1)
	out = append(out, c.msgs[:c.head]...)
	if c.drop > c.head {
		out = append(out, c.noteMessage())
	}
	for i := c.drop; i < len(c.msgs); i++ {
		m := c.msgs[i]
		if i < c.stub && c.stubText[i] != "" {
			m.Content = c.stubText[i]
		}
		out = append(out, m)
	}
	return out
}

// noteState sums up the dropped exchanges for the note that replaces them.
type noteState struct {
	messages int
	tools    []string
	paths    []string
	seen     map[string]bool
}

// maxNotePaths bounds the paths the note names.
const maxNotePaths = 40

func (n *noteState) add(msgs []openai.ChatCompletionMessage) {
	if n.seen == nil {
		n.seen = map[string]bool{}
	}
	n.messages += len(msgs)
	for _, m := range msgs {
		for _, tc := range m.ToolCalls {
			if name := tc.Function.Name; !n.seen["t:"+name] {
				n.seen["t:"+name] = true
				n.tools = append(n.tools, name)
			}
			var args struct {
				Path string `json:"path"`
			}
			if json.Unmarshal([]byte(tc.Function.Arguments), &args) == nil && args.Path != "" &&
				!n.seen["p:"+args.Path] && len(n.paths) < maxNotePaths {
				n.seen["p:"+args.Path] = true
				n.paths = append(n.paths, args.Path)
			}
		}
	}
}

func (n *noteState) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "[Context truncated: %d earlier messages removed to fit the context budget]", n.messages)
	if len(n.tools) > 0 {
		b.WriteString("\nTools used in truncated history: " + strings.Join(n.tools, ", "))
	}
	if len(n.paths) > 0 {
		b.WriteString("\nPaths used in truncated history: " + strings.Join(n.paths, ", "))
	}
	b.WriteString("\nRead again whatever of it you still need.")
	return b.String()
}
