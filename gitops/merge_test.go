package gitops

import (
	"context"
	"errors"
	"slices"
	"testing"
)

// mergeFixture is a repository with an integration branch "integ" at main.
func mergeFixture(t *testing.T) (*testRepo, string) {
	t.Helper()
	tr := newTestRepo(t)
	tr.dirtyUserTree()
	tr.assertUserUntouched()
	base := tr.head("main")
	tr.git("branch", "integ", base)
	return tr, base
}

func mustMerge(t *testing.T, tr *testRepo, src string) MergeResult {
	t.Helper()
	res, err := tr.repo.Merge(context.Background(), MergeInput{
		TargetBranch: "integ", Source: src, Message: "merge subtask",
		Trailers: [][2]string{{"Codeswarm-Subtask", "st"}},
	})
	if err != nil {
		t.Fatalf("Merge %s: %v", src, err)
	}
	return res
}

func TestMergeClean(t *testing.T) {
	tr, base := mergeFixture(t)
	srcA := tr.commitOn("sub-a", base, map[string]string{"a.txt": "alpha from A\n"})
	srcB := tr.commitOn("sub-b", base, map[string]string{"b.txt": "bravo from B\n", "d.txt": "new\n"})

	resA := mustMerge(t, tr, srcA)
	if resA.Status != MergeMerged || resA.Commit != tr.head("integ") || !slices.Equal(resA.FilesChanged, []string{"a.txt"}) {
		t.Fatalf("merge A = %+v", resA)
	}
	resB := mustMerge(t, tr, "sub-b")
	if resB.Status != MergeMerged || !slices.Equal(resB.FilesChanged, []string{"b.txt", "d.txt"}) {
		t.Fatalf("merge B = %+v", resB)
	}
	head := tr.head("integ")
	if got := tr.git("show", head+":a.txt") + "|" + tr.git("show", head+":b.txt"); got != "alpha from A|bravo from B" {
		t.Errorf("integ has %q, want both changes", got)
	}
	if got := tr.git("rev-parse", head+"^1", head+"^2"); got != resA.Commit+"\n"+srcB {
		t.Errorf("merge parents = %q, want integ head then source", got)
	}
	if got := tr.git("log", "-1", "--format=%s|%(trailers:key=Codeswarm-Subtask,valueonly)", head); got != "merge subtask|st" {
		t.Errorf("merge message = %q", got)
	}
}

func TestMergeRetryAfterLanding(t *testing.T) {
	tr, base := mergeFixture(t)
	srcA := tr.commitOn("sub-a", base, map[string]string{"a.txt": "A\n"})
	srcB := tr.commitOn("sub-b", base, map[string]string{"b.txt": "B\n"})
	first := mustMerge(t, tr, srcA)
	count := tr.git("rev-list", "--count", "integ")

	// Retry right away, and again after another merge landed on top.
	for _, step := range []string{"immediately", "after another merge"} {
		again := mustMerge(t, tr, srcA)
		if !equalResult(again, first) {
			t.Errorf("retry %s = %+v, want %+v", step, again, first)
		}
		if step == "immediately" {
			if got := tr.git("rev-list", "--count", "integ"); got != count {
				t.Errorf("retry made commits: %s, want %s", got, count)
			}
			mustMerge(t, tr, srcB)
		}
	}
}

func TestMergeConflict(t *testing.T) {
	tr, base := mergeFixture(t)
	srcC := tr.commitOn("sub-c", base, map[string]string{"c.txt": "one\nTWO from C\nthree\n", "a.txt": "A\n"})
	srcD := tr.commitOn("sub-d", base, map[string]string{"c.txt": "one\nTWO from D\nthree\n", "b.txt": "B\n"})
	mustMerge(t, tr, srcC)
	before := tr.head("integ")

	res := mustMerge(t, tr, srcD)
	want := MergeResult{Status: MergeConflict, Commit: before, Conflicts: []string{"c.txt"}}
	if !equalResult(res, want) {
		t.Fatalf("Merge = %+v, want %+v", res, want)
	}
	if got := tr.head("integ"); got != before {
		t.Errorf("conflict moved integ to %s", got)
	}
	if got := tr.head("sub-d"); got != srcD {
		t.Errorf("source branch moved to %s, want %s kept", got, srcD)
	}
}

func TestMergeNoChanges(t *testing.T) {
	tr, base := mergeFixture(t)
	srcA := tr.commitOn("sub-a", base, map[string]string{"a.txt": "A\n"})
	mustMerge(t, tr, srcA)
	head := tr.head("integ")
	// Same change made independently: nothing new for integ.
	twin := tr.commitOn("twin", base, map[string]string{"a.txt": "A\n"})

	for name, src := range map[string]string{"subtask made no commit": base, "change already present": twin} {
		res := mustMerge(t, tr, src)
		if want := (MergeResult{Status: MergeNoChanges, Commit: head}); !equalResult(res, want) {
			t.Errorf("%s: Merge = %+v, want %+v", name, res, want)
		}
	}
	if got := tr.head("integ"); got != head {
		t.Errorf("no_changes moved integ to %s", got)
	}
}

