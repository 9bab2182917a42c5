//go:build race

package e2e

// raceEnabled: the tests run under the race detector (slower by several
// times), which some timing-bound scenarios cannot stand.
const raceEnabled = true
