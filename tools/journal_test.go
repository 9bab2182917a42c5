package tools

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func newJournal(t *testing.T) *Journal {
	t.Helper()
	j, err := OpenJournal(filepath.Join(t.TempDir(), "journal"))
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func journalRun(t *testing.T, j *Journal, key string, opts Options, name string, args map[string]any) Result {
	t.Helper()
	res, err := j.Run(context.Background(), key, opts, name, jsonArgs(t, args))
	if err != nil {
		t.Fatalf("journal run %s: %v", key, err)
	}
	return res
}

// crashAfterIntent does what Journal.Run does up to the crash point: plan
// the change and record the intent, without applying it.
func crashAfterIntent(t *testing.T, j *Journal, key string, opts Options, name string, args map[string]any) *change {
	t.Helper()
	tb, res, ok := newToolbox(opts)
	if !ok {
		t.Fatal(res.Output)
	}
	ch, res := tb.plan(context.Background(), name, jsonArgs(t, args))
	if ch == nil {
		t.Fatal(res.Output)
	}
	rec := record{Key: key, Tool: name, State: stateIntent, Path: ch.rel, Result: ch.result,
		PreHash: ch.preHash(), PostHash: hashBytes(ch.post)}
	saveRecord(t, j, rec)
	return ch
}

// saveRecord appends rec to j's log, fsynced, as Run does.
func saveRecord(t *testing.T, j *Journal, rec record) {
	t.Helper()
	l, err := j.open(t.Context(), rec.Key)
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	if err := l.append(rec, true); err != nil {
		t.Fatal(err)
	}
}

// recordSpan returns where key's latest record is in j's log: its offset
// and length (without the newline).
func recordSpan(t *testing.T, j *Journal, key string) (path string, off, n int64) {
	t.Helper()
	l, err := j.open(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	at, ok := l.idx.at[key]
	if !ok {
		t.Fatalf("no record of %q in %s", key, l.path)
	}
	return l.path, at[0], at[1]
}

// restart forgets what this process knows of j's log, as a new worker
// process would not know it.
func restart(j *Journal) { logIndexes.take(filepath.Join(j.dir, logName)) }

// editAB turns "a" into "ab": applying it twice would give "abb".
func editAB() map[string]any {
	return map[string]any{"path": "f.txt", "old_string": "a", "new_string": "ab"}
}

func TestJournalEditOnce(t *testing.T) {
	root := newRoot(t, map[string]string{"f.txt": "a"})
	j, opts := newJournal(t), Options{Root: root}
	first := journalRun(t, j, "run/s1/3/0", opts, ToolEdit, editAB())
	second := journalRun(t, j, "run/s1/3/0", opts, ToolEdit, editAB())
	if !reflect.DeepEqual(first, second) || first.IsError {
		t.Errorf("results differ or failed:\n%+v\n%+v", first, second)
	}
	if got := readTestFile(t, filepath.Join(root, "f.txt")); got != "ab" {
		t.Errorf("content %q: applied more than once", got)
	}
	// A different key is a different call.
	journalRun(t, j, "run/s1/3/1", opts, ToolEdit, editAB())
	if got := readTestFile(t, filepath.Join(root, "f.txt")); got != "abb" {
		t.Errorf("content %q after a second call", got)
	}
}

// TestJournalChangeCompletionLost: a change's completion is not fsynced, so
// after a power loss it may be gone, torn, or (a file system that extended
// the file but not written it) zeros; the durable intent then gives the
// same result, the change is still applied once, and the next record
// starts on a line of its own.
func TestJournalChangeCompletionLost(t *testing.T) {
	for name, lose := range map[string]func(f *os.File, off, n int64) error{
		"gone": func(f *os.File, off, _ int64) error { return f.Truncate(off) },
		"torn": func(f *os.File, off, n int64) error { return f.Truncate(off + n/2) },
		"zeros": func(f *os.File, off, n int64) error {
			_, err := f.WriteAt(make([]byte, n+1), off)
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			root := newRoot(t, map[string]string{"f.txt": "a"})
			j, opts := newJournal(t), Options{Root: root}
			first := journalRun(t, j, "k", opts, ToolEdit, editAB())
			path, off, n := recordSpan(t, j, "k")
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			var rec record
			data := make([]byte, n)
			if _, err := f.ReadAt(data, off); err != nil || json.Unmarshal(data, &rec) != nil || rec.State != stateDone {
				t.Fatalf("after the edit: last record %q (%v), want done", data, err)
			}
			if err := lose(f, off, n); err != nil {
				t.Fatal(err)
			}
			_ = f.Close()
			restart(j)
			again := journalRun(t, j, "k", opts, ToolEdit, editAB())
			if !reflect.DeepEqual(first, again) {
				t.Errorf("retry after the completion was lost = %+v, want %+v", again, first)
			}
			if got := readTestFile(t, filepath.Join(root, "f.txt")); got != "ab" {
				t.Errorf("content %q: applied more than once", got)
			}
			// The log is whole again: a new process reads every record.
			journalRun(t, j, "k2", opts, ToolEdit, editAB())
			restart(j)
			for _, key := range []string{"k", "k2"} {
				if res := journalRun(t, j, key, opts, ToolEdit, editAB()); res.IsError {
					t.Errorf("%s after a restart: %+v", key, res)
				}
			}
			if got := readTestFile(t, filepath.Join(root, "f.txt")); got != "abb" {
				t.Errorf("content %q, want each edit applied once", got)
			}
		})
	}
}

// TestJournalSharedBetweenProcesses: what one process appends to a log,
// another that read it before sees on its next call (the index follows
// the file's size), and a log replaced by another file is read anew.
func TestJournalSharedBetweenProcesses(t *testing.T) {
	root := newRoot(t, map[string]string{"f.txt": "a"})
	j, opts := newJournal(t), Options{Root: root}
	journalRun(t, j, "k1", opts, ToolEdit, editAB())
	mine := logIndexes.take(filepath.Join(j.dir, logName))    // this process's view
	other := journalRun(t, j, "k2", opts, ToolEdit, editAB()) // another's call
	logIndexes.put(filepath.Join(j.dir, logName), mine)
	if again := journalRun(t, j, "k2", opts, ToolEdit, editAB()); !reflect.DeepEqual(again, other) {
		t.Errorf("k2 after another process recorded it: %+v, want %+v", again, other)
	}
	if got := readTestFile(t, filepath.Join(root, "f.txt")); got != "abb" {
		t.Errorf("content %q, want each edit applied once", got)
	}
	// A new log (the directory was removed and made again) of the same
	// size or larger is not read through the old index.
	if err := os.RemoveAll(j.dir); err != nil {
		t.Fatal(err)
	}
	j2, err := OpenJournal(j.dir)
	if err != nil {
		t.Fatal(err)
	}
	saveRecord(t, j2, record{Key: "k1", Tool: ToolRead, State: stateDone, Result: Result{Output: "a new log's record " + strings.Repeat("x", 500)}})
	if res := journalRun(t, j2, "k1", opts, ToolRead, map[string]any{"path": "f.txt"}); !strings.HasPrefix(res.Output, "a new log's record") {
		t.Errorf("k1 in the new log: %q", res.Output)
	}
}

// TestJournalLegacyRecords: a journal a worker left in the layout before
// the log (a file per key) is still honoured: a completed call returns its
// result, a change whose intent was recorded and that landed is not
// applied again.
func TestJournalLegacyRecords(t *testing.T) {
	root := newRoot(t, map[string]string{"f.txt": "ab"})
	j, opts := newJournal(t), Options{Root: root}
	write := func(key, ext string, rec record) {
		data, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		writeTestFile(t, filepath.Join(j.dir, hashBytes([]byte(key))+ext), string(data))
	}
	write("done", ".json", record{Key: "done", Tool: ToolBash, State: stateDone, Result: Result{Output: "recorded"}})
	intent := record{Key: "edit", Tool: ToolEdit, State: stateIntent, Path: "f.txt", PreHash: hashBytes([]byte("a")),
		PostHash: hashBytes([]byte("ab")), Result: Result{Output: "Edited f.txt (legacy)"}}
	write("edit", ".json", intent)
	restart(j)
	if res := journalRun(t, j, "done", opts, ToolBash, map[string]any{"command": "exit 3"}); res.Output != "recorded" {
		t.Errorf("legacy done record: %q, want the recorded result", res.Output)
	}
	if res := journalRun(t, j, "edit", opts, ToolEdit, editAB()); res.Output != intent.Result.Output {
		t.Errorf("legacy intent of a landed edit: %q, want %q", res.Output, intent.Result.Output)
	}
	if got := readTestFile(t, filepath.Join(root, "f.txt")); got != "ab" {
		t.Errorf("content %q: the legacy edit was applied again", got)
	}
	// Legacy records are not listed, so the journal cannot name them all.
	if paths, complete, err := j.ChangedPaths(t.Context()); err != nil || complete {
		t.Errorf("ChangedPaths of a journal with legacy records = %q, %v, %v; want not complete", paths, complete, err)
	}
}

func TestJournalCrashRecovery(t *testing.T) {
	tests := []struct {
		name    string
		tool    string
		args    map[string]any
		initial map[string]string
		crash   func(t *testing.T, path string, ch *change) // what happened to the file before the retry
		want    string                                      // file content after the retry
		wantErr string
	}{
		{"edit landed before crash", ToolEdit, editAB(), map[string]string{"f.txt": "a"},
			func(t *testing.T, _ string, ch *change) {
				if err := ch.apply(fileOwner{}); err != nil {
					t.Fatal(err)
				}
			}, "ab", ""},
		{"edit not applied before crash", ToolEdit, editAB(), map[string]string{"f.txt": "a"},
			func(*testing.T, string, *change) {}, "ab", ""},
		{"write of new file landed", ToolWrite, map[string]any{"path": "f.txt", "content": "new"}, nil,
			func(t *testing.T, p string, _ *change) { writeTestFile(t, p, "new") }, "new", ""},
		{"write of new file not applied", ToolWrite, map[string]any{"path": "f.txt", "content": "new"}, nil,
			func(*testing.T, string, *change) {}, "new", ""},
		{"multiedit landed", ToolMultiEdit, map[string]any{"path": "f.txt", "edits": []any{editAB(), map[string]any{"old_string": "ab", "new_string": "abc"}}},
			map[string]string{"f.txt": "a"},
			func(t *testing.T, p string, _ *change) { writeTestFile(t, p, "abc") }, "abc", ""},
		{"killed inside the write, before its rename", ToolEdit, editAB(), map[string]string{"f.txt": "a"},
			func(t *testing.T, p string, _ *change) {
				// The temp file of a write killed before its rename, as
				// writeFileAtomicAs creates it, holding half the post-image.
				f, err := newPendingFile(p, 0o644)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := f.Write([]byte("a")); err != nil {
					t.Fatal(err)
				}
				if err := f.File.Close(); err != nil {
					t.Fatal(err)
				}
			}, "ab", ""},
		{"file changed in between", ToolEdit, editAB(), map[string]string{"f.txt": "a"},
			func(t *testing.T, p string, _ *change) { writeTestFile(t, p, "someone else") }, "someone else", "changed since the interrupted attempt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := newRoot(t, tt.initial)
			j, opts := newJournal(t), Options{Root: root}
			ch := crashAfterIntent(t, j, "k", opts, tt.tool, tt.args)
			path := filepath.Join(root, "f.txt")
			tt.crash(t, path, ch)

			res := journalRun(t, j, "k", opts, tt.tool, tt.args)
			if got := readTestFile(t, path); got != tt.want {
				t.Errorf("content %q, want %q", got, tt.want)
			}
			// A temp file of the interrupted write would be committed.
			if left, _ := filepath.Glob(filepath.Join(root, ".f.txt*")); len(left) > 0 {
				t.Errorf("temp files of the interrupted write left in the worktree: %v", left)
			}
			if tt.wantErr != "" {
				mustErr(t, res, tt.wantErr, "f.txt")
				return
			}
			if !reflect.DeepEqual(res, ch.result) {
				t.Errorf("result %+v, want the recorded %+v", res, ch.result)
			}
			again := journalRun(t, j, "k", opts, tt.tool, tt.args)
			if !reflect.DeepEqual(again, res) || readTestFile(t, path) != tt.want {
				t.Errorf("second retry differs: %+v", again)
			}
		})
	}
}

