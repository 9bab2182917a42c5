package gitops

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// MergeAllInput asks to merge several commits, in order, into one branch.
type MergeAllInput struct {
	// TargetBranch is the branch to merge into (short name or refs/heads/...).
	TargetBranch string
	// Head is the target's head the caller knows: the first item is judged
	// against it, each next item against the head the one before left (as
	// MergeInput.Onto). Empty: the target's current head.
	Head string
	// Items are merged in this order; their TargetBranch and Onto are
	// ignored.
	Items []MergeInput
}

// MergeAll merges every item in order, each onto the head the one before
// left, and returns one result per item. The results are the ones a call of
// Merge per item would give, with Onto set to Head for the first item and
// to the previous result's Commit for each next one.
//
// When the target is at Head (or Head is empty), the whole chain of merge
// commits is made from one read of the refs and lands with one
// compare-and-swap: two git processes per item (merge-tree, commit-tree)
// and three for the batch (cat-file, diff-tree, update-ref), where Merge
// needs five per item. Nothing lands unless everything does, so a batch
// retried after a crash finds either none of its merges or all of them.
// Otherwise (the target moved past Head, such as a batch landed by an
// earlier attempt; an item already merged before; a source that does not
// resolve; the target moving before the swap) the items go through Merge
// one at a time, which judges each against the head its Onto names.
func (r *Repo) MergeAll(ctx context.Context, in MergeAllInput) ([]MergeResult, error) {
	if in.TargetBranch == "" {
		return nil, errors.New("merge: empty target branch")
	}
	ref := fullRef(in.TargetBranch)
	sources := make([]string, len(in.Items))
	for i, item := range in.Items {
		sources[i] = item.Source
	}
	t, err := r.readTips(ctx, ref, sources)
	if err != nil {
		return nil, err
	}
	if t.complete() && (in.Head == "" || in.Head == t.head) {
		res, ok, err := r.mergeChain(ctx, ref, t, in.Items)
		if err == nil && ok {
			return res, nil
		}
		if err != nil && !errors.Is(err, ErrRefMoved) {
			return nil, err
		}
	}
	return r.mergeEach(ctx, in)
}

// mergeEach merges the items one Merge at a time, each judged against the
// head the one before left.
func (r *Repo) mergeEach(ctx context.Context, in MergeAllInput) ([]MergeResult, error) {
	out := make([]MergeResult, 0, len(in.Items))
	onto := in.Head
	for _, item := range in.Items {
		item.TargetBranch, item.Onto = in.TargetBranch, onto
		res, err := r.Merge(ctx, item)
		if err != nil {
			return nil, err
		}
		onto = res.Commit // the merge, or the head a conflict or no change left
		out = append(out, res)
	}
	return out, nil
}

// mergeChain merges items in order onto t.head, each onto the commit the
// one before made, and swaps ref from t.head to the last merge. It reports
// !ok, having changed nothing, when an item's source is already merged by
// a merge commit in the target's history: only Merge's careful path
// reports that merge again the way it was first reported.
func (r *Repo) mergeChain(ctx context.Context, ref string, t tips, items []MergeInput) ([]MergeResult, bool, error) {
	out := make([]MergeResult, len(items))
	var merged []chainMerge
	cur, curTree := t.head, t.headTree
	for i, item := range items {
		res, tree, ok, err := r.chainStep(ctx, ref, cur, curTree, t.sources[i], item)
		if err != nil || !ok {
			return nil, ok, err
		}
		out[i] = res
		if res.Status == MergeMerged {
			merged = append(merged, chainMerge{item: i, commit: res.Commit, parent: cur})
			cur, curTree = res.Commit, tree
		}
	}
	if len(merged) == 0 {
		return out, true, nil
	}
	if err := r.filesChanged(ctx, merged, out); err != nil {
		return nil, false, err
	}
	if r.beforeUpdateRef != nil {
		r.beforeUpdateRef()
	}
	if err := r.UpdateRefCAS(ctx, ref, cur, t.head); err != nil {
		return nil, false, err
	}
	return out, true, nil
}

// chainMerge is a merge commit a chain made for items[item] on parent.
type chainMerge struct {
	item           int
	commit, parent string
}

// chainStep merges src onto cur (whose tree is curTree) and returns the
// outcome and, when merged, the new tree. Merging first and asking about
// ancestry only when the merge changes nothing is the same decision as
// Merge's careful path in fewer processes: a source that is an ancestor of
// cur always merges to cur's own tree, without conflict.
func (r *Repo) chainStep(ctx context.Context, ref, cur, curTree, src string, in MergeInput) (MergeResult, string, bool, error) {
	tree, conflicts, err := r.mergeTree(ctx, cur, src)
	if err != nil {
		return MergeResult{}, "", false, err
	}
	if conflicts != nil {
		return MergeResult{Status: MergeConflict, Commit: cur, Conflicts: conflicts}, "", true, nil
	}
	if tree == curTree {
		res, ok, err := r.nothingNew(ctx, cur, src)
		return res, "", ok, err
	}
	commit, err := r.commitTree(ctx, tree, cur, src, mergeMessage(in, src, ref))
	if err != nil {
		return MergeResult{}, "", false, err
	}
	return MergeResult{Status: MergeMerged, Commit: commit}, tree, true, nil
}

// nothingNew describes a source whose merge would leave cur as it is: its
// changes are there already, or it is in cur's history. The latter is !ok
// when a merge commit brought it in (a retry), so the caller takes the
// careful path; a source that brought nothing is no change at cur.
func (r *Repo) nothingNew(ctx context.Context, cur, src string) (MergeResult, bool, error) {
	noChange := MergeResult{Status: MergeNoChanges, Commit: cur}
	in, err := r.isAncestor(ctx, src, cur)
	if err != nil || !in {
		return noChange, err == nil, err
	}
	res, err := r.alreadyMerged(ctx, cur, src)
	if err != nil || res.Status == MergeMerged {
		return MergeResult{}, false, err
	}
	return noChange, true, nil
}

// filesChanged fills in each merge's FilesChanged, the paths it changed on
// its first parent, with one `git diff-tree --stdin` for all of them.
// --name-status makes the output self-delimiting: a one-letter status
// before each path, and each commit's own id before its paths.
func (r *Repo) filesChanged(ctx context.Context, merged []chainMerge, out []MergeResult) error {
	var pairs strings.Builder
	index := make(map[string]int, len(merged))
	for _, m := range merged {
		fmt.Fprintf(&pairs, "%s %s\n", m.commit, m.parent)
		index[m.commit] = m.item
	}
	diff, err := git(ctx, r.Root, runOpts{stdin: strings.NewReader(pairs.String())},
		"diff-tree", "--stdin", "-r", "--name-status", "-z", "--no-renames", "--always")
	if err != nil {
		return fmt.Errorf("diff the merges: %w", err)
	}
	fields := splitNUL(diff)
	item := -1
	for i := 0; i < len(fields); i++ {
		if len(fields[i]) != 1 { // a commit id: the paths of its merge follow
			var ok bool
			if item, ok = index[fields[i]]; !ok {
				return fmt.Errorf("diff the merges: unexpected %q", fields[i])
			}
			continue
		}
		if i+1 == len(fields) || item < 0 {
			return fmt.Errorf("diff the merges: malformed output")
		}
		i++
		out[item].FilesChanged = append(out[item].FilesChanged, fields[i])
	}
	return nil
}
