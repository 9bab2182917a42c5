package devserver

import (
	"context"
	"strconv"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.uber.org/zap"
)

func TestZZDiag(t *testing.T) {
	zl, _ := zap.NewDevelopment()
	s := startServer(t, Options{UIPort: -1, Logger: zl})
	c := dial(t, s)
	for i := 0; i < 40; i++ {
		start := time.Now()
		r, err := c.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{ID: "d" + strconv.Itoa(i), TaskQueue: testTaskQueue}, SequentialWorkflow, 50)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Get(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		d := time.Since(start)
		if d > time.Second {
			t.Logf("workflow %d took %v (run %s)", i, d, r.GetRunID())
			h := c.GetWorkflowHistory(context.Background(), "d"+strconv.Itoa(i), r.GetRunID(), false, 0)
			var prev time.Time
			for h.HasNext() {
				e, _ := h.Next()
				ts := e.GetEventTime().AsTime()
				if !prev.IsZero() && ts.Sub(prev) > 500*time.Millisecond {
					t.Logf("gap %v before event %d %s", ts.Sub(prev), e.GetEventId(), e.GetEventType())
				}
				prev = ts
			}
		}
	}
}
