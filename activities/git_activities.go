package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	openai "github.com/sashabaranov/go-openai"
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
	// TreeFiles is how many files the base commit's tree holds (0:
	// unknown, from older workers): the run's sub-agents start and commit
	// their worktrees in local activities only on a small tree.
	TreeFiles int `json:"tree_files,omitempty"`
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
		RepoRoot:       repo.Root,
		WorkspaceRoot:  a.WorkspaceRoot,
		BaseCommit:     base,
		BaseBranch:     branch,
		WorkspaceQueue: a.WorkspaceQueue,
		RepoListing:    capLines(listing, 300, 8000),
		GCAutoPrev:     gc.Prev,
		GCAutoHad:      gc.Had,
		GitVersion:     version,
		Sandbox:        a.sandboxMode(),
		HostAttribute:  a.hasSearchAttribute(ctx, control.SAHost),
		AutoMoveAfter:  a.AutoMoveAfter,
		NoRateLimit:    !a.paced(),
		TreeFiles:      strings.Count(listing, "\n"),
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
	// Deferred: run as a local activity, StartSubtask would have had to
	// wait for a worktree (none parked or no fresh slot within
	// localStartWait, or the run's fresh checkouts take longer than
	// localFreshMax), and did nothing. The sub-agent runs it again as an
	// activity, where the wait holds no workflow task.
	Deferred bool `json:"deferred,omitempty"`
}

const agentsMDCap = 20000

// StartSubtask creates the worktree on its own branch from the current
// integration head (so it holds every merged dependency) and writes the first
// two messages of the conversation. Both steps are idempotent.
func (a *Activities) StartSubtask(ctx context.Context, in StartSubtaskInput) (StartSubtaskResult, error) {
	defer keepAlive(ctx)()
	dir := WorktreeDir(a.WorkspaceRoot, in.Ref.RunID, in.Ref.SubtaskID, in.Ref.Attempt)
	// One step at a time in a worktree: a local attempt whose workflow
	// task timed out may still run when the next attempt starts.
	defer worktreeSteps.lock(dir)()
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
	wt, err := a.addWorktree(ctx, repo, dir, in.Branch, start, in.Ref.RunID)
	if errors.Is(err, errWouldWait) {
		return StartSubtaskResult{Deferred: true}, nil
	}
	if err != nil {
		return StartSubtaskResult{}, fmt.Errorf("create worktree: %w", err)
	}
	if err := a.prepareWorktree(ctx, wt); err != nil {
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
		{
			Key: keySystem(),
			Message: openai.ChatCompletionMessage{
				Role:    openai.ChatMessageRoleSystem,
				Content: SubAgentSystemPrompt(in.Subtask, wt.Dir, agentsMD),
			},
		},
		{
			Key:     keyUser(),
			Message: openai.ChatCompletionMessage{Role: openai.ChatMessageRoleUser, Content: user},
		},
	}
	if err := a.Transcripts.Append(tref(in.Ref), recs...); err != nil {
		return StartSubtaskResult{}, err
	}
	out := StartSubtaskResult{
		Worktree:    wt.Dir,
		Branch:      in.Branch,
		BaseCommit:  base,
		NoRateLimit: !a.paced(),
	}
	if out.CacheKey, out.Cached, err = a.startFromCache(ctx, repo.Root, wt.Dir, base, agentsMD, user, in); err != nil {
		return StartSubtaskResult{}, err
	}
	return out, nil
}

// localStartWait and localFreshMax bound what a local StartSubtask, which
// holds its sub-agent's workflow task, waits for a worktree: a parked one
// or a fresh slot within localStartWait, and a fresh checkout only while
// the run's take no longer than localFreshMax (a 10-file tree takes
// milliseconds, a 10,000-file one about 2 s). Both are well under the
// sub-agent's 2 s workflow task timeout.
const (
	localStartWait = 500 * time.Millisecond
	localFreshMax  = 500 * time.Millisecond
)

// localIndexMax: before the run's first fresh checkout is timed, a
// repository whose index is larger (about 2,500 files; a 10,001-file
// index is 0.8 MB) is taken to check out slower than localFreshMax, and a
// local start takes only a parked worktree. A variable for tests.
var localIndexMax int64 = 256 << 10

// errWouldWait: a local StartSubtask would wait for a worktree longer than
// it may (localStartWait, localFreshMax).
var errWouldWait = errors.New("no worktree at hand")

// addWorktree creates the sub-agent's worktree at dir, from one of the
// run's parked worktrees when there is one. A retry, whose worktree is
// already there, takes neither a parked worktree nor a fresh slot. In a
// local activity it waits no longer than localStartWait (errWouldWait).
func (a *Activities) addWorktree(ctx context.Context, repo *gitops.Repo, dir, branch, start, runID string) (gitops.Worktree, error) {
	if _, err := os.Lstat(dir); err == nil {
		return repo.AddWorktree(ctx, dir, branch, start)
	}
	var parked string
	var done func()
	var err error
	if isLocalActivity(ctx) {
		maxFresh := localFreshMax
		if fi, err := os.Lstat(filepath.Join(repo.CommonDir, "index")); err == nil && fi.Size() > localIndexMax {
			maxFresh = -1
		}
		var ok bool
		parked, done, ok, err = a.worktrees().ready.SourceQuick(ctx, runID, localStartWait, maxFresh)
		if err == nil && !ok {
			return gitops.Worktree{}, errWouldWait
		}
	} else {
		parked, done, err = a.worktrees().ready.Source(ctx, runID)
	}
	if err != nil {
		return gitops.Worktree{}, err
	}
	defer done()
	wt, err := repo.AddWorktreeFrom(ctx, dir, branch, start, parked)
	a.returnParked(runID, parked)
	return wt, err
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
	// Attempt is the sub-agent's attempt, whose tool journal names the
	// files its calls changed (0: not known, every file is looked at).
	Attempt int `json:"attempt,omitempty"`
	// Cache, when set, stores the committed result in the result cache.
	Cache *CacheStore `json:"cache,omitempty"`
}

