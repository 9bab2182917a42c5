package gitops

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Size of the generated benchmark repository: benchDirs × benchFilesPerDir
// files of roughly benchFileSize bytes, in one commit.
const (
	benchDirs        = 100
	benchFilesPerDir = 100
	benchFileSize    = 3000
)

// newBenchRepo generates the 10,000-file repository with git fast-import
// (seconds, versus minutes through the porcelain) and opens it. Only refs
// and objects exist; the main working tree is never checked out because
// nothing measured here reads it.
func newBenchRepo(b *testing.B) (*Repo, string) {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "repo")
	runGit(b, "", nil, "init", "--quiet", "--initial-branch=main", dir)
	cmd := exec.Command("git", "-C", dir, "fast-import", "--quiet")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(stdin)
	fmt.Fprintf(w, "commit refs/heads/main\ncommitter Bench <bench@example.com> 1700000000 +0000\ndata 7\ninitial\n")
	for d := range benchDirs {
		for f := range benchFilesPerDir {
			content := benchContent(benchPath(d, f), "v0")
			fmt.Fprintf(w, "M 100644 inline %s\ndata %d\n%s\n", benchPath(d, f), len(content), content)
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		b.Fatalf("fast-import: %v", err)
	}
	repo, err := Open(context.Background(), dir)
	if err != nil {
		b.Fatal(err)
	}
	return repo, runGit(b, dir, nil, "rev-parse", "main")
}

func benchPath(d, f int) string { return fmt.Sprintf("pkg%03d/file%03d.go", d, f) }

// benchContent is a unique, compressible body of about benchFileSize bytes.
func benchContent(path, version string) string {
	line := fmt.Sprintf("// %s %s: the quick brown fox jumps over the lazy dog\n", path, version)
	return strings.Repeat(line, benchFileSize/len(line))
}

// benchCommit commits new versions of files d/0..9 on top of parent.
func benchCommit(b *testing.B, tr *testRepo, branch, parent string, d int) string {
	b.Helper()
	files := make(map[string]string, 10)
	for f := range 10 {
		files[benchPath(d, f)] = benchContent(benchPath(d, f), branch)
	}
	return tr.commitOn(branch, parent, files)
}

