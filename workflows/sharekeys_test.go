package workflows_test

import (
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