func TestMergeErrors(t *testing.T) {
	tr, _ := mergeFixture(t)
	ctx := context.Background()
	if _, err := tr.repo.Merge(ctx, MergeInput{TargetBranch: "integ", Source: "nope"}); !errors.Is(err, ErrUnknownRef) {
		t.Errorf("unknown source error = %v, want ErrUnknownRef", err)
	}
	if _, err := tr.repo.Merge(ctx, MergeInput{TargetBranch: "absent", Source: "main"}); err == nil {
		t.Error("merge into a missing branch succeeded")
	}
	if _, err := tr.repo.Merge(ctx, MergeInput{Source: "main"}); err == nil {
		t.Error("merge without target succeeded")
	}
}

func TestMergeTargetMovesDuringMerge(t *testing.T) {
	tr, base := mergeFixture(t)
	srcA := tr.commitOn("sub-a", base, map[string]string{"a.txt": "A\n"})
	srcB := tr.commitOn("sub-b", base, map[string]string{"b.txt": "B\n"})

	// Between computing the merge of A and swapping the ref, another
	// merger lands B: the first swap must fail and the merge be redone.
	racer := *tr.repo
	calls := 0
	tr.repo.beforeUpdateRef = func() {
		calls++
		if calls == 1 {
			if res := mustMergeWith(t, &racer, srcB); res.Status != MergeMerged {
				t.Fatalf("racing merge = %+v", res)
			}
		}
	}
	res := mustMerge(t, tr, srcA)
	if res.Status != MergeMerged || calls != 2 {
		t.Fatalf("Merge = %+v after %d swap attempts, want merged on the 2nd", res, calls)
	}
	head := tr.head("integ")
	if got := tr.git("show", head+":a.txt") + "|" + tr.git("show", head+":b.txt"); got != "A|B" {
		t.Errorf("integ has %q, want both changes", got)
	}
	if got := tr.git("rev-list", "--count", "--merges", "integ"); got != "2" {
		t.Errorf("%s merge commits on integ, want 2", got)
	}
}

func TestMergeGivesUpWhenTargetKeepsMoving(t *testing.T) {
	tr, base := mergeFixture(t)
	srcA := tr.commitOn("sub-a", base, map[string]string{"a.txt": "A\n"})
	n := 0
	tr.repo.beforeUpdateRef = func() {
		n++
		tr.commitOn("integ", "integ", map[string]string{"noise.txt": string(rune('a'+n)) + "\n"})
	}
	_, err := tr.repo.Merge(context.Background(), MergeInput{TargetBranch: "integ", Source: srcA})
	if !errors.Is(err, ErrRefMoved) || n != maxMergeAttempts {
		t.Fatalf("Merge error = %v after %d attempts, want ErrRefMoved after %d", err, n, maxMergeAttempts)
	}
}

func mustMergeWith(t *testing.T, r *Repo, src string) MergeResult {
	t.Helper()
	res, err := r.Merge(context.Background(), MergeInput{TargetBranch: "integ", Source: src})
	if err != nil {
		t.Fatalf("Merge %s: %v", src, err)
	}
	return res
}

func equalResult(a, b MergeResult) bool {
	return a.Status == b.Status && a.Commit == b.Commit &&
		slices.Equal(a.Conflicts, b.Conflicts) && slices.Equal(a.FilesChanged, b.FilesChanged)
}

// TestMergeOntoJudgesAgainstTheHeadMet: a batch's item that conflicted
// against head H1 is retried after a later item moved the branch to H2, and
// that move (here, undoing H1's change of a.txt) would let it merge cleanly
// now. With Onto H1 it gets its first outcome again and the branch stays;
// a clean source is still merged onto the current head.
func TestMergeOntoJudgesAgainstTheHeadMet(t *testing.T) {
	tr, base := mergeFixture(t)
	h1 := mustMerge(t, tr, tr.commitOn("sub-y", base, map[string]string{"a.txt": "y\n"})).Commit
	srcC := tr.commitOn("sub-c", base, map[string]string{"a.txt": "z\n"})
	first := mustMerge(t, tr, srcC)
	if first.Status != MergeConflict || first.Commit != h1 {
		t.Fatalf("first merge of C = %+v; want a conflict at %s", first, h1)
	}
	h2 := mustMerge(t, tr, tr.commitOn("sub-undo", h1, map[string]string{"a.txt": tr.git("show", base+":a.txt") + "\n"})).Commit

	merge := func(src, onto string) MergeResult {
		t.Helper()
		res, err := tr.repo.Merge(context.Background(), MergeInput{TargetBranch: "integ", Source: src, Onto: onto})
		if err != nil {
			t.Fatalf("Merge %s onto %s: %v", src, onto, err)
		}
		return res
	}
	if again := merge(srcC, h1); !equalResult(again, first) || tr.head("integ") != h2 {
		t.Errorf("retry onto H1 = %+v, integ at %s; want %+v and integ still at %s", again, tr.head("integ"), first, h2)
	}
	srcE := tr.commitOn("sub-e", base, map[string]string{"e.txt": "e\n"})
	clean := merge(srcE, h1)
	if clean.Status != MergeMerged || tr.git("rev-parse", clean.Commit+"^1") != h2 {
		t.Errorf("clean merge onto H1 = %+v; want merged onto the current head %s", clean, h2)
	}
	// Without Onto, C is judged against today's head, where it merges:
	// the outcome Onto keeps from changing.
	if now := merge(srcC, ""); now.Status != MergeMerged {
		t.Errorf("C against the current head = %+v; want merged (the fixture must make Onto matter)", now)
	}
}
