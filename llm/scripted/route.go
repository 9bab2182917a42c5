package scripted

import (
	"strings"

	"codeswarm/llm"
)

// Replies used when the script says nothing.
const (
	defaultPlan    = `{"subtasks":[]}`
	defaultSummary = "Summary: the output was long; no errors or warnings stood out."
	defaultAgent   = "Nothing to do.\nSTATUS: completed"
	finalAgent     = "Done.\nSTATUS: completed"
)

// route decides which scripted reply answers req. It depends only on the
// request, never on arrival order, so retries and concurrent sub-agents get
// consistent answers.
func (h *Handler) route(req wireRequest) (replyKey, Reply) {
	turn := assistantTurns(req.Messages)
	switch {
	case hasMarker(req.Messages):
		return replyKey{kind: KindSummary}, orDefault(h.script.Summary, defaultSummary)
	case len(req.Tools) == 0:
		return replyKey{kind: KindPlanner, turn: turn}, plannerReply(h.script.Planner, turn)
	}
	a := matchAgent(h.script.Agents, firstUserText(req.Messages))
	key := replyKey{kind: KindAgent, turn: turn}
	if a == nil {
		return key, orDefault(h.script.Default, defaultAgent)
	}
	key.agent = a.Match
	if turn < len(a.Turns) {
		return key, a.Turns[turn]
	}
	return key, Reply{Content: finalAgent}
}

func plannerReply(turns []Reply, turn int) Reply {
	if len(turns) == 0 {
		return Reply{Content: defaultPlan}
	}
	return turns[min(turn, len(turns)-1)]
}

func orDefault(r *Reply, content string) Reply {
	if r != nil {
		return *r
	}
	return Reply{Content: content}
}

func assistantTurns(msgs []wireMessage) int {
	n := 0
	for _, m := range msgs {
		if m.Role == "assistant" {
			n++
		}
	}
	return n
}

func hasMarker(msgs []wireMessage) bool {
	for _, m := range msgs {
		if strings.Contains(m.text(), llm.SummaryMarker) {
			return true
		}
	}
	return false
}

func firstUserText(msgs []wireMessage) string {
	for _, m := range msgs {
		if m.Role == "user" {
			return m.text()
		}
	}
	return ""
}

// matchAgent returns the agent whose non-empty Match occurs in text, the
// longest one when several do (so "[x:a-b]" beats "[x:a]"), the first in
// script order on a tie.
func matchAgent(agents []Agent, text string) *Agent {
	var best *Agent
	for i := range agents {
		a := &agents[i]
		if a.Match == "" || !strings.Contains(text, a.Match) {
			continue
		}
		if best == nil || len(a.Match) > len(best.Match) {
			best = a
		}
	}
	return best
}
