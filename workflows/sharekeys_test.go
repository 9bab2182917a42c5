package workflows_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"codeswarm/control"
)

// TestSwarmShareMaxKeys: the parent's validator refuses a new key once the
// store holds tools.share.max_keys keys, naming the cap; overwriting an
// existing key is still allowed.
func TestSwarmShareMaxKeys(t *testing.T) {
	w := newWorld(subtask("01-a", 0))
	w.stepDelay = time.Minute
	env := newEnv(t, w)
	var k1, k2, k3, over *publishOutcome
	env.RegisterDelayedCallback(func() {
		k1 = publish(env, "u1", control.ShareRequest{Action: "publish", Key: "k1", Value: `1`})
		k2 = publish(env, "u2", control.ShareRequest{Action: "publish", Key: "k2", Value: `2`})
		k3 = publish(env, "u3", control.ShareRequest{Action: "publish", Key: "k3", Value: `3`})
		over = publish(env, "u4", control.ShareRequest{Action: "publish", Key: "k1", Value: `11`})
	}, 30*time.Second)
	in := swarmInput()
	in.Tools.ShareMaxKeys = 2
	if res := runSwarm(t, env, in); !res.Success {
		t.Fatalf("run failed: %s", res.Error)
	}
	for name, p := range map[string]*publishOutcome{"k1": k1, "k2": k2, "overwrite k1": over} {
		if p == nil || !p.accepted || !p.done || p.err != nil {
			t.Errorf("%s publish = %+v, want accepted", name, p)
		}
	}
	if k3 == nil || k3.rejected == nil || k3.accepted || !strings.Contains(k3.rejected.Error(), "run has 2 keys (tools.share.max_keys); overwrite an existing key") {
		t.Errorf("third key = %+v, want rejected naming the cap", k3)
	}
	if got := shareKeys(t, env, control.ShareRequest{Action: "list"}); strings.Join(got, ",") != "k1,k2,01-a" {
		t.Errorf("store = %v, want k1,k2 and the subtask's result", got)
	}
}

// TestSwarmShareMaxTotalBytes: the parent's validator refuses a publish
// after which the sub-agents' keys, values and tags would pass
// tools.share.max_total_bytes, naming the cap; an overwrite counts its new
// value instead of the old one, and codeswarm's own per-subtask results do
// not count.
func TestSwarmShareMaxTotalBytes(t *testing.T) {
	w := newWorld(subtask("01-a", 0))
	w.stepDelay = time.Minute
	env := newEnv(t, w)
	value := func(n int) string { return `"` + strings.Repeat("x", n-2) + `"` }
	// Each entry's size is its strings plus 48 bytes of framing
	// (control.SharedResult.Size): k1 with a 100-byte value takes 150.
	var k1, k2, grow, shrink, k3 *publishOutcome
	env.RegisterDelayedCallback(func() {
		k1 = publish(env, "u1", control.ShareRequest{Action: "publish", Key: "k1", Value: value(100)})
		k2 = publish(env, "u2", control.ShareRequest{Action: "publish", Key: "k2", Value: value(100)})
		grow = publish(env, "u3", control.ShareRequest{Action: "publish", Key: "k1", Value: value(200)})
		shrink = publish(env, "u4", control.ShareRequest{Action: "publish", Key: "k1", Value: value(40)})
		k3 = publish(env, "u5", control.ShareRequest{Action: "publish", Key: "k3", Value: value(100)})
	}, 30*time.Second)
	in := swarmInput()
	in.Tools.ShareMaxTotalBytes = 300
	if res := runSwarm(t, env, in); !res.Success {
		t.Fatalf("run failed: %s", res.Error)
	}
	for name, p := range map[string]*publishOutcome{"k1": k1, "k2": k2, "shrink k1": shrink} {
		if p == nil || !p.accepted || !p.done || p.err != nil {
			t.Errorf("%s publish = %+v, want accepted", name, p)
		}
	}
	for name, p := range map[string]*publishOutcome{"grow k1": grow, "k3": k3} {
		if p == nil || p.rejected == nil || p.accepted || !strings.Contains(p.rejected.Error(), "over the limit of 300 (tools.share.max_total_bytes)") {
			t.Errorf("%s publish = %+v, want rejected naming the cap", name, p)
		}
	}
	if !strings.Contains(grow.rejected.Error(), "would take 400 bytes") {
		t.Errorf("grow k1 = %v, want the total it would have taken (150 + 250)", grow.rejected)
	}
	if got := shareKeys(t, env, control.ShareRequest{Action: "list"}); strings.Join(got, ",") != "k1,k2,01-a" {
		t.Errorf("store = %v, want k1,k2 and the subtask's result", got)
	}
}

// TestSwarmShareReadFitsItsBudget: a read answers the matching entries, in
// store order, that fit its MaxBytes and counts the rest; the first match
// is answered whatever its size.
func TestSwarmShareReadFitsItsBudget(t *testing.T) {
	w := newWorld(subtask("01-a", 0))
	w.stepDelay = time.Minute
	env := newEnv(t, w)
	env.RegisterDelayedCallback(func() {
		for i := range 10 {
			publish(env, fmt.Sprintf("u%d", i), control.ShareRequest{Action: "publish", Key: fmt.Sprintf("k%d", i), Value: `"` + strings.Repeat("v", 100) + `"`})
		}
	}, 30*time.Second)
	if res := runSwarm(t, env, swarmInput()); !res.Success {
		t.Fatalf("run failed: %s", res.Error)
	}
	// k0..k9 take 2 + 102 + 0 + 48 = 152 bytes each; the subtask's own
	// result comes last.
	var answers []control.ShareAnswer
	for _, req := range []control.ShareRequest{
		{Action: "list", MaxBytes: 500},
		{Action: "list", MaxBytes: 10},
		{Action: "list"},
		{Action: "query_prefix", Prefix: "k9", MaxBytes: 10},
	} {
		v, err := env.QueryWorkflow(control.ShareQueryName, req)
		var ans control.ShareAnswer
		if err == nil {
			err = v.Get(&ans)
		}
		if err != nil {
			t.Errorf("query %+v: %v", req, err)
		}
		answers = append(answers, ans)
	}
	want := []struct{ keys, more int }{{3, 8}, {1, 10}, {11, 0}, {1, 0}}
	if len(answers) != len(want) {
		t.Fatalf("%d answers, want %d", len(answers), len(want))
	}
	for i, w := range want {
		if a := answers[i]; len(a.Results) != w.keys || a.More != w.more {
			t.Errorf("answer %d: %d entries and %d more, want %d and %d", i, len(a.Results), a.More, w.keys, w.more)
		}
	}
	if a := answers[0]; len(a.Results) == 3 && (a.Results[0].Key != "k0" || a.Results[2].Key != "k2") {
		t.Errorf("capped list = %v, want k0..k2 in store order", a.Results)
	}
}
