package workflows_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"codeswarm/control"
	"codeswarm/workflows"
)

// shareKeys queries the store and returns the keys that match.
func shareKeys(t *testing.T, env *testsuite.TestWorkflowEnvironment, req control.ShareRequest) []string {
	t.Helper()
	v, err := env.QueryWorkflow(control.ShareQueryName, req)
	if err != nil {
		t.Errorf("query %+v: %v", req, err)
		return nil
	}
	var ans control.ShareAnswer
	if err := v.Get(&ans); err != nil {
		t.Errorf("decode query %+v: %v", req, err)
		return nil
	}
	out := ans.Results
	if out == nil {
		t.Errorf("query %+v answered null, want a list", req)
	}
	keys := []string{}
	for _, r := range out {
		keys = append(keys, r.Key)
	}
	return keys
}

// publish sends the publish update and reports how it ended.
type publishOutcome struct {
	accepted bool
	rejected error
	count    any
	err      error
	done     bool
}

func publish(env *testsuite.TestWorkflowEnvironment, id string, req control.ShareRequest) *publishOutcome {
	out := &publishOutcome{}
	env.UpdateWorkflow(control.SharePublishUpdateName, id, &testsuite.TestUpdateCallback{
		OnAccept:   func() { out.accepted = true },
		OnReject:   func(err error) { out.rejected = err },
		OnComplete: func(v any, err error) { out.count, out.err, out.done = v, err, true },
	}, req)
	return out
}

func TestSwarmShareHandlers(t *testing.T) {
	w := newWorld(subtask("01-a", 0), subtask("02-b", 1, "01-a"))
	w.stepDelay = time.Minute // the run lasts long enough to talk to it
	env := newEnv(t, w)

	var first, second, empty, big, replace *publishOutcome
	env.RegisterDelayedCallback(func() {
		first = publish(env, "u1", control.ShareRequest{Action: "publish", Key: "api/auth", Value: `{"a":1}`, Tags: []string{"auth"}, Publisher: "01-a"})
		second = publish(env, "u2", control.ShareRequest{Action: "publish", Key: "api/db", Value: `"pg"`, Tags: []string{"db", "auth"}, Publisher: "01-a"})
		empty = publish(env, "u3", control.ShareRequest{Action: "publish", Key: "  ", Value: `1`})
		big = publish(env, "u5", control.ShareRequest{Action: "publish", Key: "big", Value: `"` + strings.Repeat("x", 99) + `"`})
	}, 30*time.Second)

	queries := []struct {
		req  control.ShareRequest
		want []string
	}{
		{control.ShareRequest{Action: "get", Key: "api/auth"}, []string{"api/auth"}},
		{control.ShareRequest{Action: "get", Key: "missing"}, []string{}},
		{control.ShareRequest{Action: "query_tags", Tags: []string{"auth"}}, []string{"api/auth", "api/db"}},
		{control.ShareRequest{Action: "query_tags", Tags: []string{"auth", "db"}}, []string{"api/db"}},
		{control.ShareRequest{Action: "query_tags"}, []string{}},
		{control.ShareRequest{Action: "query_prefix", Prefix: "api/d"}, []string{"api/db"}},
		{control.ShareRequest{Action: "list"}, []string{"api/auth", "api/db"}},
		{control.ShareRequest{Action: "bogus"}, []string{}},
	}
	env.RegisterDelayedCallback(func() {
		for _, q := range queries {
			if got := shareKeys(t, env, q.req); !slices.Equal(got, q.want) {
				t.Errorf("during the run, %+v = %v, want %v", q.req, got, q.want)
			}
		}
		replace = publish(env, "u4", control.ShareRequest{Action: "publish", Key: "api/auth", Value: `{"a":2}`, Tags: []string{"auth"}})
	}, 90*time.Second)

	in := swarmInput()
	in.Tools.ShareMaxValueBytes = 100
	res := runSwarm(t, env, in)
	if !res.Success {
		t.Fatalf("run failed: %s", res.Error)
	}

	for name, p := range map[string]*publishOutcome{"first": first, "second": second, "replace": replace} {
		if p == nil || !p.accepted || !p.done || p.err != nil || p.rejected != nil {
			t.Errorf("%s publish = %+v, want accepted and completed", name, p)
		}
	}
	if empty == nil || empty.rejected == nil || empty.accepted || empty.done {
		t.Errorf("empty-key publish = %+v, want rejected by the validator", empty)
	}
	if big == nil || big.rejected == nil || !strings.Contains(big.rejected.Error(), "101 bytes, over the limit of 100") {
		t.Errorf("over-cap publish = %+v, want rejected naming the limit", big)
	}

	// After the run, each subtask's result is in the store, tagged.
	if got := shareKeys(t, env, control.ShareRequest{Action: "list"}); !slices.Equal(got, []string{"api/auth", "api/db", "01-a", "02-b"}) {
		t.Errorf("store after the run = %v", got)
	}
	for _, c := range []struct {
		tags []string
		want []string
	}{
		{[]string{"stage:0"}, []string{"01-a"}},
		{[]string{"stage:1", "subtask:02-b"}, []string{"02-b"}},
		{[]string{"stage:1", "subtask:01-a"}, []string{}},
	} {
		if got := shareKeys(t, env, control.ShareRequest{Action: "query_tags", Tags: c.tags}); !slices.Equal(got, c.want) {
			t.Errorf("query_tags %v = %v, want %v", c.tags, got, c.want)
		}
	}
	v, err := env.QueryWorkflow(control.ShareQueryName, control.ShareRequest{Action: "get", Key: "api/auth"})
	if err != nil {
		t.Fatal(err)
	}
	var ans control.ShareAnswer
	if err := v.Get(&ans); err != nil || len(ans.Results) != 1 || ans.Results[0].Value != `{"a":2}` {
		t.Errorf("api/auth after replace = %+v (%v), want value {\"a\":2}", ans, err)
	}
	v, err = env.QueryWorkflow(control.ShareQueryName, control.ShareRequest{Action: "get", Key: "01-a"})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Get(&ans); err != nil || len(ans.Results) != 1 || ans.Results[0].Publisher != "01-a" {
		t.Fatalf("01-a entry = %+v (%v)", ans, err)
	}
	got := ans.Results
	var text string
	if err := json.Unmarshal([]byte(got[0].Value), &text); err != nil || text != "did 01-a\nSTATUS: completed" {
		t.Errorf("01-a value %q decodes to %q (%v), want the result as a JSON string", got[0].Value, text, err)
	}
}

