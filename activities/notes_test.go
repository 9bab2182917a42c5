package activities

import (
	"reflect"
	"testing"

	"codeswarm/llm/scripted"
)

// TestAgentStepNotes: steering notes reach the model as user messages at the
// end of the conversation, once: a retried step neither repeats them nor
// adds them after the answer it already has.
func TestAgentStepNotes(t *testing.T) {
	h := newHarness(t, scripted.Script{Agents: []scripted.Agent{{Match: agentMarker, Turns: []scripted.Reply{
		{Content: "Noted.\nSTATUS: completed", PromptTokens: 10, CompletionTokens: 2},
	}}}})
	ref := ConvRef{RunID: "run-notes", SubtaskID: "01-alpha", Attempt: 1}
	agentHead(t, h, ref, agentMarker)
	in := AgentStepInput{Ref: ref, Turn: 0, Model: "m", ContextLimit: 128000, Notes: []string{"use errors.Is", "keep the API"}}
	mustRun[AgentStepResult](t, h.env, h.a.AgentStep, in)

	req := sentRequest(t, h.srv, 0)
	var got []string
	for _, m := range req.Messages[2:] {
		got = append(got, m.Role+": "+m.Content)
	}
	want := []string{"user: " + NotePrefix + "use errors.Is", "user: " + NotePrefix + "keep the API"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("messages after the head = %q, want %q", got, want)
	}
	again := mustRun[AgentStepResult](t, h.env, h.a.AgentStep, in)
	recs := load(t, h.a.Transcripts, ref)
	if !again.Reused || len(recs) != 5 || recs[4].Key != keyAssistant(0) {
		t.Errorf("after a retry: reused=%v, %d records, last %q; want the stored answer and no note added twice", again.Reused, len(recs), recs[len(recs)-1].Key)
	}
}
