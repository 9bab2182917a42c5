package bench

import (
	"context"

	"go.temporal.io/api/enums/v1"
	"google.golang.org/protobuf/proto"
)

// runSize is one run of a workflow's continue-as-new chain: its events and
// bytes, and the bytes of its input (for a continued parent, the carry).
type runSize struct {
	events, bytes, input int
}

// chainSizes measures every run of id's continue-as-new chain, newest
// first: each run names, in its first event, the run it continued.
func (s *stack) chainSizes(id string) []runSize {
	var out []runSize
	for run := ""; ; {
		it := s.client.GetWorkflowHistory(context.Background(), id, run, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		var r runSize
		prev := ""
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				s.t.Fatalf("history of %s (run %q): %v", id, run, err)
			}
			if a := ev.GetWorkflowExecutionStartedEventAttributes(); a != nil {
				prev, r.input = a.GetContinuedExecutionRunId(), proto.Size(a.GetInput())
			}
			r.events++
			r.bytes += proto.Size(ev)
		}
		out = append(out, r)
		if prev == "" {
			return out
		}
		run = prev
	}
}

// largest is the chain's largest run by events and by bytes, and its
// largest input.
func largest(runs []runSize) runSize {
	var m runSize
	for _, r := range runs {
		m.events, m.bytes, m.input = max(m.events, r.events), max(m.bytes, r.bytes), max(m.input, r.input)
	}
	return m
}
