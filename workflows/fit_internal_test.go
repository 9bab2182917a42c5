package workflows

import (
	"fmt"
	"strings"
	"testing"

	"codeswarm/activities"
)

// TestFitResultsLeavesWhatFits: results within the budget are not touched.
func TestFitResultsLeavesWhatFits(t *testing.T) {
	rs := []activities.SubtaskResult{
		{ID: "a", Result: strings.Repeat("a", 100), Error: "e", FilesChanged: []string{"x.go"}, Conflicts: []string{}},
		{ID: "b", Result: strings.Repeat("b", 50), FilesChanged: []string{}, Conflicts: []string{"y.go"}},
	}
	want := fmt.Sprint(rs)
	total := textSize(&rs[0]) + textSize(&rs[1])
	if total != 100+1+4+3+50+4+3 {
		t.Fatalf("textSize sum = %d", total)
	}
	if n := fitResults(rs, total); n != 0 || fmt.Sprint(rs) != want {
		t.Errorf("fitResults at the exact size cut %d: %v", n, rs)
	}
}

// TestFitResultsCutsTheLargestToOneLevel: over the budget, the entries over
// one level are cut to it and the small ones keep everything; the sum fits.
// Within an entry the answer goes first, then files from the last, then
// conflicting paths, the error last, and the omitted paths are counted.
func TestFitResultsCutsTheLargestToOneLevel(t *testing.T) {
	files := func(n int) []string {
		var fs []string
		for i := range n {
			fs = append(fs, fmt.Sprintf("pkg/f%03d.go", i)) // 11 bytes, 14 counted
		}
		return fs
	}
	rs := []activities.SubtaskResult{
		{ID: "small", Result: strings.Repeat("s", 40), FilesChanged: files(1), Conflicts: []string{}},
		{ID: "answer", Result: strings.Repeat("r", 5000), Error: "", FilesChanged: files(2), Conflicts: []string{}},
		{ID: "files", Result: "", Error: "boom", FilesChanged: files(400), Conflicts: []string{}},
		{ID: "error", Result: "", Error: strings.Repeat("e", 3000), FilesChanged: []string{}, Conflicts: files(3)},
	}
	small := fmt.Sprint(rs[0])
	const budget = 1200
	if n := fitResults(rs, budget); n != 3 {
		t.Errorf("cut %d entries, want 3", n)
	}
	total := 0
	for i := range rs {
		total += textSize(&rs[i])
		t.Logf("%s: size %d, result %d, error %d, files %d (+%d), conflicts %d (+%d)", rs[i].ID, textSize(&rs[i]),
			len(rs[i].Result), len(rs[i].Error), len(rs[i].FilesChanged), rs[i].FilesOmitted, len(rs[i].Conflicts), rs[i].ConflictsOmitted)
	}
	if total > budget {
		t.Errorf("sum %d after the cut, budget %d", total, budget)
	}
	if fmt.Sprint(rs[0]) != small {
		t.Errorf("the small entry changed: %v", rs[0])
	}
	// The level: (1200 - 54) / 3 = 382 bytes for each of the three large.
	const level = (budget - (40 + 14)) / 3
	a := rs[1]
	if len(a.FilesChanged) != 2 || !strings.HasSuffix(a.Result, truncatedMark) || textSize(&a) > level || textSize(&a) < level-len(truncatedMark) {
		t.Errorf("answer entry: files %d, size %d (level %d), result ends %q", len(a.FilesChanged), textSize(&a), level, a.Result[max(0, len(a.Result)-20):])
	}
	f := rs[2]
	if f.Error != "boom" || f.FilesOmitted == 0 || len(f.FilesChanged)+f.FilesOmitted != 400 || textSize(&f) > level {
		t.Errorf("files entry: error %q, files %d + %d omitted, size %d", f.Error, len(f.FilesChanged), f.FilesOmitted, textSize(&f))
	}
	if f.FilesChanged[0] != "pkg/f000.go" {
		t.Errorf("files entry kept %q first, want the first file", f.FilesChanged[0])
	}
	e := rs[3]
	if len(e.Conflicts) != 0 || e.ConflictsOmitted != 3 || !strings.HasPrefix(e.Error, "eee") || !strings.HasSuffix(e.Error, truncatedMark) || textSize(&e) > level {
		t.Errorf("error entry: conflicts %d + %d omitted, size %d, error %d bytes", len(e.Conflicts), e.ConflictsOmitted, textSize(&e), len(e.Error))
	}
}

// TestPathList: an event or error line names at most pathListMax paths and
// says how many more there are, those not listed by the activity included.
func TestPathList(t *testing.T) {
	var many []string
	for i := range 25 {
		many = append(many, fmt.Sprintf("f%d", i))
	}
	for _, tt := range []struct {
		paths   []string
		omitted int
		want    string
	}{
		{[]string{"a.go", "b.go"}, 0, "a.go, b.go"},
		{[]string{"a.go"}, 7, "a.go and 7 more"},
		{many, 0, strings.Join(many[:pathListMax], ", ") + " and 5 more"},
		{many, 975, strings.Join(many[:pathListMax], ", ") + " and 980 more"},
	} {
		if got := pathList(tt.paths, tt.omitted); got != tt.want {
			t.Errorf("pathList(%d paths, %d) = %q, want %q", len(tt.paths), tt.omitted, got, tt.want)
		}
	}
}

// TestRunErrorNamesAtMostTwentyFailures: a run's error, which is also its
// workflow's failure message, names the first maxNamedFailures failed
// subtasks and counts the rest; a run with few failures names them all.
func TestRunErrorNamesAtMostTwentyFailures(t *testing.T) {
	var r activities.SwarmResult
	for i := range 10000 {
		r.SubtaskResults = append(r.SubtaskResults, activities.SubtaskResult{ID: fmt.Sprintf("%04d-a%04d", i, i), Status: "failed"})
	}
	got := runError(r)
	want := "10000 of 10000 subtasks did not succeed: 0000-a0000 (failed), "
	if !strings.HasPrefix(got, want) || !strings.HasSuffix(got, ", 0019-a0019 (failed) and 9980 more (subtask_results has each)") ||
		strings.Contains(got, "0020-a0020") || len(got) > 1000 {
		t.Errorf("runError of 10,000 failures (%d bytes) = %q", len(got), got)
	}
	r.SubtaskResults = r.SubtaskResults[:3]
	if got, want := runError(r), "3 of 3 subtasks did not succeed: 0000-a0000 (failed), 0001-a0001 (failed), 0002-a0002 (failed)"; got != want {
		t.Errorf("runError of 3 failures = %q, want %q", got, want)
	}
}