// TestSwarmSharedValueIsJSON: a result with control characters is still
// valid JSON in the store (its value is raw JSON text).
func TestSwarmSharedValueIsJSON(t *testing.T) {
	const final = "\x1b[31mred\x1b[0m \a done\nSTATUS: completed"
	w := newWorld(subtask("01-a", 0))
	w.scripts["01-a"] = sequence(toolTurn("edit", "e"), finalTurn(final))
	env := newEnv(t, w)
	runSwarm(t, env, swarmInput())
	v, err := env.QueryWorkflow(control.ShareQueryName, control.ShareRequest{Action: "get", Key: "01-a"})
	if err != nil {
		t.Fatal(err)
	}
	var ans control.ShareAnswer
	if err := v.Get(&ans); err != nil || len(ans.Results) != 1 {
		t.Fatalf("01-a entry = %+v (%v)", ans, err)
	}
	got := ans.Results
	var text string
	if err := json.Unmarshal([]byte(got[0].Value), &text); err != nil || text != final {
		t.Errorf("value %q is not the result as JSON: %q (%v)", got[0].Value, text, err)
	}
}

func progress(t *testing.T, env *testsuite.TestWorkflowEnvironment, since int) control.Progress {
	t.Helper()
	v, err := env.QueryWorkflow(control.ProgressQueryName, since)
	if err != nil {
		t.Fatalf("progress query: %v", err)
	}
	var p control.Progress
	if err := v.Get(&p); err != nil {
		t.Fatalf("decode progress: %v", err)
	}
	return p
}

func checkSeqs(t *testing.T, events []control.Event, from int) {
	t.Helper()
	for i, e := range events {
		if e.Seq != from+i+1 {
			t.Errorf("event %d has seq %d, want %d: %+v", i, e.Seq, from+i+1, events)
			return
		}
	}
}

func TestSwarmProgressQuery(t *testing.T) {
	w := newWorld(subtask("01-a", 0), subtask("02-b", 1, "01-a"))
	w.stepDelay = time.Minute
	env := newEnv(t, w)
	var during, sinceTwo control.Progress
	env.RegisterDelayedCallback(func() {
		during = progress(t, env, 0)
		sinceTwo = progress(t, env, 2)
	}, 90*time.Second)
	runSwarm(t, env, swarmInput())

	if during.Phase != workflows.PhaseRunning || during.Subtasks != 2 {
		t.Errorf("during the run: phase %q, %d subtasks", during.Phase, during.Subtasks)
	}
	kinds := []string{}
	for _, e := range during.Events {
		kinds = append(kinds, e.Kind)
	}
	if !slices.Equal(kinds, []string{"prepared", "planned", "started"}) {
		t.Errorf("events during A's run = %v", kinds)
	}
	checkSeqs(t, during.Events, 0)
	if len(sinceTwo.Events) != len(during.Events)-2 {
		t.Errorf("since=2 gave %d events, want %d", len(sinceTwo.Events), len(during.Events)-2)
	}
	checkSeqs(t, sinceTwo.Events, 2)

	final := progress(t, env, 0)
	checkSeqs(t, final.Events, 0)
	if final.Phase != workflows.PhaseDone || final.Events[len(final.Events)-1].Kind != "done" {
		t.Errorf("final progress: phase %q, last event %+v", final.Phase, final.Events[len(final.Events)-1])
	}
	for i := 1; i < len(final.Events); i++ {
		if final.Events[i].Time.Before(final.Events[i-1].Time) {
			t.Errorf("event %d is earlier than the one before it", i)
		}
	}
	if rest := progress(t, env, len(final.Events)); len(rest.Events) != 0 {
		t.Errorf("since=last gave %+v", rest.Events)
	}
	merged := 0
	for _, e := range final.Events {
		if e.Kind == "merged" {
			merged++
		}
	}
	if merged != 2 {
		t.Errorf("%d merged events, want 2", merged)
	}
}
