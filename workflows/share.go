package workflows

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"go.temporal.io/sdk/workflow"

	"codeswarm/control"
	"codeswarm/tools"
)

// shareStore holds the run's swarm_share entries, in the order their keys
// were first published.
type shareStore struct {
	entries []control.SharedResult
}

// CarriedShare is one swarm_share entry as a continued run carries it. A
// subtask's own published result is not copied: FromTask rebuilds it from
// the subtask's result.
type CarriedShare struct {
	control.SharedResult
	FromTask bool `json:"from_task,omitempty"`
}

// carried is the store as a continued run carries it; byID finds a subtask.
func (st *shareStore) carried(byID func(string) *Task) []CarriedShare {
	var out []CarriedShare
	for _, r := range st.entries {
		own, ok := ownResult(byID(r.Key))
		if ok && sameShare(own, r) {
			out = append(out, CarriedShare{
				SharedResult: control.SharedResult{Key: r.Key},
				FromTask:     true,
			})
			continue
		}
		out = append(out, CarriedShare{SharedResult: r})
	}
	return out
}

// restore puts a carried store back, once the subtasks are restored.
func (st *shareStore) restore(carried []CarriedShare, byID func(string) *Task) {
	for _, r := range carried {
		if r.FromTask {
			if own, ok := ownResult(byID(r.Key)); ok {
				st.entries = append(st.entries, own)
			}
			continue
		}
		st.entries = append(st.entries, r.SharedResult)
	}
}

// ownResult is the share entry a finished subtask published as its result.
func ownResult(t *Task) (control.SharedResult, bool) {
	if t == nil || t.State != stateDone {
		return control.SharedResult{}, false
	}
	return resultShare(t)
}

func sameShare(a, b control.SharedResult) bool {
	return a.Key == b.Key && a.Value == b.Value && a.Publisher == b.Publisher && slices.Equal(a.Tags, b.Tags)
}

// registerHandlers exposes the progress query and the swarm_share store. The
// store lives in workflow state, so it survives worker crashes.
func (s *swarm) registerHandlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, control.ProgressQueryName, s.progress); err != nil {
		return err
	}
	if err := workflow.SetQueryHandler(ctx, control.ShareQueryName, s.share.read); err != nil {
		return err
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, control.SharePublishUpdateName,
		func(ctx workflow.Context, req control.ShareRequest) (int, error) {
			s.share.publish(control.SharedResult{
				Key:       req.Key,
				Value:     req.Value,
				Tags:      orEmpty(req.Tags),
				Publisher: req.Publisher,
			})
			return len(s.share.entries), nil
		},
		workflow.UpdateHandlerOptions{Validator: func(req control.ShareRequest) error {
			if err := req.ValidatePublish(s.in.Tools.ShareMaxValueBytes); err != nil {
				return err
			}
			// In the validator: a rejection writes no history, so the caps
			// are replay-safe (0 is the default cap).
			keys, bytes := s.agentShare(req.Key)
			entry := control.SharedResult{Key: req.Key, Value: req.Value, Tags: req.Tags, Publisher: req.Publisher}
			if err := tools.CheckShareTotal(bytes+entry.Size(), s.in.Tools.ShareMaxTotalBytes); err != nil {
				return err
			}
			if s.share.has(req.Key) {
				return nil
			}
			return tools.CheckShareNewKey(keys, s.in.Tools.ShareMaxKeys)
		}})
}

// progress returns the events after seq `since`.
func (s *swarm) progress(since int) (control.Progress, error) {
	p := control.Progress{
		Phase:       s.phase,
		Subtasks:    len(s.plan.Tasks),
		State:       s.view.State,
		StateReason: s.view.StateReason,
		Host:        s.host(),
		Budget:      s.budget.view(s.plan.running()),
		Rows:        s.view.rows(),
	}
	for _, e := range s.view.Events {
		if e.Seq > since {
			p.Events = append(p.Events, e)
		}
	}
	return p, nil
}

// agentShare counts the store's keys that sub-agents published and sums
// the sizes of the entries a carry holds in full, leaving out the entry of
// key except (a publish replaces it). The results codeswarm shares under
// each finished subtask's ID count against neither tools.share.max_keys nor
// tools.share.max_total_bytes, or a run of more subtasks than the caps
// would leave its agents no room at all: a carry holds them as a reference
// to the subtask (CarriedShare.FromTask).
func (s *swarm) agentShare(except string) (keys, bytes int) {
	tasks := make(map[string]*Task, len(s.plan.Tasks))
	for _, t := range s.plan.Tasks {
		tasks[t.Sub.ID] = t
	}
	for _, r := range s.share.entries {
		t, isTask := tasks[r.Key]
		if !isTask {
			keys++
		}
		if own, ok := ownResult(t); ok && sameShare(own, r) || r.Key == except {
			continue
		}
		bytes += r.Size()
	}
	return keys, bytes
}

// has reports whether the store holds key.
func (st *shareStore) has(key string) bool {
	return slices.ContainsFunc(st.entries, func(r control.SharedResult) bool { return r.Key == key })
}

// publish inserts or replaces a shared result by key.
func (st *shareStore) publish(r control.SharedResult) {
	for i := range st.entries {
		if st.entries[i].Key == r.Key {
			st.entries[i] = r
			return
		}
	}
	st.entries = append(st.entries, r)
}

// publishResult shares a finished subtask's result, as the seed's executor does.
func (st *shareStore) publishResult(t *Task) {
	if r, ok := resultShare(t); ok {
		st.publish(r)
	}
}

// resultShare is the share entry of a finished subtask's result (none when
// it has no result).
func resultShare(t *Task) (control.SharedResult, bool) {
	if t.Res.Result == "" {
		return control.SharedResult{}, false
	}
	// json.Marshal, not %q: Go quoting of control characters (\x1b) is not JSON.
	value, err := json.Marshal(capString(t.Res.Result, depResultCap))
	if err != nil {
		return control.SharedResult{}, false // a string always marshals
	}
	return control.SharedResult{
		Key:       t.Sub.ID,
		Value:     string(value),
		Publisher: t.Sub.ID,
		Tags:      []string{fmt.Sprintf("stage:%d", t.Sub.Stage), "subtask:" + t.Sub.ID},
	}, true
}

// read answers a share query: the matching entries, in store order, that
// fit req.MaxBytes (the first always does), and the count of the rest. A
// run of thousands of subtasks shares each one's result, so an unbounded
// "list" would outgrow the query's RPC and the reader's context.
func (st *shareStore) read(req control.ShareRequest) (control.ShareAnswer, error) {
	budget := req.MaxBytes
	if budget <= 0 {
		budget = control.DefaultShareReadBytes
	}
	out := control.ShareAnswer{Results: []control.SharedResult{}}
	used := 0
	for _, r := range st.entries {
		if !shareMatch(req, r) {
			continue
		}
		if size := r.Size(); out.More > 0 || (len(out.Results) > 0 && used+size > budget) {
			out.More++
		} else {
			out.Results = append(out.Results, r)
			used += size
		}
	}
	return out, nil
}

func shareMatch(req control.ShareRequest, r control.SharedResult) bool {
	switch req.Action {
	case "get":
		return r.Key == req.Key
	case "query_prefix":
		return strings.HasPrefix(r.Key, req.Prefix)
	case "query_tags":
		for _, want := range req.Tags {
			if !slices.Contains(r.Tags, want) {
				return false
			}
		}
		return len(req.Tags) > 0
	case "list":
		return true
	}
	return false
}