func TestJournalToolErrorsAreRecorded(t *testing.T) {
	root := newRoot(t, map[string]string{"f.txt": "y"})
	j, opts := newJournal(t), Options{Root: root}
	first := journalRun(t, j, "k", opts, ToolEdit, editAB())
	mustErr(t, first, "not found")
	writeTestFile(t, filepath.Join(root, "f.txt"), "a")
	if again := journalRun(t, j, "k", opts, ToolEdit, editAB()); !reflect.DeepEqual(again, first) {
		t.Errorf("retry re-executed: %+v", again)
	}
	if got := readTestFile(t, filepath.Join(root, "f.txt")); got != "a" {
		t.Errorf("content %q", got)
	}
}

func TestJournalReadRecorded(t *testing.T) {
	root := newRoot(t, map[string]string{"f.txt": "before\n"})
	j, opts := newJournal(t), Options{Root: root}
	first := journalRun(t, j, "k", opts, ToolRead, map[string]any{"path": "f.txt"})
	writeTestFile(t, filepath.Join(root, "f.txt"), "after\n")
	if again := journalRun(t, j, "k", opts, ToolRead, map[string]any{"path": "f.txt"}); again.Output != first.Output {
		t.Errorf("retry returned %q, want the recorded %q", again.Output, first.Output)
	}
}

