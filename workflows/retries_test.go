package workflows_test

import (
	"errors"
	"testing"

	"codeswarm/activities"
)

// TestMaxRetries checks that swarm.max_retries is the number of retries of
// tool and git activities, in a sub-agent and in the parent, and that 0
// means a single attempt (it used to become 3).
func TestMaxRetries(t *testing.T) {
	for _, retries := range []int{0, 2} {
		t.Run("sub-agent", func(t *testing.T) {
			w := newWorld()
			w.startErr = errors.New("disk hiccup") // retryable
			in := agentInput()
			in.Limits.MaxRetries = retries
			res := runAgent(t, newEnv(t, w), in)
			if res.Success || len(w.starts) != retries+1 {
				t.Errorf("max_retries %d: start attempts = %d (success %v), want %d", retries, len(w.starts), res.Success, retries+1)
			}
		})
		t.Run("parent", func(t *testing.T) {
			w := newWorld(subtask("01-a", 0))
			w.mergeErr = errors.New("disk hiccup") // retryable
			in := swarmInput()
			in.Limits.MaxRetries = retries
			res := runSwarm(t, newEnv(t, w), in)
			if got := subtaskResult(t, res, "01-a"); got.Merge == activities.MergeMerged || len(w.merges) != retries+1 {
				t.Errorf("max_retries %d: merge attempts = %d (merge %q), want %d", retries, len(w.merges), got.Merge, retries+1)
			}
		})
	}
}
