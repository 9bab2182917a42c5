package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/sdk/client"

	"codeswarm/internal/swarmworker"
	"codeswarm/llm/scripted"
)

// modelActivities are the activity types that call the model, once per
// attempt in the scripts of these tests.
var modelActivities = []string{"Plan", "AgentStep", "Summarize"}

// freezeDeadline bounds how long a run takes to come to rest once the
// model's answers are held: the answers already sent are taken in and the
// calls already started reach the model.
const freezeDeadline = time.Minute

// freezeModel holds the model's answers and waits until the run is at rest
// around them: the only model calls the worker process pid has in progress
// are requests the model holds. Every answer sent before has then been
// taken in (its activity, local or not, returned after storing it in the
// transcript), so killing the worker now loses exactly the held requests,
// and none of the answered ones. At least minHeld requests must be held.
// root is the worker's workspace.root.
func freezeModel(t *testing.T, model *scripted.Server, root string, pid, minHeld int) {
	t.Helper()
	model.Hold()
	waitFor(t, freezeDeadline, func() bool {
		// The held set only grows while the client lives; the same set
		// before and after the count means it is the set at the count.
		before := model.Held()
		n := liveModelCalls(t, root, pid)
		return n == len(before) && n >= minHeld && slices.Equal(before, model.Held())
	})
}

// thawAfterKill releases the held answers once the model has dropped every
// request of the killed client (unanswered), so no answer goes to a dead
// worker: a request recorded with status 200 was received by a live one.
// It returns the requests as they stood before the release.
func thawAfterKill(t *testing.T, model *scripted.Server) []scripted.Request {
	t.Helper()
	waitFor(t, freezeDeadline, func() bool { return allDone(model.Requests()) })
	before := model.Requests()
	model.Release()
	return before
}

// liveModelCalls counts the model calls (activities and local activities)
// worker process pid is running, from its in-flight journal under root
// (internal/swarmworker: a record per activity attempt, written before the
// attempt starts and removed when it returns, and a record per workflow
// task running local activities, listing the ones running). Model calls
// run as local activities have no pending activity on the server to count.
func liveModelCalls(t *testing.T, root string, pid int) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, swarmworker.InflightDir, fmt.Sprintf("w-%d-*", pid), "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue // removed since the listing: it returned
		}
		var rec struct {
			ActivityType string   `json:"activity_type"`
			Local        bool     `json:"local"`
			Running      []string `json:"running"`
		}
		if json.Unmarshal(data, &rec) != nil {
			continue
		}
		if !rec.Local {
			rec.Running = []string{rec.ActivityType}
		}
		for _, typ := range rec.Running {
			if slices.Contains(modelActivities, typ) {
				n++
			}
		}
	}
	return n
}

// pendingActivity is one activity pending in a workflow of a run.
type pendingActivity struct {
	workflow, activity string
	attempt            int32
	state              enumspb.PendingActivityState
	worker             string // identity of the worker of the last attempt, "pid@host@…"
	heartbeat          time.Time
}

func (p pendingActivity) String() string {
	return fmt.Sprintf("%s#%d(%s)", p.activity, p.attempt, strings.ToLower(strings.TrimPrefix(p.state.String(), "PENDING_ACTIVITY_STATE_")))
}

// runPendingActivities lists the activities pending in the swarm workflow
// runID and in its running sub-agents, found through the swarm's pending
// children (visibility lags; the parent's mutable state does not).
func runPendingActivities(t *testing.T, c client.Client, runID string) []pendingActivity {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := c.DescribeWorkflowExecution(ctx, runID, "")
	if err != nil {
		t.Fatalf("describe %s: %v", runID, err)
	}
	out := collectPending(runID, d.GetPendingActivities())
	for _, ch := range d.GetPendingChildren() {
		cd, err := c.DescribeWorkflowExecution(ctx, ch.GetWorkflowId(), "")
		if err != nil {
			continue // not started yet: nothing pending in it
		}
		out = append(out, collectPending(ch.GetWorkflowId(), cd.GetPendingActivities())...)
	}
	return out
}

func collectPending(workflowID string, infos []*workflowpb.PendingActivityInfo) []pendingActivity {
	out := make([]pendingActivity, 0, len(infos))
	for _, pa := range infos {
		p := pendingActivity{
			workflow: workflowID, activity: pa.GetActivityType().GetName(), attempt: pa.GetAttempt(),
			state: pa.GetState(), worker: pa.GetLastWorkerIdentity(),
		}
		if hb := pa.GetLastHeartbeatTime(); hb != nil {
			p.heartbeat = hb.AsTime()
		}
		out = append(out, p)
	}
	return out
}
