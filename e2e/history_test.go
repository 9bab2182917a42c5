package e2e

import (
	"context"
	"os/exec"
	"testing"

	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// history returns a workflow run's events.
func history(t *testing.T, c client.Client, id, run string) *historypb.History {
	t.Helper()
	it := c.GetWorkflowHistory(context.Background(), id, run, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatalf("history of %s: %v", id, err)
		}
		h.Events = append(h.Events, ev)
	}
	return h
}

func historyJSON(t *testing.T, c client.Client, id, run string) string {
	b, err := protojson.Marshal(history(t, c, id, run))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// historyBytes is the serialized size of a run's history.
func historyBytes(t *testing.T, c client.Client, id, run string) int {
	return proto.Size(history(t, c, id, run))
}

func execGit(dir string, args ...string) (string, error) {
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).Output()
	return string(out), err
}
