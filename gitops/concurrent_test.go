package gitops

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

// TestAddWorktreeConcurrent fans out worktree creation as a wide swarm does,
// each goroutine with its own Repo (activities open one per call). `git
// worktree list` run while another `worktree add` is half-way fails to read
// the new entry's commondir; no call may fail for that.
func TestAddWorktreeConcurrent(t *testing.T) {
	const n = 50
	ctx := context.Background()
	tr := newTestRepo(t)
	base := tr.head("HEAD")
	root := t.TempDir()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			repo, err := Open(ctx, tr.dir)
			if err != nil {
				errs[i] = err
				return
			}
			dir := filepath.Join(root, fmt.Sprintf("sub-%02d", i))
			if _, err := repo.AddWorktree(ctx, dir, fmt.Sprintf("codeswarm/sub-%02d", i), base); err != nil {
				errs[i] = err
				return
			}
			if i%2 == 0 {
				errs[i] = repo.RemoveWorktree(ctx, dir, false)
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("goroutine %d: %v", i, err)
		}
	}
	if got := len(mustList(t, tr.repo)); got != 1+n/2 {
		t.Errorf("%d worktrees, want %d (main + the odd ones)", got, 1+n/2)
	}
}
