package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"

	"codeswarm/gitops"
	"codeswarm/tools"
)

// MergeSubtaskInput merges a subtask's commit into the integration branch.
type MergeSubtaskInput struct {
	RunID             string `json:"run_id"`
	RepoPath          string `json:"repo_path"`
	IntegrationBranch string `json:"integration_branch"`
	SubtaskID         string `json:"subtask_id"`
	Name              string `json:"name"`
	Commit            string `json:"commit"`
	// Worktree is the sub-agent's worktree: once its commit is merged it
	// is parked for the run's next sub-agent (see worktreePool).
	Worktree string `json:"worktree,omitempty"`
}

// MergeSubtaskResult is the merge outcome.
type MergeSubtaskResult struct {
	Status       string   `json:"status"`
	Commit       string   `json:"commit"`
	Conflicts    []string `json:"conflicts,omitempty"`
	FilesChanged []string `json:"files_changed,omitempty"`
	// ConflictsOmitted and FilesOmitted count the paths beyond
	// MaxListedPaths, not listed.
	ConflictsOmitted int `json:"conflicts_omitted,omitempty"`
	FilesOmitted     int `json:"files_changed_omitted,omitempty"`
}

// MergeSubtask merges without a worktree (merge-tree, commit-tree,
// compare-and-swap update-ref); a retry after a landed merge is a no-op.
func (a *Activities) MergeSubtask(ctx context.Context, in MergeSubtaskInput) (MergeSubtaskResult, error) {
	defer keepAlive(ctx)()
	res, err := mergeOne(ctx, mergeRepo(in.RepoPath), in, "")
	if err == nil && res.Status == MergeMerged {
		a.parkMerged(in.RunID, in.RepoPath, in.Worktree)
	}
	return res, err
}

// mergeRepo is the repository a merge activity works in. RepoPath is the
// top level PrepareRun's Open found, and a merge touches only refs and
// objects (no worktree, no worktree lock), so it needs no second Open: one
// git process less on the run's last stretch. A path that is no longer a
// repository fails the merge's first git command instead.
func mergeRepo(repoPath string) *gitops.Repo {
	return &gitops.Repo{Root: repoPath}
}

// mergeOne merges one subtask's commit; gitops.Merge finds a commit already
// on the integration branch and reports its merge again, which is what
// makes a retry of either merge activity safe.
func mergeOne(ctx context.Context, repo *gitops.Repo, in MergeSubtaskInput, onto string) (MergeSubtaskResult, error) {
	item := mergeItem(in)
	item.Onto = onto
	res, err := repo.Merge(ctx, item)
	if err != nil {
		return MergeSubtaskResult{}, fmt.Errorf("merge subtask %s: %w", in.SubtaskID, err)
	}
	return mergeResult(res), nil
}

// mergeItem is the merge of one subtask's commit, with the message and
// trailers that name it.
func mergeItem(in MergeSubtaskInput) gitops.MergeInput {
	return gitops.MergeInput{
		TargetBranch: in.IntegrationBranch,
		Source:       in.Commit,
		Message:      fmt.Sprintf("codeswarm: merge %s (%s)", in.SubtaskID, in.Name),
		Trailers:     trailers(in.RunID, in.SubtaskID),
	}
}

func mergeResult(res gitops.MergeResult) MergeSubtaskResult {
	out := MergeSubtaskResult{Status: res.Status, Commit: res.Commit}
	out.Conflicts, out.ConflictsOmitted = listPaths(res.Conflicts)
	out.FilesChanged, out.FilesOmitted = listPaths(res.FilesChanged)
	return out
}

// MergeSubtasksInput merges several subtasks' commits, in order, into the
// integration branch. Each item's RunID, RepoPath and IntegrationBranch are
// ignored: the batch's own apply to every item.
type MergeSubtasksInput struct {
	RunID             string `json:"run_id"`
	RepoPath          string `json:"repo_path"`
	IntegrationBranch string `json:"integration_branch"`
	// Head is the integration head the parent knows, which the first item
	// is merged onto; each next item goes onto the head the one before left.
	Head  string              `json:"head"`
	Items []MergeSubtaskInput `json:"items"`
}

// MergeSubtasksResult holds one outcome per item, in the items' order.
type MergeSubtasksResult struct {
	Results []MergeSubtaskResult `json:"results"`
}

