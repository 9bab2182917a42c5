package gitops

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Merge statuses reported in MergeResult.Status.
const (
	MergeMerged    = "merged"
	MergeConflict  = "conflict"
	MergeNoChanges = "no_changes"
)

// maxMergeAttempts bounds how often Merge recomputes a merge whose target
// moved underneath it before giving up with ErrRefMoved.
const maxMergeAttempts = 5

// MergeInput asks to merge a commit into a branch.
type MergeInput struct {
	// TargetBranch is the branch to merge into (short name or refs/heads/...).
	TargetBranch string `json:"target_branch"`
	// Source is the commit to merge (SHA or any revision).
	Source string `json:"source"`
	// Message is the merge commit's message; a default names source and target.
	Message string `json:"message,omitempty"`
	// Trailers are appended to the message ("Codeswarm-Subtask: x").
	Trailers [][2]string `json:"trailers,omitempty"`
	// Onto, when set, is the head a source not merged yet is judged
	// against if the target has moved past it: a batch retried after a
	// crash finds the branch already holding its later items' merges, and
	// an item that conflicted (or brought nothing) is judged again against
	// the head it met the first time, so it gets the same outcome. A clean
	// merge is still made onto the target's current head.
	Onto string `json:"onto,omitempty"`
}

// MergeResult is the outcome of Merge.
type MergeResult struct {
	// Status is MergeMerged, MergeConflict or MergeNoChanges.
	Status string `json:"status"`
	// Commit is the merge commit when merged, else the target's head.
	Commit string `json:"commit"`
	// Conflicts lists the conflicting paths, sorted (Status conflict only).
	Conflicts []string `json:"conflicts,omitempty"`
	// FilesChanged lists the paths the merge changed on the target, sorted.
	FilesChanged []string `json:"files_changed,omitempty"`
}

// Merge merges in.Source into in.TargetBranch without any worktree:
// `git merge-tree --write-tree`, then `git commit-tree -p head -p source`,
// then a compare-and-swap update of the branch. It always makes a real merge
// commit (never a fast-forward) so the history shows each subtask.
//
//   - A conflict leaves the target untouched and reports the paths.
//   - A source whose changes the target already has is "no_changes".
//   - A source already merged (a retry after a crash) is "merged" with the
//     merge commit that merged it, and no new commit is made.
//   - If the target moves between reading and swapping, the merge is
//     recomputed, up to 5 times, then ErrRefMoved is returned.
func (r *Repo) Merge(ctx context.Context, in MergeInput) (MergeResult, error) {
	if in.TargetBranch == "" {
		return MergeResult{}, errors.New("merge: empty target branch")
	}
	ref := fullRef(in.TargetBranch)
	for range maxMergeAttempts {
		res, err := r.mergeOnce(ctx, ref, in)
		if !errors.Is(err, ErrRefMoved) {
			return res, err
		}
	}
	return MergeResult{}, errorf(ErrRefMoved, "merge %s into %s: target kept moving, gave up after %d attempts",
		in.Source, ref, maxMergeAttempts)
}

// mergeOnce is one read-merge-swap attempt; ErrRefMoved means "try again".
// It reads the head and the source in one process; when the source is
// judged against the head itself (no Onto, or Onto is the head), it goes
// the short way of mergeChain, else the careful way of mergeJudged.
func (r *Repo) mergeOnce(ctx context.Context, ref string, in MergeInput) (MergeResult, error) {
	t, err := r.readTips(ctx, ref, []string{in.Source})
	if err != nil {
		return MergeResult{}, err
	}
	if t.sources[0] == "" {
		return MergeResult{}, errorf(ErrUnknownRef, "merge source: unknown ref %q", in.Source)
	}
	if t.head == "" {
		return MergeResult{}, fmt.Errorf("merge into %s: target branch does not exist", ref)
	}
	if in.Onto == "" || in.Onto == t.head {
		res, ok, err := r.mergeChain(ctx, ref, t, []MergeInput{in})
		if err != nil || ok {
			return first(res), err
		}
	}
	return r.mergeJudged(ctx, ref, t.head, t.headTree, t.sources[0], in)
}

// first is the only result of a one-item chain (none after an error).
func first(res []MergeResult) MergeResult {
	if len(res) == 0 {
		return MergeResult{}
	}
	return res[0]
}

// mergeJudged is one attempt that first asks whether src is in head
// already (a retry finds its earlier merge) and judges src against Onto
// when the target moved past it.
func (r *Repo) mergeJudged(ctx context.Context, ref, head, headTree, src string, in MergeInput) (MergeResult, error) {
	merged, err := r.isAncestor(ctx, src, head)
	if err != nil {
		return MergeResult{}, err
	}
	if merged {
		res, err := r.alreadyMerged(ctx, head, src)
		if err == nil && res.Status == MergeNoChanges {
			res.Commit, err = r.ontoIfHolds(ctx, head, src, in.Onto)
		}
		return res, err
	}
	if res, ok, err := r.judgeOnto(ctx, head, src, in.Onto); err != nil || ok {
		return res, err
	}
	return r.mergeNew(ctx, ref, head, headTree, src, in)
}

// ontoIfHolds is the head a source that brings nothing met: onto when it
// already held src (a retried batch), else the target's head.
func (r *Repo) ontoIfHolds(ctx context.Context, head, src, onto string) (string, error) {
	if onto == "" || onto == head {
		return head, nil
	}
	holds, err := r.isAncestor(ctx, src, onto)
	if err != nil || !holds {
		return head, err
	}
	return onto, nil
}