func TestJournalBash(t *testing.T) {
	root := t.TempDir()
	j, opts := newJournal(t), Options{Root: root, Env: testEnv()}
	args := map[string]any{"command": "echo run >> count; wc -l < count"}
	first := journalRun(t, j, "b1", opts, ToolBash, args)
	second := journalRun(t, j, "b1", opts, ToolBash, args)
	if !reflect.DeepEqual(first, second) || first.Output != "1\nexit code: 0" {
		t.Errorf("first %q second %q", first.Output, second.Output)
	}

	// An intent without completion: the command runs again, with a note.
	saveRecord(t, j, record{Key: "b2", Tool: ToolBash, State: stateIntent})
	res := journalRun(t, j, "b2", opts, ToolBash, args)
	if want := interruptedNote + "2\nexit code: 0"; res.Output != want {
		t.Errorf("output %q, want %q", res.Output, want)
	}
	if got := journalRun(t, j, "b2", opts, ToolBash, args); got.Output != res.Output {
		t.Errorf("completed interrupted run not recorded: %q", got.Output)
	}
}

func TestJournalCancelledBashNotRecorded(t *testing.T) {
	j, opts := newJournal(t), Options{Root: t.TempDir(), Env: testEnv()}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	res, err := j.Run(ctx, "k", opts, ToolBash, `{"command":"sleep 1000"}`)
	if err != nil || !res.IsError {
		t.Fatalf("res %+v err %v", res, err)
	}
	res, err = j.Run(t.Context(), "k", opts, ToolBash, `{"command":"echo again"}`)
	if err != nil || res.Output != interruptedNote+"again\nexit code: 0" {
		t.Errorf("retry after cancel: %+v %v", res, err)
	}
}

