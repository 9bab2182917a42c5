package gitops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// batchFixture is mergeFixture with sources for every outcome a batch
// item can have: A and B merge cleanly, D conflicts with A's change, None
// is the base itself (a subtask that committed nothing) and Twin makes
// A's change again.
type batchFixture struct {
	tr                        *testRepo
	base                      string
	srcA, srcB, srcD, srcTwin string
	items                     []MergeInput
}

func newBatchFixture(t *testing.T) *batchFixture {
	t.Helper()
	tr, base := mergeFixture(t)
	f := &batchFixture{tr: tr, base: base}
	f.srcA = tr.commitOn("sub-a", base, map[string]string{"a.txt": "alpha from A\n", "new-a.txt": "A\n"})
	f.srcD = tr.commitOn("sub-d", base, map[string]string{"a.txt": "alpha from D\n"})
	f.srcTwin = tr.commitOn("sub-twin", base, map[string]string{"a.txt": "alpha from A\n"})
	f.srcB = tr.commitOn("sub-b", base, map[string]string{"b.txt": "bravo from B\n", "dir/b.txt": "B\n"})
	for i, src := range []string{f.srcA, f.srcD, base, f.srcTwin, f.srcB} {
		f.items = append(f.items, MergeInput{Source: src, Message: fmt.Sprintf("merge item %d", i),
			Trailers: [][2]string{{"Codeswarm-Subtask", fmt.Sprint(i)}}})
	}
	return f
}

func (f *batchFixture) mergeAll(t *testing.T, head string) []MergeResult {
	t.Helper()
	res, err := f.tr.repo.MergeAll(context.Background(), MergeAllInput{TargetBranch: "integ", Head: head, Items: f.items})
	if err != nil {
		t.Fatalf("MergeAll: %v", err)
	}
	return res
}

// reflogLen counts the updates of integ, so a test sees how many swaps a
// batch made.
func (f *batchFixture) reflogLen() int {
	return len(strings.Split(f.tr.git("reflog", "show", "--format=%H", "refs/heads/integ"), "\n"))
}

// checkOutcomes asserts the outcome every item of the fixture must have
// when merged in order onto base.
func (f *batchFixture) checkOutcomes(t *testing.T, res []MergeResult) {
	t.Helper()
	if len(res) != len(f.items) {
		t.Fatalf("%d results for %d items: %+v", len(res), len(f.items), res)
	}
	a, d, none, twin, b := res[0], res[1], res[2], res[3], res[4]
	if a.Status != MergeMerged || !slices.Equal(a.FilesChanged, []string{"a.txt", "new-a.txt"}) || f.tr.git("rev-parse", a.Commit+"^2") != f.srcA {
		t.Errorf("A = %+v; want merged, changing a.txt and new-a.txt", a)
	}
	if d.Status != MergeConflict || !slices.Equal(d.Conflicts, []string{"a.txt"}) || d.Commit != a.Commit {
		t.Errorf("D = %+v; want a conflict in a.txt at A's merge %s", d, a.Commit)
	}
	for name, r := range map[string]MergeResult{"None": none, "Twin": twin} {
		if want := (MergeResult{Status: MergeNoChanges, Commit: a.Commit}); !equalResult(r, want) {
			t.Errorf("%s = %+v; want %+v", name, r, want)
		}
	}
	if b.Status != MergeMerged || !slices.Equal(b.FilesChanged, []string{"b.txt", "dir/b.txt"}) {
		t.Errorf("B = %+v; want merged, changing b.txt and dir/b.txt", b)
	}
	if got := f.tr.git("rev-list", "--parents", "-n1", b.Commit); got != b.Commit+" "+a.Commit+" "+f.srcB {
		t.Errorf("B's merge has parents %q; want A's merge, then B", got)
	}
	if got := f.tr.git("log", "-1", "--format=%s|%(trailers:key=Codeswarm-Subtask,valueonly)", b.Commit); got != "merge item 4|4" {
		t.Errorf("B's merge message = %q", got)
	}
}

func TestMergeAllLandsTheChainInOneSwap(t *testing.T) {
	f := newBatchFixture(t)
	before := f.reflogLen()
	res := f.mergeAll(t, f.base)
	f.checkOutcomes(t, res)
	if got := f.tr.head("integ"); got != res[4].Commit {
		t.Errorf("integ at %s; want B's merge %s", got, res[4].Commit)
	}
	if got := f.reflogLen() - before; got != 1 {
		t.Errorf("integ updated %d times; want once for the whole batch", got)
	}

	// The same items through Merge one at a time give the same outcomes
	// and the same trees.
	f.tr.git("update-ref", "refs/heads/integ", f.base)
	each, err := f.tr.repo.mergeEach(context.Background(), MergeAllInput{TargetBranch: "integ", Head: f.base, Items: f.items})
	if err != nil {
		t.Fatalf("mergeEach: %v", err)
	}
	f.checkOutcomes(t, each)
	for i := range res {
		if res[i].Status != each[i].Status || !slices.Equal(res[i].FilesChanged, each[i].FilesChanged) ||
			f.tr.head(res[i].Commit+"^{tree}") != f.tr.head(each[i].Commit+"^{tree}") {
			t.Errorf("item %d: batch %+v, one by one %+v", i, res[i], each[i])
		}
	}
}

func TestMergeAllRetryAfterLanding(t *testing.T) {
	f := newBatchFixture(t)
	first := f.mergeAll(t, f.base)
	count := f.tr.git("rev-list", "--count", "integ")
	// A worker died after the swap: the retry names the head it started
	// from, finds every merge landed and reports each outcome again.
	again := f.mergeAll(t, f.base)
	if !reflect.DeepEqual(again, first) {
		t.Errorf("retry = %+v\nwant %+v", again, first)
	}
	if got := f.tr.git("rev-list", "--count", "integ"); got != count {
		t.Errorf("%s commits on integ after the retry; want %s", got, count)
	}
}