// MergeSubtasks merges the items one after another, each onto the head the
// one before left, in one activity: the parent books sub-agents that end
// together with one dispatch instead of one per sub-agent. A conflict (or no
// change) is that item's outcome and the next item goes on. gitops.MergeAll
// lands each chunk of mergeChunk items with one compare-and-swap, and a
// batch retried after a crash merges nothing twice: items that landed
// report their merge commit again, and the others are judged against the
// head they met the first time (Onto), so every outcome is the same.
func (a *Activities) MergeSubtasks(ctx context.Context, in MergeSubtasksInput) (MergeSubtasksResult, error) {
	defer keepAlive(ctx)()
	repo := mergeRepo(in.RepoPath)
	out := MergeSubtasksResult{Results: make([]MergeSubtaskResult, 0, len(in.Items))}
	head := in.Head
	for chunk := range slices.Chunk(in.Items, mergeChunk) {
		batch := gitops.MergeAllInput{
			TargetBranch: in.IntegrationBranch,
			Head:         head,
			Items:        make([]gitops.MergeInput, len(chunk)),
		}
		for i, item := range chunk {
			item.RunID, item.IntegrationBranch = in.RunID, in.IntegrationBranch
			batch.Items[i] = mergeItem(item)
		}
		results, err := repo.MergeAll(ctx, batch)
		if err != nil {
			return MergeSubtasksResult{}, fmt.Errorf("merge %d subtasks: %w", len(in.Items), err)
		}
		for i, res := range results {
			out.Results = append(out.Results, mergeResult(res))
			if res.Status == MergeMerged {
				a.parkMerged(in.RunID, in.RepoPath, chunk[i].Worktree)
			}
		}
		head = results[len(results)-1].Commit // the merge, or the head a conflict or no change left
	}
	return out, nil
}

// mergeChunk is how many items of a batch land together. A batch of a
// hundred ends (a wide run's parent after a continue-as-new) takes seconds
// to merge; landed a chunk at a time, the first merged worktrees are
// parked for the sub-agents waiting to start while the rest merge. A
// chunk is a MergeAll of its own, judged against the head the chunk
// before left, so a retried batch still merges nothing twice.
const mergeChunk = 8

// VerifyInput runs the verification command on a commit.
type VerifyInput struct {
	RunID     string        `json:"run_id"`
	RepoPath  string        `json:"repo_path"`
	Commit    string        `json:"commit"`
	Command   string        `json:"command"`
	Timeout   time.Duration `json:"timeout"`
	MaxOutput int           `json:"max_output"`
}

// Verify runs the command in a temporary detached worktree of the commit.
func (a *Activities) Verify(ctx context.Context, in VerifyInput) (VerifyReport, error) {
	defer keepAlive(ctx)()
	dir := filepath.Join(a.stateDir(in.RunID), "verify-"+ShortSHA(in.Commit))
	repo, err := gitops.Open(ctx, in.RepoPath)
	if err != nil {
		return VerifyReport{}, err
	}
	_ = repo.RemoveWorktree(ctx, dir, true)
	if err := repo.AddDetachedWorktree(ctx, dir, in.Commit); err != nil {
		return VerifyReport{}, fmt.Errorf("verify worktree: %w", err)
	}
	defer func() { _ = repo.RemoveWorktree(context.WithoutCancel(ctx), dir, true) }()
	args, _ := json.Marshal(map[string]any{"command": in.Command, "timeout": int(in.Timeout.Seconds())})
	res := tools.Run(ctx, tools.Options{
		Root:           dir,
		BashTimeout:    in.Timeout,
		BashMaxTimeout: in.Timeout,
		MaxOutputBytes: in.MaxOutput,
		Env:            a.Environ,
		Sandbox:        a.Sandbox,
		Heartbeat:      func() { activity.RecordHeartbeat(ctx) },
	}, "bash", string(args))
	code := exitCode(res.Output)
	return VerifyReport{
		Command:  in.Command,
		Commit:   in.Commit,
		OK:       code == 0 && !res.IsError,
		ExitCode: code,
		Output:   a.scrub(res.Output),
	}, nil
}

func exitCode(out string) int {
	i := strings.LastIndex(out, "exit code: ")
	if i < 0 {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.Fields(out[i+len("exit code: "):] + " x")[0]))
	if err != nil {
		return -1
	}
	return n
}