// BenchmarkAddWorktree measures checking out a new worktree of 10,000
// files on a new branch; removal and the disk flush after it are outside
// the timer. The git-cli sub-benchmark runs plain `git worktree add` the
// same way, as a baseline for this package's own overhead.
func BenchmarkAddWorktree(b *testing.B) {
	ctx := context.Background()
	b.Run("gitops", func(b *testing.B) {
		benchWorktreeAdd(b, func(repo *Repo, dir, branch, base string) {
			if _, err := repo.AddWorktree(ctx, dir, branch, base); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("git-cli", func(b *testing.B) {
		benchWorktreeAdd(b, func(repo *Repo, dir, branch, base string) {
			runGit(b, repo.Root, nil, "worktree", "add", "--quiet", "-b", branch, dir, base)
		})
	})
}

func benchWorktreeAdd(b *testing.B, add func(repo *Repo, dir, branch, base string)) {
	ctx := context.Background()
	repo, base := newBenchRepo(b)
	root := b.TempDir()
	syscall.Sync()
	b.ResetTimer()
	for i := range b.N {
		dir := filepath.Join(root, fmt.Sprintf("wt-%d", i))
		branch := fmt.Sprintf("bench/%d", i)
		add(repo, dir, branch, base)
		b.StopTimer()
		if err := repo.RemoveWorktree(ctx, dir, true); err != nil {
			b.Fatal(err)
		}
		runGit(b, repo.Root, nil, "update-ref", "-d", "refs/heads/"+branch)
		// Flush the deletion's writes (and discards) now, so they are not
		// billed to the next, timed, checkout.
		syscall.Sync()
		b.StartTimer()
	}
}

// BenchmarkReuseWorktree measures the two halves of reusing a merged
// sub-agent's worktree of the 10,000-file tree: park (status, detach,
// clean -ffdx, move to the pool) and claim (move to the new path, checkout
// -f -b of a base that differs from the parked commit in 10 files), the
// claim being what replaces AddWorktree's full checkout. The untimed part
// of each op commits 10 changed files in the worktree, as a sub-agent does.
// claim-git-cli claims as plain git would (worktree move, checkout --force
// -b), as the claim did before its two-way read-tree. Each reports the git
// processes' CPU time (child-cpu-ms/op).
func BenchmarkReuseWorktree(b *testing.B) {
	for _, timed := range []string{"claim", "claim-git-cli", "park"} {
		b.Run(timed, func(b *testing.B) {
			ctx := context.Background()
			repo, base := newBenchRepo(b)
			root := b.TempDir()
			dir := filepath.Join(root, "wt-0")
			if _, err := repo.AddWorktree(ctx, dir, "bench/0", base); err != nil {
				b.Fatal(err)
			}
			syscall.Sync()
			var cpu childCPU
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				for f := range 10 {
					p := filepath.Join(dir, filepath.FromSlash(benchPath(i%benchDirs, f)))
					if err := os.WriteFile(p, []byte(benchContent(p, fmt.Sprint(i))), 0o644); err != nil {
						b.Fatal(err)
					}
				}
				runGit(b, dir, nil, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "--quiet", "-am", "work")
				parked := filepath.Join(root, "pool", fmt.Sprint(i))
				if timed == "park" {
					cpu.start()
					b.StartTimer()
				}
				if err := repo.ParkWorktree(ctx, dir, parked); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if timed == "park" {
					cpu.stop()
				}
				syscall.Sync()
				dir = filepath.Join(root, fmt.Sprintf("wt-%d", i+1))
				branch := fmt.Sprintf("bench/%d", i+1)
				if timed != "park" {
					cpu.start()
					b.StartTimer()
				}
				if timed == "claim-git-cli" {
					runGit(b, repo.Root, nil, "worktree", "move", parked, dir)
					runGit(b, dir, nil, "checkout", "--quiet", "--force", "--no-track", "-b", branch, base)
				} else {
					wt, err := repo.AddWorktreeFrom(ctx, dir, branch, base, parked)
					if err != nil || wt.Head != base || !wt.Claimed {
						b.Fatalf("AddWorktreeFrom = %+v, %v", wt, err)
					}
				}
				b.StopTimer()
				if timed != "park" {
					cpu.stop()
				}
				if _, err := os.Lstat(parked); err == nil {
					b.Fatal("the parked worktree was not claimed")
				}
				syscall.Sync()
				b.StartTimer()
			}
			cpu.report(b)
		})
	}
}

// BenchmarkMerge measures a real three-way merge (merge commit, CAS update)
// of a branch changing 10 files into an integration branch that changed 10
// other files, in the 10,000-file repository.
func BenchmarkMerge(b *testing.B) {
	ctx := context.Background()
	repo, base := newBenchRepo(b)
	tr := &testRepo{t: b, dir: repo.Root, repo: repo}
	integ := benchCommit(b, tr, "integ", base, 1)
	src := benchCommit(b, tr, "feature", base, 0)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		runGit(b, repo.Root, nil, "update-ref", "refs/heads/integ", integ)
		b.StartTimer()
		res, err := repo.Merge(ctx, MergeInput{TargetBranch: "integ", Source: src})
		if err != nil || res.Status != MergeMerged || len(res.FilesChanged) != 10 {
			b.Fatalf("Merge = %+v, %v", res, err)
		}
	}
}

// BenchmarkCommitAll measures staging and committing 10 changed files in a
// 10,000-file worktree (git add -A scans the whole tree; the paths
// sub-benchmark stages the 10 files by name, as CommitPaths does). The git-cli
// sub-benchmark does the same with `git add --all` and `git commit`, as
// CommitAll did before it built the commit from write-tree, commit-tree and
// update-ref. Both report the git processes' CPU time (child-cpu-ms/op), a
// steadier figure than wall time on a shared machine.
func BenchmarkCommitAll(b *testing.B) {
	ctx := context.Background()
	b.Run("gitops", func(b *testing.B) {
		benchCommitAll(b, func(dir, base string) {
			res, err := CommitAll(ctx, dir, base, "bench", [][2]string{{"Codeswarm-Run", "bench"}})
			if err != nil || !res.Changed {
				b.Fatalf("CommitAll = %+v, %v", res, err)
			}
		})
	})
	b.Run("paths", func(b *testing.B) {
		paths := make([]string, 10)
		for f := range paths {
			paths[f] = benchPath(0, f)
		}
		benchCommitAll(b, func(dir, base string) {
			res, err := CommitPaths(ctx, dir, base, "bench", [][2]string{{"Codeswarm-Run", "bench"}}, paths)
			if err != nil || !res.Changed {
				b.Fatalf("CommitPaths = %+v, %v", res, err)
			}
		})
	})
	b.Run("git-cli", func(b *testing.B) {
		benchCommitAll(b, func(dir, _ string) {
			runGit(b, dir, nil, "add", "--all")
			runGit(b, dir, nil, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "--quiet", "--no-verify", "-m", "bench")
		})
	})
}

func benchCommitAll(b *testing.B, commit func(dir, base string)) {
	ctx := context.Background()
	repo, base := newBenchRepo(b)
	dir := filepath.Join(b.TempDir(), "wt")
	if _, err := repo.AddWorktree(ctx, dir, "bench/commit", base); err != nil {
		b.Fatal(err)
	}
	var cpu childCPU
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		for f := range 10 {
			p := benchPath(0, f)
			if err := os.WriteFile(filepath.Join(dir, p), []byte(benchContent(p, fmt.Sprint(i))), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		cpu.start()
		b.StartTimer()
		commit(dir, base)
		b.StopTimer()
		cpu.stop()
		b.StartTimer()
	}
	cpu.report(b)
}

// childCPU adds up the CPU time (user and system) of the child processes
// waited for between start and stop: the git processes of the timed part.
type childCPU struct {
	from, total time.Duration
}

func childrenCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (c *childCPU) start() { c.from = childrenCPU() }
func (c *childCPU) stop()  { c.total += childrenCPU() - c.from }

func (c *childCPU) report(b *testing.B) {
	b.ReportMetric(float64(c.total.Microseconds())/1000/float64(b.N), "child-cpu-ms/op")
}

// BenchmarkRefSHA measures one ref read, i.e. the cost of one git process.
func BenchmarkRefSHA(b *testing.B) {
	ctx := context.Background()
	repo, _ := newBenchRepo(b)
	b.ResetTimer()
	for range b.N {
		if sha, err := repo.RefSHA(ctx, "main"); err != nil || sha == "" {
			b.Fatalf("RefSHA = %q, %v", sha, err)
		}
	}
}

// BenchmarkMergeBatch measures merging n subtask branches, each changing
// 10 files of its own directory, into an integration branch that changed
// 10 other files, in the 10,000-file repository. "all" is one MergeAll
// (what MergeSubtasks runs); "each" is one Merge per item, each onto the
// head the one before left (what MergeSubtasks ran before MergeAll).
func BenchmarkMergeBatch(b *testing.B) {
	repo, base := newBenchRepo(b)
	tr := &testRepo{t: b, dir: repo.Root, repo: repo}
	integ := benchCommit(b, tr, "integ", base, 1)
	var items []MergeInput
	for i := range 10 {
		items = append(items, MergeInput{TargetBranch: "integ", Source: benchCommit(b, tr, fmt.Sprintf("feature-%d", i), base, 2+i)})
	}
	for _, n := range []int{1, 5, 10} {
		b.Run(fmt.Sprintf("n=%d/all", n), func(b *testing.B) {
			benchMergeBatch(b, tr, integ, func() ([]MergeResult, error) {
				return repo.MergeAll(context.Background(), MergeAllInput{TargetBranch: "integ", Head: integ, Items: items[:n]})
			})
		})
		b.Run(fmt.Sprintf("n=%d/each", n), func(b *testing.B) {
			benchMergeBatch(b, tr, integ, func() ([]MergeResult, error) {
				return mergeEachExported(repo, integ, items[:n])
			})
		})
	}
}

// mergeEachExported is the item-by-item batch through the exported Merge
// only, so the same benchmark builds against older versions of Merge.
func mergeEachExported(repo *Repo, head string, items []MergeInput) ([]MergeResult, error) {
	out := make([]MergeResult, 0, len(items))
	for _, item := range items {
		item.Onto = head
		res, err := repo.Merge(context.Background(), item)
		if err != nil {
			return nil, err
		}
		head = res.Commit
		out = append(out, res)
	}
	return out, nil
}

func benchMergeBatch(b *testing.B, tr *testRepo, integ string, merge func() ([]MergeResult, error)) {
	for range b.N {
		b.StopTimer()
		runGit(b, tr.dir, nil, "update-ref", "refs/heads/integ", integ)
		b.StartTimer()
		res, err := merge()
		if err != nil || res[len(res)-1].Status != MergeMerged || len(res[len(res)-1].FilesChanged) != 10 {
			b.Fatalf("merge = %+v, %v", res, err)
		}
	}
}

// BenchmarkAddWorktreeFanOut measures ten sub-agents starting at once, as
// in B3: each opens the repository and adds its worktree on a new branch
// of a small repository, concurrently; they queue on the worktree lock.
func BenchmarkAddWorktreeFanOut(b *testing.B) {
	const agents = 10
	ctx := context.Background()
	tr := newTestRepo(b)
	base := tr.head("main")
	root := b.TempDir()
	b.ResetTimer()
	for i := range b.N {
		dirs := make([]string, agents)
		errs := make([]error, agents)
		var wg sync.WaitGroup
		for a := range agents {
			dirs[a] = filepath.Join(root, fmt.Sprintf("wt-%d-%d", i, a))
			wg.Go(func() {
				repo, err := Open(ctx, tr.dir)
				if err == nil {
					_, err = repo.AddWorktree(ctx, dirs[a], fmt.Sprintf("bench/%d-%d", i, a), base)
				}
				errs[a] = err
			})
		}
		wg.Wait()
		b.StopTimer()
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
		if _, kept, err := tr.repo.RemoveWorktrees(ctx, dirs); err != nil || len(kept) > 0 {
			b.Fatalf("remove worktrees: kept %v, %v", kept, err)
		}
		b.StartTimer()
	}
}

// BenchmarkIndexPathsNotOwnedBy reads a 10,000-file worktree's index for
// the files a uid does not own (none here), as StartSubtask does for each
// claimed worktree instead of an lstat of every file (BenchmarkOwnerWalk).
func BenchmarkIndexPathsNotOwnedBy(b *testing.B) {
	repo, head := newBenchRepo(b)
	wt, err := repo.AddWorktree(context.Background(), filepath.Join(b.TempDir(), "wt"), "codeswarm/bench", head)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		paths, err := IndexPathsNotOwnedBy(wt.Dir, os.Getuid(), os.Getgid())
		if err != nil || len(paths) != 0 {
			b.Fatalf("%d paths, %v", len(paths), err)
		}
	}
}

// BenchmarkOwnerWalk is the walk IndexPathsNotOwnedBy spares a claimed
// worktree: an lstat of each of its 10,000 files (tools.PrepareWorktree's,
// with nothing to change).
func BenchmarkOwnerWalk(b *testing.B) {
	repo, head := newBenchRepo(b)
	wt, err := repo.AddWorktree(context.Background(), filepath.Join(b.TempDir(), "wt"), "codeswarm/bench", head)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		n := 0
		err := filepath.WalkDir(wt.Dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Name() == ".git" {
				return nil
			}
			fi, err := d.Info()
			if err == nil && int(fi.Sys().(*syscall.Stat_t).Uid) == os.Getuid() {
				n++
			}
			return err
		})
		if err != nil || n < 10000 {
			b.Fatalf("%d owned, %v", n, err)
		}
	}
}