// CommitSubtaskResult is the subtask's commit.
type CommitSubtaskResult struct {
	Commit       string   `json:"commit"`
	Changed      bool     `json:"changed"`
	FilesChanged []string `json:"files_changed"`
	// FilesOmitted counts changed files beyond MaxListedPaths, not listed.
	FilesOmitted int `json:"files_changed_omitted,omitempty"`
	// Notes says what committing did beyond the commit, such as a nested
	// repository committed as plain files (gitops.CommitResult.Notes).
	Notes []string `json:"notes,omitempty"`
}

// CommitSubtask commits every change in the worktree, with trailers naming the
// run and the subtask.
func (a *Activities) CommitSubtask(ctx context.Context, in CommitSubtaskInput) (CommitSubtaskResult, error) {
	defer keepAlive(ctx)()
	defer worktreeSteps.lock(in.Worktree)()
	msg := fmt.Sprintf("codeswarm: %s\n\nSubtask %s of run %s.", in.Name, in.SubtaskID, in.RunID)
	var res gitops.CommitResult
	var err error
	if paths, ok := a.changedPaths(ctx, in); ok {
		res, err = gitops.CommitPaths(ctx, in.Worktree, in.BaseCommit, msg, trailers(in.RunID, in.SubtaskID), paths)
	} else {
		res, err = gitops.CommitAll(ctx, in.Worktree, in.BaseCommit, msg, trailers(in.RunID, in.SubtaskID))
	}
	if err != nil {
		return CommitSubtaskResult{}, fmt.Errorf("commit subtask %s: %w", in.SubtaskID, err)
	}
	out := CommitSubtaskResult{
		Commit:  res.Commit,
		Changed: res.Changed,
		Notes:   res.Notes,
	}
	out.FilesChanged, out.FilesOmitted = listPaths(res.FilesChanged)
	a.storeInCache(ctx, in, out)
	return out, nil
}

// maxStagedPaths bounds the paths a commit stages by name (changedPaths);
// past it the whole tree is scanned. A claimed worktree's rewritten files
// are many after a long wait in the pool (hundreds in B8); the tracked
// ones are looked up one by one (gitops.CommitPaths), so the bound is
// only against an unbounded list.
const maxStagedPaths = 20000

// changedPaths returns the only files the attempt's worktree can differ in
// from its HEAD, ok=false if that is not known. The worktree started clean
// (a fresh checkout, or a claimed parked one the park found clean), and
// nothing but the attempt's tool calls writes it. When they ran no bash
// command, its tool journal names every file they wrote
// (tools.Journal.ChangedPaths). Added to those are the files the claim's
// checkout rewrote and the sandbox then chowned, which the index still
// records as owned by the worker (gitops.IndexPathsNotOwnedBy): their
// contents are the claim's, and staging them brings their stat data in the
// index up to date, so the park's status and the next claim do not compare
// their contents. Without the attempt, or with a journal that cannot be
// read, ok is false.
func (a *Activities) changedPaths(ctx context.Context, in CommitSubtaskInput) ([]string, bool) {
	if in.Attempt < 1 {
		return nil, false
	}
	j, err := tools.OpenJournal(a.journalDir(in.RunID, in.SubtaskID, in.Attempt))
	if err != nil {
		return nil, false
	}
	paths, complete, err := j.ChangedPaths(ctx)
	if err != nil || !complete {
		return nil, false
	}
	if uid, gid, ok := a.Sandbox.FileOwnerOrProbe(); ok {
		chowned, err := gitops.IndexPathsNotOwnedBy(in.Worktree, uid, gid)
		if err != nil {
			return nil, false
		}
		paths = append(paths, chowned...)
	}
	if len(paths) > maxStagedPaths {
		return nil, false
	}
	return paths, true
}

func trailers(runID, subtaskID string) [][2]string {
	return [][2]string{{"Codeswarm-Run", runID}, {"Codeswarm-Subtask", subtaskID}}
}

// prepareWorktree gives wt's files to the uid sandboxed commands may run
// as, which must own them. A worktree claimed from the pool is owned
// already but for the files its checkout rewrote, which its index names
// (gitops.IndexPathsNotOwnedBy); any other, or one whose index cannot be
// read or names a path PreparePaths refuses, is walked whole, and then its
// index is made to record the new owners (gitops.RefreshIndex): to git a
// chowned file is a changed one, whose contents every status compares and
// a claim refuses to overwrite, until then. That is only for speed; a
// failure is ignored.
func (a *Activities) prepareWorktree(ctx context.Context, wt gitops.Worktree) error {
	uid, gid, ok := a.Sandbox.FileOwnerOrProbe()
	if !ok {
		return nil
	}
	if wt.Claimed {
		paths, err := gitops.IndexPathsNotOwnedBy(wt.Dir, uid, gid)
		if err == nil && a.Sandbox.PreparePaths(wt.Dir, paths) == nil {
			return nil // the commit refreshes them (changedPaths)
		}
	}
	if err := a.Sandbox.PrepareWorktree(wt.Dir); err != nil {
		return err
	}
	_ = gitops.RefreshIndex(ctx, wt.Dir)
	return nil
}
