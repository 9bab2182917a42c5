package bench

import (
	"slices"
	"time"

	"codeswarm/llm/scripted"
)

// stepCosts returns the mean time between consecutive model requests of
// the agent matching match over its first 100 and its last 100 steps, in
// ms. A step is everything between two model calls: the answer, the tool
// call, the bookkeeping. Retried requests (same turn twice) count once.
func stepCosts(reqs []scripted.Request, match string) (first, last float64) {
	byTurn := map[int]time.Time{}
	for _, r := range reqs {
		if r.Kind != scripted.KindAgent || r.Agent != match {
			continue
		}
		if _, seen := byTurn[r.Turn]; !seen {
			byTurn[r.Turn] = r.Time
		}
	}
	turns := make([]int, 0, len(byTurn))
	for turn := range byTurn {
		turns = append(turns, turn)
	}
	slices.Sort(turns)
	var times []time.Time
	for _, turn := range turns {
		times = append(times, byTurn[turn])
	}
	const window = 100
	if len(times) < 2*window+1 {
		return 0, 0
	}
	mean := func(ts []time.Time) float64 {
		return float64(ts[len(ts)-1].Sub(ts[0]).Microseconds()) / 1000 / float64(len(ts)-1)
	}
	return mean(times[:window+1]), mean(times[len(times)-window-1:])
}
