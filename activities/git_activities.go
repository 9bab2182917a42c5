package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	openai "github.com/sashabaranov/go-openai"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"codeswarm/control"
	"codeswarm/gitops"
	"codeswarm/internal/transcript"
	"codeswarm/tools"
)

// PrepareRunInput starts a run on the user's repository.
type PrepareRunInput struct {
	RunID             string `json:"run_id"`
	RepoPath          string `json:"repo_path"`
	BaseRef           string `json:"base_ref"`
	IntegrationBranch string `json:"integration_branch"`
}

// PrepareRunResult pins the run to a base commit and a workspace host.
type PrepareRunResult struct {
	RepoRoot string `json:"repo_root"`
	// WorkspaceRoot is the preparing worker's workspace.root, where the
	// run's worktrees are ("" from older workers).
	WorkspaceRoot  string `json:"workspace_root,omitempty"`
	BaseCommit     string `json:"base_commit"`
	BaseBranch     string `json:"base_branch"` // the user's checked-out branch, for --apply
	WorkspaceQueue string `json:"workspace_queue"`
	RepoListing    string `json:"repo_listing"`
	GCAutoPrev     string `json:"gc_auto_prev"`
	GCAutoHad      bool   `json:"gc_auto_had"`
	GitVersion     string `json:"git_version"`
	// Sandbox is "on" or "off" (tools.sandbox of the worker that prepared
	// the run).
	Sandbox string `json:"sandbox,omitempty"`
	// HostAttribute says the namespace has the CodeswarmHost search
	// attribute, so the run may upsert it.
	HostAttribute bool `json:"host_attribute,omitempty"`
	// AutoMoveAfter is workspace.auto_move_after of the worker that
	// prepared the run (0: never move by itself).
	AutoMoveAfter time.Duration `json:"auto_move_after,omitempty"`
	// NoRateLimit: no LLM rate limit was in force on this worker's last look
	// (as StartSubtaskResult.NoRateLimit), so the planner may call the model
	// without a permit first.
	NoRateLimit bool `json:"unpaced,omitempty"`
}

type gcState struct {
	Prev string `json:"prev"`
	Had  bool   `json:"had"`
}

// PrepareRun resolves the base commit, creates the integration branch at it
// (never moving an existing one) and turns gc.auto off for the run. It never
// touches the user's checked-out branch or working tree.
func (a *Activities) PrepareRun(ctx context.Context, in PrepareRunInput) (PrepareRunResult, error) {
	defer keepAlive(ctx)()
	version, err := gitops.CheckGitVersion(ctx)
	if err != nil {
		return PrepareRunResult{}, temporal.NewNonRetryableApplicationError(err.Error(), "git.version", err)
	}
	repo, err := gitops.Open(ctx, in.RepoPath)
	if err != nil {
		return PrepareRunResult{}, temporal.NewNonRetryableApplicationError(err.Error(), "git.repo", err)
	}
	base, err := repo.ResolveCommit(ctx, in.BaseRef)
	if err != nil {
		return PrepareRunResult{}, temporal.NewNonRetryableApplicationError(err.Error(), "git.base", err)
	}
	if err := repo.EnsureBranch(ctx, in.IntegrationBranch, base); err != nil {
		return PrepareRunResult{}, fmt.Errorf("create integration branch: %w", err)
	}
	branch, err := repo.CurrentBranch(ctx)
	if err != nil {
		return PrepareRunResult{}, err
	}
	gc, err := a.disableGC(ctx, repo, in.RunID)
	if err != nil {
		return PrepareRunResult{}, err
	}
	listing, _ := runGit(ctx, repo.Root, "ls-tree", "-r", "--name-only", base)
	return PrepareRunResult{
		RepoRoot: repo.Root, WorkspaceRoot: a.WorkspaceRoot, BaseCommit: base, BaseBranch: branch, WorkspaceQueue: a.WorkspaceQueue,
		RepoListing: capLines(listing, 300, 8000), GCAutoPrev: gc.Prev, GCAutoHad: gc.Had, GitVersion: version,
		Sandbox: a.sandboxMode(), HostAttribute: a.hasSearchAttribute(ctx, control.SAHost),
		AutoMoveAfter: a.AutoMoveAfter, NoRateLimit: !a.paced(),
	}, nil
}

