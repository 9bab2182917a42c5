package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"codeswarm/llm/scripted"
)

// holdIntegrationUpdate puts a git in front of the worker's PATH that, the
// first time the run's integration branch is moved by a merge (not
// created), signals through marker and then holds for hold after the
// update is done: the merge has landed but the activity has not returned
// yet. (A reference-transaction hook in the repository no longer runs:
// codeswarm's own git commands run no hook.)
func holdIntegrationUpdate(t *testing.T, runID, marker string, hold time.Duration) {
	t.Helper()
	real, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	ref := "refs/heads/codeswarm/" + runID + "/integration"
	script := fmt.Sprintf(`#!/bin/sh
%q "$@"
rc=$?
[ $rc -eq 0 ] || exit $rc
[ -e %q ] && exit 0
is_update=no; is_ref=no; last=""
for a in "$@"; do
  [ "$a" = update-ref ] && is_update=yes
  [ "$a" = %q ] && is_ref=yes
  last="$a"
done
if [ $is_update = yes ] && [ $is_ref = yes ] && [ -n "$last" ] && [ "$last" != 0000000000000000000000000000000000000000 ]; then
  touch %q
  sleep %d
fi
exit 0
`, real, marker, ref, marker, int(hold.Seconds()))
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "git"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
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
	holdIntegrationUpdate(t, "crash-merge", marker, 5*time.Second)
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