// TestJournalAttemptsDoNotOverlap: an attempt Temporal gave up on (a local
// activity of a workflow task that timed out) may still be writing its
// change when the retry of the call starts. The retry must wait for it, not
// take its temp file for a stale one and remove it: then the first
// attempt's rename fails and the journal records the edit as failed, while
// the model is told so and the file may not be changed at all.
func TestJournalAttemptsDoNotOverlap(t *testing.T) {
	root := newRoot(t, map[string]string{"f.txt": "a"})
	j, opts := newJournal(t), Options{Root: root}
	atRename, release := make(chan struct{}), make(chan struct{})
	var held atomic.Bool
	// Hold the first attempt with its temp file written, before the rename.
	beforeReplace = func(path string) {
		if filepath.Base(path) == "f.txt" && held.CompareAndSwap(false, true) {
			close(atRename)
			<-release
		}
	}
	t.Cleanup(func() { beforeReplace = nil })
	type outcome struct {
		res Result
		err error
	}
	attempt := func(out chan<- outcome) {
		res, err := j.Run(context.Background(), "k", opts, ToolEdit, jsonArgs(t, editAB()))
		out <- outcome{res, err}
	}
	first, second := make(chan outcome, 1), make(chan outcome, 1)
	go attempt(first)
	<-atRename
	go attempt(second)
	// The retry must not end while the first attempt is in the middle of
	// its change; give it a moment to show it would.
	var b outcome
	ended := false
	select {
	case b = <-second:
		ended = true
	case <-time.After(time.Second):
	}
	close(release)
	a := <-first
	if !ended {
		b = <-second
	}
	if ended {
		t.Errorf("the retry ended while the first attempt was still applying the change")
	}
	for i, o := range []outcome{a, b} {
		if o.err != nil || o.res.IsError || !strings.HasPrefix(o.res.Output, "Edited f.txt") {
			t.Errorf("attempt %d: %+v, %v; want the edit's success", i+1, o.res, o.err)
		}
	}
	if got := readTestFile(t, filepath.Join(root, "f.txt")); got != "ab" {
		t.Errorf("content %q, want the edit applied once", got)
	}
	if again := journalRun(t, j, "k", opts, ToolEdit, editAB()); again.IsError || !reflect.DeepEqual(again, a.res) {
		t.Errorf("journal holds %+v, want the edit's success %+v", again, a.res)
	}
}