func TestMergeAllTargetMovesBeforeTheSwap(t *testing.T) {
	f := newBatchFixture(t)
	srcE := f.tr.commitOn("sub-e", f.base, map[string]string{"e.txt": "E\n"})
	racer := *f.tr.repo
	calls := 0
	f.tr.repo.beforeUpdateRef = func() {
		if calls++; calls == 1 {
			if res := mustMergeWith(t, &racer, srcE); res.Status != MergeMerged {
				t.Fatalf("racing merge = %+v", res)
			}
		}
	}
	raced := f.tr.head("sub-e")
	res := f.mergeAll(t, f.base)
	// The batch's swap failed, nothing of it landed, and its items went
	// one by one onto the racer's merge.
	racerMerge := f.tr.git("rev-parse", res[0].Commit+"^1")
	if f.tr.git("rev-parse", racerMerge+"^2") != raced {
		t.Fatalf("A merged onto %s; want the racer's merge of E", racerMerge)
	}
	if res[0].Status != MergeMerged || res[1].Status != MergeConflict || res[4].Status != MergeMerged {
		t.Errorf("outcomes %+v; want A merged, D conflicting, B merged", res)
	}
	if got := f.tr.git("rev-list", "--count", "--merges", "integ"); got != "3" {
		t.Errorf("%s merge commits on integ; want 3 (E, A, B)", got)
	}
}

func TestMergeAllFallsBackForAnItemMergedBefore(t *testing.T) {
	f := newBatchFixture(t)
	// A landed alone first (say, by an earlier single merge): the batch,
	// naming the head before it, reports A's merge again and goes on.
	a := mustMerge(t, f.tr, f.srcA)
	res := f.mergeAll(t, f.base)
	if !equalResult(res[0], a) {
		t.Errorf("A = %+v; want its earlier merge %+v", res[0], a)
	}
	f.checkOutcomes(t, res)

	// The head unknown: a source already merged in the chain's own
	// history is recognised too.
	res = f.mergeAll(t, "")
	if !equalResult(res[0], a) {
		t.Errorf("with no head: A = %+v; want its earlier merge %+v", res[0], a)
	}
}

func TestMergeAllErrors(t *testing.T) {
	f := newBatchFixture(t)
	ctx := context.Background()
	for _, src := range []string{"nope", "no such ref", "two\nlines", ""} {
		items := []MergeInput{{Source: f.srcA}, {Source: src}}
		if _, err := f.tr.repo.MergeAll(ctx, MergeAllInput{TargetBranch: "integ", Items: items}); !errors.Is(err, ErrUnknownRef) {
			t.Errorf("source %q: error = %v, want ErrUnknownRef", src, err)
		}
		if _, err := f.tr.repo.Merge(ctx, MergeInput{TargetBranch: "integ", Source: src}); !errors.Is(err, ErrUnknownRef) {
			t.Errorf("Merge of %q: error = %v, want ErrUnknownRef", src, err)
		}
	}
	if _, err := f.tr.repo.MergeAll(ctx, MergeAllInput{TargetBranch: "absent", Items: f.items}); err == nil {
		t.Error("merge into a missing branch succeeded")
	}
	if _, err := f.tr.repo.MergeAll(ctx, MergeAllInput{Items: f.items}); err == nil {
		t.Error("merge without target succeeded")
	}
}

// countGit runs fn and returns how many git processes it started, from
// git's own trace2 events; the children git starts itself (worktree add
// runs branch, symbolic-ref and reset) have a parent in their sid.
func countGit(t *testing.T, fn func()) int {
	t.Helper()
	trace := filepath.Join(t.TempDir(), "trace2.json")
	t.Setenv("GIT_TRACE2_EVENT", trace)
	fn()
	os.Unsetenv("GIT_TRACE2_EVENT")
	b, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var ev struct{ Event, Sid string }
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("trace2 line %q: %v", line, err)
		}
		if ev.Event == "start" && !strings.Contains(ev.Sid, "/") {
			n++
		}
	}
	return n
}

// TestMergeProcessCount pins the cost of a merge in git processes, the
// unit its time is made of.
func TestMergeProcessCount(t *testing.T) {
	f := newBatchFixture(t)
	ctx := context.Background()
	var err error
	n := countGit(t, func() { _, err = Open(ctx, f.tr.dir) })
	if err != nil || n != 1 {
		t.Errorf("Open: %d git processes (err %v); want 1", n, err)
	}
	var res MergeResult
	n = countGit(t, func() { res, err = f.tr.repo.Merge(ctx, MergeInput{TargetBranch: "integ", Source: f.srcA}) })
	if err != nil || res.Status != MergeMerged || n != 5 {
		t.Errorf("Merge = %+v, %v in %d git processes; want merged in 5", res, err, n)
	}
	clean := []MergeInput{{Source: f.srcB}, {Source: f.tr.commitOn("sub-c", f.base, map[string]string{"c.txt": "C\n"})},
		{Source: f.tr.commitOn("sub-f", f.base, map[string]string{"f.txt": "F\n"})}}
	var all []MergeResult
	n = countGit(t, func() {
		all, err = f.tr.repo.MergeAll(ctx, MergeAllInput{TargetBranch: "integ", Head: res.Commit, Items: clean})
	})
	if err != nil || len(all) != 3 || all[2].Status != MergeMerged || n != 2*3+3 {
		t.Errorf("MergeAll = %+v, %v in %d git processes; want 3 merged in %d", all, err, n, 2*3+3)
	}
}
