package activities

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/activity"

	"codeswarm/gitops"
	"codeswarm/internal/transcript"
)

// CacheStore asks CommitSubtask to store a completed sub-agent's result
// under its cache key. The workflow sets it only for a sub-agent that
// completed (STATUS: completed) and did not come from the cache itself.
type CacheStore struct {
	Key      string  `json:"key"`
	RepoPath string  `json:"repo_path"`
	Ref      ConvRef `json:"ref"`
	// FinalTurn is the turn of the model's final answer, the result text.
	FinalTurn     int   `json:"final_turn"`
	NeedsWorktree bool  `json:"needs_worktree"`
	Steps         int   `json:"steps"`
	ToolCalls     int   `json:"tool_calls"`
	LLMCalls      int   `json:"llm_calls"`
	Usage         Usage `json:"usage"`
}

// startFromCache computes the sub-agent's cache key and, on a hit, puts the
// cached work into the fresh worktree as one commit on base. A sub-agent
// resumed from a moved host's branch is not cached (its worktree holds work
// the key does not describe).
func (a *Activities) startFromCache(ctx context.Context, root, dir, base, agentsMD, user string, in StartSubtaskInput) (string, *CachedAgent, error) {
	if a.Cache == nil || in.ResumeFrom != "" {
		return "", nil, nil
	}
	baseTree, err := treeOf(ctx, root, base)
	if err != nil {
		return "", nil, nil
	}
	key := agentCacheKey(in.Subtask, agentsMD, user, baseTree, in.Model, in.Tools, a.cacheEnv())
	if in.NoCache {
		return key, nil, nil
	}
	e, ok := a.Cache.lookupAgent(ctx, root, key)
	if !ok {
		return key, nil, nil
	}
	msg := fmt.Sprintf("codeswarm: %s\n\nSubtask %s of run %s, reused from the result cache: the work of commit %s (subtask %s of run %s).",
		in.Subtask.Name, in.Ref.SubtaskID, in.Ref.RunID, e.Commit, e.SubtaskID, e.RunID)
	res, err := gitops.ReuseTree(ctx, dir, base, e.Tree, msg, append(trailers(in.Ref.RunID, in.Ref.SubtaskID), [2]string{"Codeswarm-Cached-From", e.Commit}))
	if err != nil {
		return "", nil, fmt.Errorf("reuse cached result %s: %w", ShortSHA(e.Commit), err)
	}
	hit := e.CachedAgent
	hit.Commit, hit.From = res.Commit, e.Commit
	hit.FilesChanged, hit.FilesOmitted = listPaths(res.FilesChanged)
	hit.Result = a.scrub(hit.Result)
	if activity.IsActivity(ctx) {
		activity.GetLogger(ctx).Info("result cache hit", "subtask", in.Ref.SubtaskID, "key", key[:16], "from", ShortSHA(e.Commit))
	}
	return key, &hit, nil
}

// storeInCache records a committed sub-agent's result. A failure is logged,
// never the commit's failure.
func (a *Activities) storeInCache(ctx context.Context, in CommitSubtaskInput, res CommitSubtaskResult) {
	s := in.Cache
	if a.Cache == nil || s == nil || s.Key == "" || s.NeedsWorktree != res.Changed {
		return // a sub-agent that changed files it should not have (or none it should) is not a success
	}
	err := a.storeResult(ctx, in, res)
	if err != nil && activity.IsActivity(ctx) {
		activity.GetLogger(ctx).Warn("result cache: not stored", "subtask", in.SubtaskID, "error", a.scrub(err.Error()))
	}
}

func (a *Activities) storeResult(ctx context.Context, in CommitSubtaskInput, res CommitSubtaskResult) error {
	s := in.Cache
	recs, err := a.Transcripts.Load(tref(s.Ref))
	if err != nil {
		return err
	}
	final, ok := transcript.Find(recs, keyAssistant(s.FinalTurn))
	if !ok || len(final.Message.ToolCalls) > 0 {
		return errors.New("the final answer is not in the transcript")
	}
	if ParseStatus(final.Message.Content) != StatusCompleted {
		return errors.New("the final answer does not say STATUS: completed")
	}
	return a.Cache.storeAgent(ctx, s.RepoPath, s.Key, agentEntry{
		Commit: res.Commit,
		CachedAgent: CachedAgent{
			Result:       capText(final.Message.Content, finalTextCap),
			FilesChanged: res.FilesChanged,
			FilesOmitted: res.FilesOmitted,
			Steps:        s.Steps,
			ToolCalls:    s.ToolCalls,
			LLMCalls:     s.LLMCalls,
			Usage:        s.Usage,
			RunID:        in.RunID,
			SubtaskID:    in.SubtaskID,
		},
	})
}