// disableGC no longer writes the user's config: every codeswarm git command
// passes gc.auto=0 itself (gitops' hardened config), so a killed run leaves
// nothing behind. It still reports what a build before v0.1.0 recorded for
// this run, which FinishRun's restore relies on.
func (a *Activities) disableGC(_ context.Context, _ *gitops.Repo, runID string) (gcState, error) {
	var st gcState
	if b, err := os.ReadFile(filepath.Join(a.stateDir(runID), "gc-auto.json")); err == nil {
		_ = json.Unmarshal(b, &st)
	}
	return st, nil
}

// ConflictInfo tells a re-run what its first attempt conflicted with.
type ConflictInfo struct {
	Paths       []string `json:"paths"`
	FirstBase   string   `json:"first_base"`
	FirstCommit string   `json:"first_commit"`
}

// StartSubtaskInput creates a sub-agent's worktree and conversation.
type StartSubtaskInput struct {
	Ref               ConvRef       `json:"ref"`
	RepoPath          string        `json:"repo_path"`
	IntegrationBranch string        `json:"integration_branch"`
	Branch            string        `json:"branch"`
	Subtask           Subtask       `json:"subtask"`
	DepContext        string        `json:"dep_context,omitempty"`
	Conflict          *ConflictInfo `json:"conflict,omitempty"`
	// ResumeFrom is the branch of the same subtask on a host the run moved
	// away from: when it holds commits the integration branch lacks, the
	// new worktree starts from its tip, so no committed work is lost.
	ResumeFrom string `json:"resume_from,omitempty"`
	// Model and Tools are the sub-agent's model and tool limits: with the
	// prompts and the base tree they make its result cache key.
	Model string     `json:"model,omitempty"`
	Tools ToolLimits `json:"tools,omitempty"`
	// NoCache skips the result cache lookup (codeswarm run --no-cache); a
	// completed sub-agent is still stored.
	NoCache bool `json:"no_cache,omitempty"`
}

// StartSubtaskResult records where the sub-agent works.
type StartSubtaskResult struct {
	Worktree   string `json:"worktree"`
	Branch     string `json:"branch"`
	BaseCommit string `json:"base_commit"`
	// NoRateLimit: no LLM rate limit was in force on this worker's last look
	// (as AgentStepResult.NoRateLimit), so the first turn may call the model
	// without a permit.
	NoRateLimit bool `json:"unpaced,omitempty"`
	// CacheKey is the sub-agent's result cache key ("" when the cache is
	// off or does not apply): CommitSubtask stores its result under it.
	CacheKey string `json:"cache_key,omitempty"`
	// Cached is a cache hit: the worktree already holds its work, committed
	// on the base, and the sub-agent runs no model turn.
	Cached *CachedAgent `json:"cached,omitempty"`
}

const agentsMDCap = 20000

