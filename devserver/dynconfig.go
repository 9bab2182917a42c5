package devserver

import (
	"maps"
	"time"

	"go.temporal.io/server/common/dynamicconfig"
)

// queuePollRPS replaces the default of 20 polls per second per history queue.
// Every activity needs two transfer tasks (schedule the activity, then the
// next workflow task); at 20 RPS each waits up to 50 ms for a poll token.
const queuePollRPS = 10000

// historyLongPoll bounds how long a missed history notification can delay a
// caller waiting on a workflow.
const historyLongPoll = 250 * time.Millisecond

// MatchingLongPoll is how long the embedded server holds an empty poll.
const MatchingLongPoll = 10 * time.Second

// baseDynamicConfig is what the Temporal CLI dev server sets: features a
// single-user dev server wants regardless of performance tuning.
func baseDynamicConfig() map[dynamicconfig.Key]any {
	return map[dynamicconfig.Key]any{
		// New search attributes and Nexus endpoints are usable at once
		// instead of after the cache's eventual refresh.
		dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(): true,
		dynamicconfig.ForceNexusEndpointRefreshOnRead.Key():         true,
		// Bypassing those caches costs persistence reads; raise the limits
		// keeping the ratio of the defaults, as the CLI does.
		dynamicconfig.FrontendPersistenceMaxQPS.Key():    10000,
		dynamicconfig.HistoryPersistenceMaxQPS.Key():     45000,
		dynamicconfig.HistoryCacheHostLevelMaxSize.Key(): 8096,
		// The Web UI polls visibility; the default of 10 RPS throttles it.
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 100,
		// An idle worker's last poll time (what a run's host watch reads)
		// moves only when a long poll starts or ends: ending them every
		// 10 s instead of 60 s lets workspace.host_lost_after go down to
		// ~15 s on this server.
		dynamicconfig.MatchingLongPollExpirationInterval.Key(): MatchingLongPoll,
		// Fairness on every task queue from the moment it is loaded, so
		// the waiting permits on codeswarm's LLM queue (each carries its
		// run's ID as fairness key) go to the runs in turn, not first
		// come, first served. A queue without fairness keys dispatches as
		// before (one key, oldest first). Not matching.autoEnableV2: that
		// switches a queue when its first keyed task arrives and, to do
		// it, unloads the queue under the pollers waiting on it, which
		// held a fresh server's first permit for about a second.
		dynamicconfig.MatchingEnableFairness.Key(): true,
		dynamicconfig.MatchingAutoEnableV2.Key():   false,
	}
}

// tunedDynamicConfig is the latency tuning that is the point of this package.
func tunedDynamicConfig() map[dynamicconfig.Key]any {
	return map[dynamicconfig.Key]any{
		dynamicconfig.TransferProcessorMaxPollRPS.Key():   queuePollRPS,
		dynamicconfig.TimerProcessorMaxPollRPS.Key():      queuePollRPS,
		dynamicconfig.VisibilityProcessorMaxPollRPS.Key(): queuePollRPS,
		dynamicconfig.OutboundProcessorMaxPollRPS.Key():   queuePollRPS,
		// One partition per task queue: with several, a task can land on a
		// partition without a waiting poller and must be forwarded.
		dynamicconfig.MatchingNumTaskqueueReadPartitions.Key():  1,
		dynamicconfig.MatchingNumTaskqueueWritePartitions.Key(): 1,
		// Workflow updates are used by callers; make sure they are on.
		dynamicconfig.FrontendEnableUpdateWorkflowExecution.Key():              true,
		dynamicconfig.FrontendEnableUpdateWorkflowExecutionAsyncAccepted.Key(): true,
		// Waiting for a workflow's result (GetWorkflowExecutionHistory with
		// wait) sometimes misses the close notification when the workflow
		// runs fast, and then stalls until this expires: 20 s by default.
		// A short interval turns the stall into a cheap re-poll.
		dynamicconfig.HistoryLongPollExpirationInterval.Key(): historyLongPoll,
		// Background scanners only add load on a one-file SQLite store.
		dynamicconfig.HistoryScannerEnabled.Key():    false,
		dynamicconfig.TaskQueueScannerEnabled.Key():  false,
		dynamicconfig.ExecutionsScannerEnabled.Key(): false,
		dynamicconfig.BuildIdScavengerEnabled.Key():  false,
	}
}

// buildDynamicConfig layers the base settings, the tuning (unless o.Stock)
// and the caller's overrides, in that order.
func buildDynamicConfig(o Options) dynamicconfig.StaticClient {
	dc := dynamicconfig.StaticClient(baseDynamicConfig())
	if !o.Stock {
		maps.Copy(dc, tunedDynamicConfig())
	}
	for k, v := range o.DynamicConfig {
		dc[dynamicconfig.MakeKey(k)] = v
	}
	return dc
}
