package devserver

import (
	"context"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/workflow"
)

// benchActivities is how many sequential activities one benchmark workflow runs.
const benchActivities = 50

// SequentialWorkflow runs n no-op activities one after another, the shape of
// a sub-agent's tool loop.
func SequentialWorkflow(ctx workflow.Context, n int) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
	for range n {
		if err := workflow.ExecuteActivity(ctx, NoopActivity).Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

// NoopActivity does nothing, so the benchmark measures server overhead only.
func NoopActivity(context.Context) error { return nil }

func BenchmarkSequentialActivities(b *testing.B) {
	for _, tc := range []struct {
		name          string
		stock, memory bool
	}{
		{name: "tuned"},
		{name: "stock", stock: true},
		{name: "tuned_in_memory", memory: true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			opts := Options{UIPort: -1, Stock: tc.stock}
			if !tc.memory {
				opts.DBPath = filepath.Join(b.TempDir(), "temporal.db")
			}
			s := startServer(b, opts)
			c := dial(b, s)
			wid := 0
			run := func() time.Duration {
				wid++
				start := time.Now()
				r, err := c.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
					ID: "seq-" + strconv.Itoa(wid), TaskQueue: testTaskQueue,
				}, SequentialWorkflow, benchActivities)
				if err != nil {
					b.Fatalf("start workflow: %v", err)
				}
				if err := r.Get(context.Background(), nil); err != nil {
					b.Fatalf("workflow: %v", err)
				}
				return time.Since(start)
			}
			run() // warm-up: first workflow pays for task queue creation
			var perActivity []float64
			b.ResetTimer()
			for b.Loop() {
				perActivity = append(perActivity, float64(run().Microseconds())/1000/benchActivities)
			}
			b.ReportMetric(median(perActivity), "ms/activity")
		})
	}
}

// median is the middle value of xs.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func BenchmarkStart(b *testing.B) {
	b.Run("cold", func(b *testing.B) {
		dir := b.TempDir()
		i := 0
		benchStart(b, func() string {
			i++
			return filepath.Join(dir, strconv.Itoa(i)+".db")
		})
	})
	b.Run("warm", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "warm.db")
		s, err := Start(context.Background(), Options{DBPath: path, UIPort: -1})
		if err != nil {
			b.Fatalf("create %s: %v", path, err)
		}
		if err := s.Stop(); err != nil {
			b.Fatalf("stop: %v", err)
		}
		benchStart(b, func() string { return path })
	})
}

// benchStart times Start (with the UI) on the path next returns; Stop is
// not timed.
func benchStart(b *testing.B, next func() string) {
	for b.Loop() {
		path := next()
		s, err := Start(context.Background(), Options{DBPath: path})
		if err != nil {
			b.Fatalf("Start %s: %v", path, err)
		}
		b.StopTimer()
		if err := s.Stop(); err != nil {
			b.Fatalf("Stop: %v", err)
		}
		b.StartTimer()
	}
}
