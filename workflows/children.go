package workflows

import "go.temporal.io/sdk/workflow"

// childChannels are the run's lines to its sub-agents: signals it sends
// (inflight until delivered), usage reports they send (reports), the ends
// of sub-agents an earlier run started, which AwaitChildren reports (ends),
// and the cancel of that AwaitChildren call (stopAwait).
type childChannels struct {
	inflight   int
	reports    workflow.ReceiveChannel
	ends       workflow.ReceiveChannel
	stopAwait  workflow.CancelFunc
	cancelSent bool // the run's cancellation went to inherited sub-agents
}
