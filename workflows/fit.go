package workflows

import (
	"slices"

	"codeswarm/activities"
)

// payloadTextBudget bounds, in bytes, the text and path lists that the
// subtask results put into one Temporal payload: a hand-over's carry and
// the run's result. Temporal refuses a payload over 2 MB, and these parts
// may not compress (a model's answer, an error's stack of addresses), so
// the bound is on their plain size. The rest of a subtask's entry (IDs,
// branch, commits, figures) is about 45 bytes packed, 0.45 MB at 10,000
// subtasks, which leaves room for this budget and the aggregate text.
const payloadTextBudget = 1 << 20

// truncatedMark ends a text capString cut; fitResults counts it in the
// budget.
const truncatedMark = "\n...[truncated]"

// entryOverhead is what a list entry costs in JSON beyond its text: the
// quotes and the comma.
const entryOverhead = 3

// textSize is what fitResults counts of r: its answer, its error and its
// two path lists.
func textSize(r *activities.SubtaskResult) int {
	n := len(r.Result) + len(r.Error)
	for _, f := range r.FilesChanged {
		n += len(f) + entryOverhead
	}
	for _, c := range r.Conflicts {
		n += len(c) + entryOverhead
	}
	return n
}

// fitResults cuts the results' texts and path lists, in place, so that
// together they count at most budget bytes (textSize), and reports how
// many it cut. Small entries keep all they have: every entry over a common
// level is cut to that level (the highest that fits), the way water fills
// a basin. Within an entry the answer goes first (the transcript keeps it
// whole), then changed files (the commit keeps them; FilesOmitted counts
// them), then conflicting paths (ConflictsOmitted), the error last. A run
// whose results fit (every run below a few thousand subtasks with answers
// of a few kB) is left as it is.
func fitResults(rs []activities.SubtaskResult, budget int) int {
	sizes := make([]int, len(rs))
	total := 0
	for i := range rs {
		sizes[i] = textSize(&rs[i])
		total += sizes[i]
	}
	if total <= budget {
		return 0
	}
	level := waterLevel(sizes, budget)
	cut := 0
	for i := range rs {
		if sizes[i] > level {
			shrink(&rs[i], sizes[i]-level)
			cut++
		}
	}
	return cut
}

// waterLevel is the highest level such that the sizes, each cut to it,
// sum to at most budget.
func waterLevel(sizes []int, budget int) int {
	sorted := slices.Clone(sizes)
	slices.Sort(sorted)
	below := 0 // the sum of the sizes under the level
	for i, s := range sorted {
		above := len(sorted) - i // entries that the level cuts, s among them
		if below+s*above > budget {
			return (budget - below) / above
		}
		below += s
	}
	return sorted[len(sorted)-1]
}

// shrink cuts excess bytes (textSize) from r: the answer, then the changed
// files from the last, then the conflicting paths, then the error.
func shrink(r *activities.SubtaskResult, excess int) {
	r.Result, excess = cutText(r.Result, excess)
	if excess > 0 {
		r.FilesChanged, r.FilesOmitted, excess = dropPaths(r.FilesChanged, r.FilesOmitted, excess)
	}
	if excess > 0 {
		r.Conflicts, r.ConflictsOmitted, excess = dropPaths(r.Conflicts, r.ConflictsOmitted, excess)
	}
	if excess > 0 {
		r.Error, _ = cutText(r.Error, excess)
	}
}

// cutText shortens s by at least excess bytes, marker included, and
// returns what is still to cut.
func cutText(s string, excess int) (string, int) {
	if s == "" {
		return s, excess
	}
	if excess >= len(s) {
		return "", excess - len(s)
	}
	keep := len(s) - excess - len(truncatedMark)
	if keep <= 0 {
		return "", excess - len(s)
	}
	cut := capString(s, keep)
	return cut, excess - (len(s) - len(cut))
}

// dropPaths drops entries from the end of paths until excess bytes
// (textSize) are gone or none is left; omitted counts them.
func dropPaths(paths []string, omitted, excess int) ([]string, int, int) {
	n := len(paths)
	for n > 0 && excess > 0 {
		n--
		excess -= len(paths[n]) + entryOverhead
		omitted++
	}
	return paths[:n], omitted, excess
}