// StartSubtask creates the worktree on its own branch from the current
// integration head (so it holds every merged dependency) and writes the first
// two messages of the conversation. Both steps are idempotent.
func (a *Activities) StartSubtask(ctx context.Context, in StartSubtaskInput) (StartSubtaskResult, error) {
	defer keepAlive(ctx)()
	repo, err := gitops.Open(ctx, in.RepoPath)
	if err != nil {
		return StartSubtaskResult{}, err
	}
	head, err := repo.RefSHA(ctx, in.IntegrationBranch)
	if err != nil || head == "" {
		return StartSubtaskResult{}, fmt.Errorf("integration branch %q: head not found (%v)", in.IntegrationBranch, err)
	}
	start, err := resumePoint(ctx, repo.Root, in.ResumeFrom, head)
	if err != nil {
		return StartSubtaskResult{}, err
	}
	dir := WorktreeDir(a.WorkspaceRoot, in.Ref.RunID, in.Ref.SubtaskID, in.Ref.Attempt)
	wt, err := repo.AddWorktree(ctx, dir, in.Branch, start)
	if err != nil {
		return StartSubtaskResult{}, fmt.Errorf("create worktree: %w", err)
	}
	// Sandboxed commands may run as another uid, which must own the files.
	if err := a.Sandbox.PrepareWorktree(wt.Dir); err != nil {
		return StartSubtaskResult{}, err
	}
	base := head // a worktree still at the head forked from it: no merge-base to run
	if wt.Head != head {
		if base, err = forkPoint(ctx, repo.Root, in.Branch, head); err != nil {
			return StartSubtaskResult{}, err
		}
	}
	conflict := ""
	if in.Conflict != nil {
		conflict = conflictNote(ctx, repo.Root, *in.Conflict, base)
	}
	agentsMD := a.agentsMD(ctx, wt.Dir)
	user := SubAgentUserPrompt(in.Subtask.Instruction, in.DepContext, conflict)
	recs := []transcript.Record{
		{Key: keySystem(), Message: openai.ChatCompletionMessage{Role: openai.ChatMessageRoleSystem,
			Content: SubAgentSystemPrompt(in.Subtask, wt.Dir, agentsMD)}},
		{Key: keyUser(), Message: openai.ChatCompletionMessage{Role: openai.ChatMessageRoleUser, Content: user}},
	}
	if err := a.Transcripts.Append(tref(in.Ref), recs...); err != nil {
		return StartSubtaskResult{}, err
	}
	out := StartSubtaskResult{Worktree: wt.Dir, Branch: in.Branch, BaseCommit: base, NoRateLimit: !a.paced()}
	if out.CacheKey, out.Cached, err = a.startFromCache(ctx, repo.Root, wt.Dir, base, agentsMD, user, in); err != nil {
		return StartSubtaskResult{}, err
	}
	return out, nil
}

// resumePoint is where a subtask's worktree starts: the integration head, or
// the tip of branch from when the run moved off a host, if that branch holds
// commits the integration branch lacks.
func resumePoint(ctx context.Context, root, branch, head string) (string, error) {
	if branch == "" {
		return head, nil
	}
	tip, err := runGit(ctx, root, "rev-parse", "--verify", "--quiet", "refs/heads/"+branch+"^{commit}")
	if err != nil || strings.TrimSpace(tip) == "" {
		return head, nil // the old host never created it
	}
	tip = strings.TrimSpace(tip)
	ahead, err := runGit(ctx, root, "rev-list", "--count", head+".."+tip)
	if err != nil {
		return "", fmt.Errorf("compare branch %q with the integration head: %w", branch, err)
	}
	if strings.TrimSpace(ahead) == "0" {
		return head, nil
	}
	return tip, nil
}

// forkPoint is the commit the subtask's branch started from. It is not
// always the current integration head: a retried StartSubtask reuses the
// worktree of an earlier attempt, and other subtasks may have been merged
// since. CommitSubtask diffs against this commit, so it must be the real one.
func forkPoint(ctx context.Context, root, branch, integrationHead string) (string, error) {
	out, err := runGit(ctx, root, "merge-base", "refs/heads/"+branch, integrationHead)
	if err != nil {
		return "", fmt.Errorf("find the base of branch %q: %w", branch, err)
	}
	return strings.TrimSpace(out), nil
}

func conflictNote(ctx context.Context, root string, c ConflictInfo, newBase string) string {
	args := append([]string{"diff", "--no-ext-diff", "--no-textconv", c.FirstBase, newBase, "--"}, c.Paths...)
	diff, _ := runGit(ctx, root, args...)
	return fmt.Sprintf("NOTE: an earlier attempt of this task (commit %s) conflicted with changes merged meanwhile, in: %s.\n"+
		"Those changes are already in your working directory. Redo the task on top of them, keeping both intents.\n"+
		"The other side's change:\n```diff\n%s\n```", ShortSHA(c.FirstCommit), strings.Join(c.Paths, ", "), capText(diff, 8000))
}

