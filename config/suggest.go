package config

import "codeswarm/internal/textdist"

// closest returns the known key nearest to key by edit distance, or "" when
// none is close enough to be a plausible typo.
func closest(known []string, key string) string {
	const maxDistance = 3
	best, bestDist := "", maxDistance+1
	for _, k := range known {
		if d := textdist.Levenshtein(k, key, maxDistance+1); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}
