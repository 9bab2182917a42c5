package gitops

import "sync"

// worktreeLocks serialises the worktree commands of one repository within
// this process. `git worktree add` writes .git/worktrees/<name>/ file by file
// (gitdir, commondir, locked, HEAD); a concurrent `worktree list`, `worktree
// prune` or `worktree add -b` reads that half-written entry and fails
// ("failed to read .git/worktrees/<name>/commondir"), and a prune can even
// delete it under the add. The lock is process-wide because every activity
// opens its own Repo for the same repository.
var worktreeLocks sync.Map // lock key -> *sync.Mutex

// lockWorktrees takes the repository's worktree lock and returns its unlock.
func (r *Repo) lockWorktrees() func() {
	v, _ := worktreeLocks.LoadOrStore(r.lockKey(), new(sync.Mutex))
	mu := v.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// lockKey names the repository by its shared git directory, which every
// linked worktree has in common; a Repo rebuilt without it uses Root.
func (r *Repo) lockKey() string {
	if r.CommonDir != "" {
		return realPath(r.CommonDir)
	}
	return realPath(r.Root)
}