// CommitSubtaskInput commits a finished sub-agent's worktree.
type CommitSubtaskInput struct {
	RunID      string `json:"run_id"`
	SubtaskID  string `json:"subtask_id"`
	Name       string `json:"name"`
	Worktree   string `json:"worktree"`
	BaseCommit string `json:"base_commit"`
	// Cache, when set, stores the committed result in the result cache.
	Cache *CacheStore `json:"cache,omitempty"`
}

// CommitSubtaskResult is the subtask's commit.
type CommitSubtaskResult struct {
	Commit       string   `json:"commit"`
	Changed      bool     `json:"changed"`
	FilesChanged []string `json:"files_changed"`
	// Notes says what committing did beyond the commit, such as a nested
	// repository committed as plain files (gitops.CommitResult.Notes).
	Notes []string `json:"notes,omitempty"`
}

// CommitSubtask commits every change in the worktree, with trailers naming the
// run and the subtask.
func (a *Activities) CommitSubtask(ctx context.Context, in CommitSubtaskInput) (CommitSubtaskResult, error) {
	defer keepAlive(ctx)()
	msg := fmt.Sprintf("codeswarm: %s\n\nSubtask %s of run %s.", in.Name, in.SubtaskID, in.RunID)
	res, err := gitops.CommitAll(ctx, in.Worktree, in.BaseCommit, msg, trailers(in.RunID, in.SubtaskID))
	if err != nil {
		return CommitSubtaskResult{}, fmt.Errorf("commit subtask %s: %w", in.SubtaskID, err)
	}
	out := CommitSubtaskResult{Commit: res.Commit, Changed: res.Changed, FilesChanged: res.FilesChanged, Notes: res.Notes}
	a.storeInCache(ctx, in, out)
	return out, nil
}

func trailers(runID, subtaskID string) [][2]string {
	return [][2]string{{"Codeswarm-Run", runID}, {"Codeswarm-Subtask", subtaskID}}
}

// MergeSubtaskInput merges a subtask's commit into the integration branch.
type MergeSubtaskInput struct {
	RunID             string `json:"run_id"`
	RepoPath          string `json:"repo_path"`
	IntegrationBranch string `json:"integration_branch"`
	SubtaskID         string `json:"subtask_id"`
	Name              string `json:"name"`
	Commit            string `json:"commit"`
}

// MergeSubtaskResult is the merge outcome.
type MergeSubtaskResult struct {
	Status       string   `json:"status"`
	Commit       string   `json:"commit"`
	Conflicts    []string `json:"conflicts,omitempty"`
	FilesChanged []string `json:"files_changed,omitempty"`
}

// MergeSubtask merges without a worktree (merge-tree, commit-tree,
// compare-and-swap update-ref); a retry after a landed merge is a no-op.
func (a *Activities) MergeSubtask(ctx context.Context, in MergeSubtaskInput) (MergeSubtaskResult, error) {
	defer keepAlive(ctx)()
	return mergeOne(ctx, mergeRepo(in.RepoPath), in, "")
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
		TargetBranch: in.IntegrationBranch, Source: in.Commit,
		Message:  fmt.Sprintf("codeswarm: merge %s (%s)", in.SubtaskID, in.Name),
		Trailers: trailers(in.RunID, in.SubtaskID),
	}
}