// judgeOnto reports the outcome of merging src onto onto, an ancestor of
// the target's head, when that outcome is a conflict or no change: ok is
// false when onto is unset, is the head, is not behind it, or merges src
// cleanly (then the merge is made onto the head as usual).
func (r *Repo) judgeOnto(ctx context.Context, head, src, onto string) (MergeResult, bool, error) {
	if onto == "" || onto == head {
		return MergeResult{}, false, nil
	}
	if behind, err := r.isAncestor(ctx, onto, head); err != nil || !behind {
		return MergeResult{}, false, err
	}
	tree, conflicts, err := r.mergeTree(ctx, onto, src)
	if err != nil {
		return MergeResult{}, false, err
	}
	if conflicts != nil {
		return MergeResult{Status: MergeConflict, Commit: onto, Conflicts: conflicts}, true, nil
	}
	ontoTree, err := gitOut(ctx, r.Root, "rev-parse", "--verify", onto+"^{tree}")
	if err != nil {
		return MergeResult{}, false, fmt.Errorf("read tree of %s: %w", shortSHA(onto), err)
	}
	if tree == ontoTree {
		return MergeResult{Status: MergeNoChanges, Commit: onto}, true, nil
	}
	return MergeResult{}, false, nil
}

// mergeNew merges src, not yet in head, and swaps ref from head to the
// merge commit.
func (r *Repo) mergeNew(ctx context.Context, ref, head, headTree, src string, in MergeInput) (MergeResult, error) {
	tree, conflicts, err := r.mergeTree(ctx, head, src)
	if err != nil {
		return MergeResult{}, err
	}
	if conflicts != nil {
		return MergeResult{Status: MergeConflict, Commit: head, Conflicts: conflicts}, nil
	}
	if tree == headTree {
		return MergeResult{Status: MergeNoChanges, Commit: head}, nil
	}
	commit, err := r.commitTree(ctx, tree, head, src, mergeMessage(in, src, ref))
	if err != nil {
		return MergeResult{}, err
	}
	if r.beforeUpdateRef != nil {
		r.beforeUpdateRef()
	}
	if err := r.UpdateRefCAS(ctx, ref, commit, head); err != nil {
		return MergeResult{}, err
	}
	files, err := r.DiffFiles(ctx, head, commit)
	if err != nil {
		return MergeResult{}, err
	}
	return MergeResult{Status: MergeMerged, Commit: commit, FilesChanged: files}, nil
}

// alreadyMerged describes a source that is an ancestor of the target head.
// If a merge commit on the target's first-parent line has the source as a
// parent, an earlier attempt merged it: report that merge again. Otherwise
// the source brought nothing (e.g. a subtask that committed nothing and so
// still sits at its base).
func (r *Repo) alreadyMerged(ctx context.Context, head, src string) (MergeResult, error) {
	// --ancestry-path src..head: only commits descending from src, so the
	// walk stops at the merge that brought src in.
	out, err := gitOut(ctx, r.Root, "rev-list", "--first-parent", "--parents", "--ancestry-path", src+".."+head)
	if err != nil {
		return MergeResult{}, fmt.Errorf("find merge of %s: %w", shortSHA(src), err)
	}
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) < 3 || !slices.Contains(fields[2:], src) {
			continue
		}
		files, err := r.DiffFiles(ctx, fields[1], fields[0])
		if err != nil {
			return MergeResult{}, err
		}
		return MergeResult{Status: MergeMerged, Commit: fields[0], FilesChanged: files}, nil
	}
	return MergeResult{Status: MergeNoChanges, Commit: head}, nil
}

// mergeTree computes the merged tree of two commits. On conflict it returns
// the conflicting paths (never nil) instead of a tree.
func (r *Repo) mergeTree(ctx context.Context, ours, theirs string) (tree string, conflicts []string, err error) {
	out, err := git(ctx, r.Root, runOpts{}, "merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", ours, theirs)
	conflicted := exitCode(err) == 1
	if err != nil && !conflicted {
		return "", nil, fmt.Errorf("merge-tree %s %s: %w", shortSHA(ours), shortSHA(theirs), err)
	}
	// Output: <tree> NUL, then (on conflict) one conflicted path per NUL.
	fields := splitNUL(out)
	if len(fields) == 0 {
		return "", nil, fmt.Errorf("merge-tree %s %s: no tree in output", shortSHA(ours), shortSHA(theirs))
	}
	if !conflicted {
		return fields[0], nil, nil
	}
	conflicts = slices.Compact(slices.Sorted(slices.Values(fields[1:])))
	if conflicts == nil {
		conflicts = []string{} // conflicted even if git named no path
	}
	return fields[0], conflicts, nil
}

// commitTree writes a merge commit of tree with parents (first, second).
func (r *Repo) commitTree(ctx context.Context, tree, first, second, msg string) (string, error) {
	out, err := git(ctx, r.Root, runOpts{identity: true, stdin: strings.NewReader(msg)},
		"commit-tree", "--no-gpg-sign", "-p", first, "-p", second, tree)
	if err != nil {
		return "", fmt.Errorf("write merge commit: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// mergeMessage is in.Message (or a default) with in.Trailers appended.
func mergeMessage(in MergeInput, src, ref string) string {
	msg := in.Message
	if msg == "" {
		msg = fmt.Sprintf("Merge %s into %s", shortSHA(src), shortBranch(ref))
	}
	return formatMessage(msg, in.Trailers)
}
