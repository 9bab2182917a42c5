package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
)

// traceHistory prints where a workflow's time goes: the median gap from
// each event type to the next event, by pair of event types (for an
// activity: scheduled→started is dispatch, started→completed is its run,
// completed→workflow task is the reaction).
func (s *stack) traceHistory(id string) string {
	it := s.client.GetWorkflowHistory(context.Background(), id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var evs []*historypb.HistoryEvent
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return err.Error()
		}
		evs = append(evs, ev)
	}
	gaps := map[string][]time.Duration{}
	names := map[int64]string{}
	for i, ev := range evs {
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			names[ev.GetEventId()] = a.GetActivityType().GetName()
		}
		if i == 0 {
			continue
		}
		prev := evs[i-1]
		key := label(prev, names) + " → " + label(ev, names)
		gaps[key] = append(gaps[key], ev.GetEventTime().AsTime().Sub(prev.GetEventTime().AsTime()))
	}
	keys := make([]string, 0, len(gaps))
	for k := range gaps {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return len(gaps[b]) - len(gaps[a]) })
	var b strings.Builder
	for _, k := range keys {
		if len(gaps[k]) < 5 {
			continue
		}
		fmt.Fprintf(&b, "%6d × median %6.1f ms  %s\n", len(gaps[k]), float64(median(gaps[k]).Microseconds())/1000, k)
	}
	return b.String()
}

func label(ev *historypb.HistoryEvent, names map[int64]string) string {
	name := strings.TrimPrefix(ev.GetEventType().String(), "EVENT_TYPE_")
	var sched int64
	switch {
	case ev.GetActivityTaskScheduledEventAttributes() != nil:
		sched = ev.GetEventId()
	case ev.GetActivityTaskStartedEventAttributes() != nil:
		sched = ev.GetActivityTaskStartedEventAttributes().GetScheduledEventId()
	case ev.GetActivityTaskCompletedEventAttributes() != nil:
		sched = ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()
	}
	if n, ok := names[sched]; ok {
		return name + "(" + n + ")"
	}
	return name
}
