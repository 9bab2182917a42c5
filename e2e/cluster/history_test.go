package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
)

// workflowTask is the typ of an activityRun that is a workflow task.
const workflowTask = "(workflow task)"

// activityRun is one activity attempt or workflow task of a run (or of one
// of its sub-agents), as its history records it.
type activityRun struct {
	workflowID string
	typ        string
	queue      string
	host       string // hostname of the worker that started it ("" if never started)
	result     []byte // the activity's result payload if it completed
}

// runActivities walks the history of workflow id and of every child
// workflow it started, recursively.
func runActivities(ctx context.Context, c client.Client, id string) ([]activityRun, error) {
	type sched struct{ typ, queue string }
	var out []activityRun
	scheduled := map[int64]sched{}
	started := map[int64]int{} // started event ID → index in out
	var children []string
	wfQueue, lastWFTHost := "", ""
	it := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("history of %s: %w", id, err)
		}
		switch {
		case ev.GetActivityTaskScheduledEventAttributes() != nil:
			a := ev.GetActivityTaskScheduledEventAttributes()
			scheduled[ev.GetEventId()] = sched{a.GetActivityType().GetName(), a.GetTaskQueue().GetName()}
		case ev.GetActivityTaskStartedEventAttributes() != nil:
			a := ev.GetActivityTaskStartedEventAttributes()
			s := scheduled[a.GetScheduledEventId()]
			started[ev.GetEventId()] = len(out)
			out = append(out, activityRun{workflowID: id, typ: s.typ, queue: s.queue, host: identityHost(a.GetIdentity())})
		case ev.GetActivityTaskCompletedEventAttributes() != nil:
			a := ev.GetActivityTaskCompletedEventAttributes()
			if i, ok := started[a.GetStartedEventId()]; ok && len(a.GetResult().GetPayloads()) > 0 {
				out[i].result = a.GetResult().GetPayloads()[0].GetData()
			}
		case ev.GetWorkflowExecutionStartedEventAttributes() != nil:
			wfQueue = ev.GetWorkflowExecutionStartedEventAttributes().GetTaskQueue().GetName()
		case ev.GetWorkflowTaskStartedEventAttributes() != nil:
			lastWFTHost = identityHost(ev.GetWorkflowTaskStartedEventAttributes().GetIdentity())
			out = append(out, activityRun{workflowID: id, typ: workflowTask, host: lastWFTHost})
		case ev.GetMarkerRecordedEventAttributes().GetMarkerName() == localActivityMarker:
			// A local activity (reads, file changes and fast model calls
			// on the host) ran inside the workflow task that recorded it,
			// on that worker; its result is the marker's.
			m := ev.GetMarkerRecordedEventAttributes()
			if typ := localActivityType(m); typ != "" {
				run := activityRun{workflowID: id, typ: typ, queue: wfQueue, host: lastWFTHost}
				if p := m.GetDetails()["result"].GetPayloads(); len(p) > 0 {
					run.result = p[0].GetData()
				}
				out = append(out, run)
			}
		case ev.GetChildWorkflowExecutionStartedEventAttributes() != nil:
			children = append(children, ev.GetChildWorkflowExecutionStartedEventAttributes().GetWorkflowExecution().GetWorkflowId())
		}
	}
	for _, ch := range children {
		acts, err := runActivities(ctx, c, ch)
		if err != nil {
			return nil, err
		}
		out = append(out, acts...)
	}
	return out, nil
}

// localActivityMarker is the SDK's marker name for a local activity's result.
const localActivityMarker = "LocalActivity"

// localActivityType is the activity type a local-activity marker records
// (the SDK's marker "data": JSON with an ActivityType field).
func localActivityType(m *historypb.MarkerRecordedEventAttributes) string {
	p := m.GetDetails()["data"].GetPayloads()
	if len(p) == 0 {
		return ""
	}
	var data struct{ ActivityType string }
	if json.Unmarshal(p[0].GetData(), &data) != nil {
		return ""
	}
	return data.ActivityType
}

// identityHost is the hostname in an SDK worker identity "pid@host@queue".
func identityHost(identity string) string {
	parts := strings.Split(identity, "@")
	if len(parts) < 2 {
		return identity
	}
	return parts[1]
}

// runHost is the host whose workspace queue the run's activities used; an
// error when there is none or more than one.
func runHost(acts []activityRun, queue string) (string, error) {
	hosts := map[string]bool{}
	prefix := queue + "-ws-"
	for _, a := range acts {
		if strings.HasPrefix(a.queue, prefix) {
			hosts[strings.TrimPrefix(a.queue, prefix)] = true
		}
	}
	switch len(hosts) {
	case 0:
		return "", errNoHost
	case 1:
		for h := range hosts {
			return h, nil
		}
	}
	return "", fmt.Errorf("activities on several workspace queues: %v", hosts)
}
