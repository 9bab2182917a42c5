package activities

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"codeswarm/gitops"
)

// parkTimeout bounds one worktree's parking (a status, a checkout, a clean
// and a move).
const parkTimeout = 2 * time.Minute

// parkParallelism bounds the parkings in flight on this worker: they run
// beside the sub-agents' own work and must not crowd it out.
const parkParallelism = 2

// freshParallelism bounds the fresh checkouts (the whole tree) in flight
// on this worker, across its runs (gitops.WorktreePool).
const freshParallelism = 2

// worktreePool holds, per run, the worktrees of merged sub-agents parked
// for the run's next sub-agents (gitops.ParkWorktree): a worktree is
// checked out once per concurrent sub-agent instead of once per sub-agent,
// and a run no longer keeps every merged worktree until it ends (10,000
// checkouts of a 10,000-file repository would fill a disk). It lives in the
// worker's memory; the parked worktrees live under the run's state
// directory, where FinishRun removes whatever is left, known or not (a
// worker that restarted forgets its pool and checks out afresh).
type worktreePool struct {
	ready    *gitops.WorktreePool // run ID → parked worktrees
	mu       sync.Mutex
	inFlight map[string]*sync.WaitGroup // run ID → parkings under way
	seq      atomic.Int64
	slots    chan struct{}
}

// poolInit guards the creation of an Activities' pool, which the worker
// builds as a struct literal.
var poolInit sync.Mutex

// worktrees is a's pool, created on first use.
func (a *Activities) worktrees() *worktreePool {
	poolInit.Lock()
	defer poolInit.Unlock()
	if a.pool == nil {
		a.pool = &worktreePool{
			ready:    gitops.NewWorktreePool(freshParallelism),
			inFlight: map[string]*sync.WaitGroup{},
			slots:    make(chan struct{}, parkParallelism),
		}
	}
	return a.pool
}

// poolDir is where a run's parked worktrees live.
func (a *Activities) poolDir(runID string) string {
	return filepath.Join(a.stateDir(runID), "pool")
}

// parkMerged parks, in the background, the worktree of a sub-agent whose
// commit is now on the integration branch. A worktree that cannot be
// parked (it has uncommitted changes, its .git was tampered with, ...)
// stays where it is, and FinishRun removes or keeps it as before.
func (a *Activities) parkMerged(runID, repoRoot, dir string) {
	if dir == "" || runID == "" {
		return
	}
	p := a.worktrees()
	p.mu.Lock()
	wg := p.inFlight[runID]
	if wg == nil {
		wg = new(sync.WaitGroup)
		p.inFlight[runID] = wg
	}
	wg.Add(1)
	p.mu.Unlock()
	to := filepath.Join(a.poolDir(runID), fmt.Sprintf("%d-%d", os.Getpid(), p.seq.Add(1)))
	go func() {
		defer wg.Done()
		p.slots <- struct{}{}
		defer func() { <-p.slots }()
		ctx, cancel := context.WithTimeout(context.Background(), parkTimeout)
		defer cancel()
		repo := &gitops.Repo{Root: repoRoot}
		if err := repo.ParkWorktree(ctx, dir, to); err != nil {
			return
		}
		p.ready.Put(runID, to)
	}()
}

// returnParked gives back a parked worktree a claim did not use.
func (a *Activities) returnParked(runID, dir string) {
	if dir == "" {
		return
	}
	if _, err := os.Lstat(dir); err != nil {
		return // claimed (moved away), or gone
	}
	a.worktrees().ready.Put(runID, dir)
}

// drainParked waits for the run's parkings under way, forgets its pool and
// returns every worktree in its pool directory, for removal.
func (a *Activities) drainParked(runID string) []string {
	p := a.worktrees()
	p.mu.Lock()
	wg := p.inFlight[runID]
	p.mu.Unlock()
	if wg != nil {
		wg.Wait()
	}
	p.ready.Forget(runID)
	p.mu.Lock()
	delete(p.inFlight, runID)
	p.mu.Unlock()
	entries, err := os.ReadDir(a.poolDir(runID))
	if err != nil {
		return nil
	}
	dirs := make([]string, 0, len(entries))
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, filepath.Join(a.poolDir(runID), e.Name()))
		}
	}
	return dirs
}
