package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"codeswarm/llm/scripted"
)

// holdIntegrationUpdate installs a reference-transaction hook that, the
// first time the run's integration branch is moved by a merge (not created),
// signals through marker and then holds git for hold after the update is
// committed: the merge has landed but the activity has not returned yet.
func holdIntegrationUpdate(t *testing.T, repo, runID, marker string, hold time.Duration) {
	t.Helper()
	script := fmt.Sprintf(`#!/bin/sh
[ "$1" = committed ] || exit 0
grep -v '^0\{40\} ' | grep -q ' refs/heads/codeswarm/%s/integration$' || exit 0
[ -e %q ] && exit 0
touch %q
sleep %d
`, runID, marker, marker, int(hold.Seconds()))
	hook := filepath.Join(repo, ".git", "hooks", "reference-transaction")
	if err := os.WriteFile(hook, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

// finalAnswered reports whether some agent of script has been given its
// final answer: its sub-agent is about to commit and merge.
func finalAnswered(model *scripted.Server, script scripted.Script) bool {
	for _, q := range model.Requests() {
		for _, a := range script.Agents {
			if q.Agent == a.Match && q.Turn == len(a.Turns)-1 && q.Status == 200 {
				return true
			}
		}
	}
	return false
}

// TestWorkerCrashDuringMerge kills the worker while a merge is in flight,
// after the compare-and-swap moved the integration branch but before the
// activity reported back. The retried merge must find its commit already
// there: no second merge commit, the same tree as an uninterrupted run.
func TestWorkerCrashDuringMerge(t *testing.T) {
	script := slowDemo(crashLatency)
	r, repo, ref := newCrashRun(t, script)
	marker := filepath.Join(t.TempDir(), "merge-landed")
	holdIntegrationUpdate(t, repo, "crash-merge", marker, 5*time.Second)
	r.startWorker()
	start := time.Now()
	r.startRun(repo, "crash-merge")
	// Freeze the model once a sub-agent has its final answer, so the kill
	// can strike the moment its merge lands, with no answer on its way.
	waitFor(t, 2*time.Minute, func() bool { return finalAnswered(r.model, script) })
	r.freeze(0)
	waitFor(t, 2*time.Minute, func() bool { _, err := os.Stat(marker); return err == nil })
	r.killFrozen()
	// MergeSubtasks when sub-agents that ended together merge in one batch.
	if k := r.kills[0]; !slices.ContainsFunc(k.pending, func(p pendingActivity) bool {
		return p.activity == "MergeSubtask" || p.activity == "MergeSubtasks"
	}) {
		t.Errorf("no MergeSubtask(s) pending at the kill: %v", k.pending)
	}
	res := r.await("crash-merge")
	r.reportKills(time.Since(start))
	checkLikeReference(t, repo, res, ref)
}