func mergeResult(res gitops.MergeResult) MergeSubtaskResult {
	return MergeSubtaskResult{Status: res.Status, Commit: res.Commit, Conflicts: res.Conflicts, FilesChanged: res.FilesChanged}
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
// lands the batch's merges together with one compare-and-swap, and a batch
// retried after a crash merges nothing twice: items that landed report their
// merge commit again, and the others are judged against the head they met
// the first time (Onto), so every outcome is the same.
func (a *Activities) MergeSubtasks(ctx context.Context, in MergeSubtasksInput) (MergeSubtasksResult, error) {
	defer keepAlive(ctx)()
	repo := mergeRepo(in.RepoPath)
	batch := gitops.MergeAllInput{TargetBranch: in.IntegrationBranch, Head: in.Head, Items: make([]gitops.MergeInput, len(in.Items))}
	for i, item := range in.Items {
		item.RunID, item.IntegrationBranch = in.RunID, in.IntegrationBranch
		batch.Items[i] = mergeItem(item)
	}
	results, err := repo.MergeAll(ctx, batch)
	if err != nil {
		return MergeSubtasksResult{}, fmt.Errorf("merge %d subtasks: %w", len(in.Items), err)
	}
	out := MergeSubtasksResult{Results: make([]MergeSubtaskResult, len(results))}
	for i, res := range results {
		out.Results[i] = mergeResult(res)
	}
	return out, nil
}

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
		Root: dir, BashTimeout: in.Timeout, BashMaxTimeout: in.Timeout, MaxOutputBytes: in.MaxOutput,
		Env: a.Environ, Sandbox: a.Sandbox, Heartbeat: func() { activity.RecordHeartbeat(ctx) },
	}, "bash", string(args))
	code := exitCode(res.Output)
	return VerifyReport{Command: in.Command, Commit: in.Commit, OK: code == 0 && !res.IsError, ExitCode: code, Output: a.scrub(res.Output)}, nil
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

// FinishRunInput ends a run: restore gc.auto, remove merged worktrees, apply.
type FinishRunInput struct {
	RunID           string   `json:"run_id"`
	RepoPath        string   `json:"repo_path"`
	GCAutoPrev      string   `json:"gc_auto_prev"`
	GCAutoHad       bool     `json:"gc_auto_had"`
	RemoveWorktrees []string `json:"remove_worktrees"`
	Apply           bool     `json:"apply"`
	BaseBranch      string   `json:"base_branch"`
	BaseCommit      string   `json:"base_commit"`
	IntegrationHead string   `json:"integration_head"`
	// DropEmptyBranch names the integration branch of a run that did not
	// succeed: it is deleted when nothing was merged into it (it holds
	// only the base commit, so it would be a branch with no content).
	DropEmptyBranch string `json:"drop_empty_branch,omitempty"`
}

// FinishRunResult says what the end of the run did.
type FinishRunResult struct {
	Applied    bool     `json:"applied"`
	ApplyError string   `json:"apply_error,omitempty"`
	Removed    []string `json:"removed,omitempty"`
	Kept       []string `json:"kept,omitempty"`
	// DroppedBranch: DropEmptyBranch was deleted.
	DroppedBranch bool `json:"dropped_branch,omitempty"`
}

// FinishRun restores the repository settings, removes the worktrees of merged
// subtasks (never a dirty one) and, if asked, fast-forwards the user's branch.
func (a *Activities) FinishRun(ctx context.Context, in FinishRunInput) (FinishRunResult, error) {
	defer keepAlive(ctx)()
	repo, err := gitops.Open(ctx, in.RepoPath)
	if err != nil {
		return FinishRunResult{}, err
	}
	// Builds before v0.1.0 set gc.auto=0 in the user's config and saved
	// the original next to it; restore it when that is still there, so a
	// repository such a build touched gets its setting back. The config and the worktrees are separate
	// files: restore while the worktrees go, off the run's critical path.
	restored := make(chan error, 1)
	go func() { restored <- repo.RestoreSavedConfig(ctx, "gc.auto") }()
	var out FinishRunResult
	if len(in.RemoveWorktrees) > 0 {
		// In bulk: one at a time took about 3 minutes for 1,000 worktrees.
		// A failure to list or prune leaves them for `codeswarm clean`, as
		// a failed single removal did: it never fails the run.
		out.Removed, out.Kept, err = repo.RemoveWorktrees(ctx, in.RemoveWorktrees)
		if err != nil {
			out.Removed, out.Kept = nil, in.RemoveWorktrees
		}
	}
	if err := <-restored; err != nil {
		return FinishRunResult{}, fmt.Errorf("restore gc.auto: %w", err)
	}
	if in.Apply {
		out.Applied, out.ApplyError = applyResult(ctx, repo, in)
	}
	if in.DropEmptyBranch != "" && (in.IntegrationHead == "" || in.IntegrationHead == in.BaseCommit) {
		head, err := repo.RefSHA(ctx, "refs/heads/"+in.DropEmptyBranch)
		switch {
		case err != nil:
			return out, err
		case head == "":
			out.DroppedBranch = true // a retry after the delete
		case head == in.BaseCommit:
			if err := repo.DeleteBranch(ctx, in.DropEmptyBranch); err != nil {
				return out, err
			}
			out.DroppedBranch = true
		}
	}
	return out, nil
}

