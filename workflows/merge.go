package workflows

import "codeswarm/activities"

// mergeQueue is the integration branch as the run has built it: the head
// its merges left and the last verify report. Ended sub-agents' changes
// join it one batch at a time (mergeAll).
type mergeQueue struct {
	Head   string                   `json:"head"`
	Verify *activities.VerifyReport `json:"verify,omitempty"`
}
