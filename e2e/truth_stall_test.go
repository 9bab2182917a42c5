package e2e

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"codeswarm/internal/cli"
	"codeswarm/llm/scripted"
)

// TestStatusShowsCallAge: a sub-agent 3 s into a slow model call is shown
// as such by status (its CALL column: the kind of call and its age),
// flagged SLOW past watch.slow_call_after.
func TestStatusShowsCallAge(t *testing.T) {
	const id = "e2e-call-age"
	h := newHarness(t, scripted.Script{
		Planner: []scripted.Reply{{Content: faultPlan("slow")}},
		Agents:  []scripted.Agent{faultAgent("slow", slowFirstTurn(writeTurns("slow"), 8*time.Second))},
	})
	fastSwarmEnv(t)
	t.Setenv("CODESWARM_WATCH_SLOW_CALL_AFTER", "2s")
	repo := faultRepo(t)
	startLongLivedWorker(t)
	ctx, stop := context.WithTimeout(context.Background(), 2*time.Minute)
	defer stop()
	done := make(chan int, 1)
	var out, errb bytes.Buffer
	go func() {
		done <- cli.Execute(ctx, []string{"run", "--repo", repo, "--task", "slow call", "--id", id, "--no-worker"}, cli.IO{Out: &out, Err: &errb})
	}()
	waitFor(t, 30*time.Second, func() bool { return agentCalls(h.model, faultMarker("slow")) >= 1 })
	var status string
	waitFor(t, 20*time.Second, func() bool {
		_, status = h.run("status", id)
		return strings.Contains(status, "SLOW")
	})
	if !strings.Contains(status, "CALL") || !strings.Contains(status, "model ") {
		t.Errorf("status lacks the call's kind and age:\n%s", status)
	}
	t.Logf("status during the slow call:\n%s", status)
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("run exit %d:\n%s\n%s", code, out.String(), tail(errb.String(), 3000))
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the run did not end")
	}
}

// slowFirstTurn delays the first of turns.
func slowFirstTurn(turns []scripted.Reply, d time.Duration) []scripted.Reply {
	turns[0].Delay = scripted.Duration(d)
	return turns
}