func applyResult(ctx context.Context, repo *gitops.Repo, in FinishRunInput) (bool, string) {
	switch {
	case in.BaseBranch == "":
		return false, "not applied: the repository had no branch checked out (detached HEAD)"
	case in.IntegrationHead == "" || in.IntegrationHead == in.BaseCommit:
		return false, "not applied: the integration branch has no changes"
	}
	if err := repo.FastForwardCheckedOut(ctx, in.BaseBranch, in.BaseCommit, in.IntegrationHead); err != nil {
		return false, "not applied: " + err.Error()
	}
	return true, ""
}

// runGit runs git through gitops, so activities get the same sanitised
// environment as every other codeswarm git command (no GIT_DIR or
// GIT_WORK_TREE of the worker's own environment, C locale, no prompts).
func runGit(ctx context.Context, dir string, args ...string) (string, error) {
	return gitops.Run(ctx, dir, args...)
}

func capLines(s string, maxLines, maxBytes int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	var b strings.Builder
	for i, l := range lines {
		if i >= maxLines || b.Len()+len(l) > maxBytes {
			fmt.Fprintf(&b, "... (%d more files)\n", len(lines)-i)
			break
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// SaveMovedWorkInput names the sub-agent whose uncommitted work a move
// saves on the host the run leaves.
type SaveMovedWorkInput struct {
	RunID     string `json:"run_id"`
	RepoPath  string `json:"repo_path"`
	SubtaskID string `json:"subtask_id"`
	Name      string `json:"name"`
	// Branch is the sub-agent's branch: its worktree is the one that has
	// it checked out.
	Branch string `json:"branch"`
	// ToHost is where the run moves, for the commit message.
	ToHost string `json:"to_host"`
}

// SaveMovedWorkResult says what was saved.
type SaveMovedWorkResult struct {
	// Commit is the branch's head after the save ("" if no worktree has
	// the branch checked out here).
	Commit string `json:"commit,omitempty"`
	// Changed: the worktree held uncommitted work, now committed.
	Changed      bool     `json:"changed"`
	FilesChanged []string `json:"files_changed,omitempty"`
}

// SaveMovedWork commits what a sub-agent had not committed yet in its
// worktree on this (the old) host, once the move has stopped it, so that
// its restart on the new host resumes from the branch with that work in
// it. It runs on the old host's workspace queue; a host that does not
// answer leaves the work on its disk (the move goes on without it).
func (a *Activities) SaveMovedWork(ctx context.Context, in SaveMovedWorkInput) (SaveMovedWorkResult, error) {
	defer keepAlive(ctx)()
	repo, err := gitops.Open(ctx, in.RepoPath)
	if err != nil {
		return SaveMovedWorkResult{}, fmt.Errorf("save moved work of %s: %w", in.SubtaskID, err)
	}
	list, err := repo.ListWorktrees(ctx)
	if err != nil {
		return SaveMovedWorkResult{}, fmt.Errorf("save moved work of %s: %w", in.SubtaskID, err)
	}
	for _, w := range list {
		if w.Branch != in.Branch {
			continue
		}
		msg := fmt.Sprintf("codeswarm: %s (work in progress, saved when the run moved to host %s)\n\nSubtask %s of run %s.", in.Name, in.ToHost, in.SubtaskID, in.RunID)
		res, err := gitops.CommitAll(ctx, w.Dir, w.Head, msg, trailers(in.RunID, in.SubtaskID))
		if err != nil {
			return SaveMovedWorkResult{}, fmt.Errorf("save moved work of %s: %w", in.SubtaskID, err)
		}
		return SaveMovedWorkResult{Commit: res.Commit, Changed: res.Changed, FilesChanged: res.FilesChanged}, nil
	}
	return SaveMovedWorkResult{}, nil
}