// TestJournalLockWaitStops: an attempt waiting for another of its key stops
// when its context is done, having done nothing.
func TestJournalLockWaitStops(t *testing.T) {
	root := newRoot(t, map[string]string{"f.txt": "a"})
	j, opts := newJournal(t), Options{Root: root}
	held, err := j.open(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := j.Run(ctx, "k", opts, ToolEdit, jsonArgs(t, editAB())); err == nil || !strings.Contains(err.Error(), "earlier attempt") {
		t.Errorf("Run while another attempt holds the key: %v, want it to stop waiting", err)
	}
	if got := readTestFile(t, filepath.Join(root, "f.txt")); got != "a" {
		t.Errorf("content %q: the waiting attempt changed the file", got)
	}
	held.close()
	if res := journalRun(t, j, "k", opts, ToolEdit, editAB()); res.IsError {
		t.Errorf("Run after the other attempt ended: %+v", res)
	}
}

func TestJournalFailures(t *testing.T) {
	j, opts := newJournal(t), Options{Root: newRoot(t, map[string]string{"f.txt": "a"})}
	if _, err := j.Run(t.Context(), "", opts, ToolRead, `{"path":"f.txt"}`); err == nil {
		t.Error("empty key accepted")
	}
	journalRun(t, j, "k", opts, ToolRead, map[string]any{"path": "f.txt"})
	if _, err := j.Run(t.Context(), "k", opts, ToolRead, `{"path":"f.txt"}`); err != nil {
		t.Errorf("replay: %v", err)
	}
	saveRecord(t, j, record{Key: "w", Tool: ToolWrite, State: stateIntent})
	if _, err := j.Run(t.Context(), "w", opts, ToolEdit, `{}`); err == nil || !strings.Contains(err.Error(), `recorded for tool "write"`) {
		t.Errorf("tool mismatch: %v", err)
	}
	// A whole line that is not a record is damage, not a torn append: it
	// is reported and left alone, and nothing runs.
	f, err := os.OpenFile(filepath.Join(j.dir, logName), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("{not json\n"); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	restart(j)
	if _, err := j.Run(t.Context(), "bad", opts, ToolBash, `{"command":"touch ran"}`); err == nil || !strings.Contains(err.Error(), "decode journal record") {
		t.Errorf("damaged log: %v", err)
	}
	if _, err := os.Stat(filepath.Join(opts.Root, "ran")); err == nil {
		t.Error("a call ran on a damaged journal")
	}
	blocker := filepath.Join(t.TempDir(), "file")
	writeTestFile(t, blocker, "")
	if _, err := OpenJournal(filepath.Join(blocker, "sub")); err == nil {
		t.Error("OpenJournal under a file succeeded")
	}
}

// Only writeFileAtomicAs's own temp files count as leftovers of a killed
// write; a user's dot-files next to the target never do.
func TestIsTempOf(t *testing.T) {
	for name, want := range map[string]bool{
		".f.txt4242": true, ".f.txt0": true, ".f.txt": false, ".f.txt.orig": false,
		".f.txt12a": false, "f.txt4242": false, ".g.txt4242": false,
	} {
		if got := isTempOf(name, "/w/f.txt"); got != want {
			t.Errorf("isTempOf(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestJournalChangedPaths(t *testing.T) {
	root := newRoot(t, map[string]string{"f.txt": "a", "dir/g.txt": "g", "real/h.txt": "h"})
	if err := os.Symlink("real", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	j, opts := newJournal(t), Options{Root: root, Env: testEnv()}
	changed := func() ([]string, bool) {
		t.Helper()
		restart(j) // read from the log, as another worker process would
		paths, complete, err := j.ChangedPaths(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return paths, complete
	}
	// No log yet: its absence proves nothing.
	if paths, complete := changed(); complete || paths != nil {
		t.Fatalf("ChangedPaths of a journal without a log = %q, %v; want not complete", paths, complete)
	}
	journalRun(t, j, "t1", opts, ToolEdit, editAB())
	journalRun(t, j, "t2", opts, ToolWrite, map[string]any{"path": "new/n.txt", "content": "n"})
	journalRun(t, j, "t3", opts, ToolMultiEdit, map[string]any{"path": "dir/g.txt", "edits": []map[string]any{{"old_string": "g", "new_string": "G"}}})
	journalRun(t, j, "t4", opts, ToolEdit, editAB())                                                    // f.txt once more
	journalRun(t, j, "t5", opts, ToolWrite, map[string]any{"path": "link/h.txt", "content": "through"}) // recorded as the real file
	journalRun(t, j, "t6", opts, ToolWrite, map[string]any{"path": ".git/config", "content": "x"})      // refused: no path
	journalRun(t, j, "t7", opts, ToolRead, map[string]any{"path": "f.txt"})
	// An intent whose change never landed (a crash) still names its file.
	crashAfterIntent(t, j, "t8", opts, ToolEdit, map[string]any{"path": "real/h.txt", "old_string": "through", "new_string": "again"})
	want := []string{"f.txt", "new/n.txt", "dir/g.txt", "real/h.txt"}
	if paths, complete := changed(); !complete || !reflect.DeepEqual(paths, want) {
		t.Fatalf("ChangedPaths = %q, %v; want %q, complete", paths, complete, want)
	}
	// A bash call may have changed anything.
	journalRun(t, j, "t9", opts, ToolBash, map[string]any{"command": "true"})
	if paths, complete := changed(); complete || paths != nil {
		t.Fatalf("ChangedPaths after a bash call = %q, %v; want not complete", paths, complete)
	}
}
