package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
)

// timeline lists a workflow's events with their offset from t0 (the CLI's
// start), one line each, so that fixed costs (start, prepare, worktree,
// commit, merge, finish) show where a run's wall time goes.
func (s *stack) timeline(id string, t0 time.Time) string {
	it := s.client.GetWorkflowHistory(context.Background(), id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	names := map[int64]string{}
	var b strings.Builder
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return err.Error()
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			names[ev.GetEventId()] = a.GetActivityType().GetName()
		}
		what := label(ev, names)
		if c := ev.GetStartChildWorkflowExecutionInitiatedEventAttributes(); c != nil {
			what += "(" + c.GetWorkflowId() + ")"
		}
		if c := ev.GetChildWorkflowExecutionCompletedEventAttributes(); c != nil {
			what += "(" + c.GetWorkflowExecution().GetWorkflowId() + ")"
		}
		if m := ev.GetMarkerRecordedEventAttributes(); m != nil {
			what += "(" + m.GetMarkerName() + localDone(m, t0) + ")"
		}
		fmt.Fprintf(&b, "%8.1f ms  %4d %s\n", float64(ev.GetEventTime().AsTime().Sub(t0).Microseconds())/1000, ev.GetEventId(), what)
	}
	return b.String()
}

// localDone is, for a local activity's marker, its type and when it
// returned (the marker is written later, when its workflow task ends or
// heartbeats), as an offset from t0.
func localDone(m *historypb.MarkerRecordedEventAttributes, t0 time.Time) string {
	var data struct {
		ActivityType string
		ReplayTime   time.Time
	}
	p := m.GetDetails()["data"].GetPayloads()
	if len(p) == 0 || json.Unmarshal(p[0].GetData(), &data) != nil || data.ActivityType == "" {
		return ""
	}
	return fmt.Sprintf(": %s returned at %.1f ms", data.ActivityType, float64(data.ReplayTime.Sub(t0).Microseconds())/1000)
}
