package transcript

import (
	"fmt"
	"os"
	"reflect"
	"testing"
	"time"
)

// Appending and loading a conversation this process writes reads the file
// once at most, however long the conversation gets: a step costs the same
// at turn 500 as at turn 5.
func TestCachedConversationIsNotReread(t *testing.T) {
	s := New(t.TempDir())
	for i := range 500 {
		mustAppend(t, s, testRef, rec(fmt.Sprintf("t%04d", i), "x"))
		if got := len(mustLoad(t, s, testRef)); got != i+1 {
			t.Fatalf("after %d appends Load has %d records", i+1, got)
		}
	}
	if n := s.cache.reads.Load(); n > 1 {
		t.Errorf("the file was read %d times for 500 appends and loads, want at most once", n)
	}
}

// Another process (another Store on the same directory) appends: the file's
// size changes, so this store reads it again and sees the new records, and
// keeps the first-write-wins rule across both writers.
func TestCacheReloadsAfterAnotherWriter(t *testing.T) {
	dir := t.TempDir()
	a, b := New(dir), New(dir)
	mustAppend(t, a, testRef, rec("t0000-user", "hi"))
	if got := keys(mustLoad(t, a, testRef)); !reflect.DeepEqual(got, []string{"t0000-user"}) {
		t.Fatalf("keys = %v", got)
	}
	mustAppend(t, b, testRef, rec("t0001-assistant", "from b"))
	if got := keys(mustLoad(t, a, testRef)); !reflect.DeepEqual(got, []string{"t0000-user", "t0001-assistant"}) {
		t.Fatalf("a does not see b's append: keys = %v", got)
	}
	// a's key set must include b's record: appending the same key is a no-op.
	mustAppend(t, a, testRef, rec("t0001-assistant", "from a"), rec("t0002-user", "next"))
	got := mustLoad(t, b, testRef)
	if want := []string{"t0000-user", "t0001-assistant", "t0002-user"}; !reflect.DeepEqual(keys(got), want) {
		t.Fatalf("keys = %v, want %v", keys(got), want)
	}
	if c := got[1].Message.Content; c != "from b" {
		t.Errorf("t0001 = %q, want the first write (from b)", c)
	}
	data, err := os.ReadFile(transcriptPath(t, a, testRef))
	if err != nil {
		t.Fatal(err)
	}
	if lines := len(splitLines(data)); lines != 3 {
		t.Errorf("file has %d lines, want 3 (the duplicate key not written)", lines)
	}
}

// A file replaced by one of the same size (another inode, e.g. restored
// from a backup) is read again.
func TestCacheReloadsReplacedFile(t *testing.T) {
	s := New(t.TempDir())
	mustAppend(t, s, testRef, rec("aaaa", "1"))
	path := transcriptPath(t, s, testRef)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	mustLoad(t, s, testRef)
	other := New(t.TempDir())
	mustAppend(t, other, testRef, rec("bbbb", "2"))
	otherData, err := os.ReadFile(transcriptPath(t, other, testRef))
	if err != nil {
		t.Fatal(err)
	}
	if len(otherData) != len(data) {
		t.Fatalf("test setup: sizes differ (%d vs %d)", len(otherData), len(data))
	}
	tmp := path + ".new"
	if err := os.WriteFile(tmp, otherData, 0o644); err != nil {
		t.Fatal(err)
	}
	// Same size and even the same mtime: only the inode tells them apart.
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	if got := keys(mustLoad(t, s, testRef)); !reflect.DeepEqual(got, []string{"bbbb"}) {
		t.Fatalf("keys after the file was replaced = %v, want [bbbb]", got)
	}
}

// A conversation whose lock is held does not hold up appends to another
// conversation.
func TestConversationsDoNotShareALock(t *testing.T) {
	s := New(t.TempDir())
	other := Ref{RunID: testRef.RunID, SubtaskID: "02-other", Attempt: 1}
	mustAppend(t, s, other, rec("k", "v"))
	path := transcriptPath(t, s, other)
	cv := s.cache.acquire(path)
	cv.mu.Lock()
	done := make(chan error, 1)
	go func() { done <- s.Append(testRef, rec("t0000-user", "hi")) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Append to one conversation waited for another conversation's lock")
	}
	cv.mu.Unlock()
	s.cache.release(cv)
}

// Beyond its bound the cache drops idle conversations; they are read
// again, correctly, on their next use.
func TestCacheEvictsIdleConversations(t *testing.T) {
	s := &Store{root: t.TempDir(), cache: newCache(8)}
	refs := make([]Ref, 40)
	for i := range refs {
		refs[i] = Ref{RunID: "run-1", SubtaskID: fmt.Sprintf("s%02d", i), Attempt: 1}
		mustAppend(t, s, refs[i], rec("k", refs[i].SubtaskID))
	}
	if n := len(s.cache.convs); n > 8 {
		t.Errorf("cache holds %d conversations, bound is 8", n)
	}
	for _, r := range refs {
		got := mustLoad(t, s, r)
		if len(got) != 1 || got[0].Message.Content != r.SubtaskID {
			t.Fatalf("%s after eviction = %+v", r.SubtaskID, got)
		}
	}
}

// Changing what Load returned does not change the store.
func TestLoadReturnsACopy(t *testing.T) {
	s := New(t.TempDir())
	mustAppend(t, s, testRef, rec("a", "1"))
	got := mustLoad(t, s, testRef)
	got[0].Message.Content = "changed"
	if again := mustLoad(t, s, testRef); again[0].Message.Content != "1" {
		t.Errorf("Load after changing its result = %q, want 1", again[0].Message.Content)
	}
}

func splitLines(b []byte) []string {
	var out []string
	start := 0
	for i, c := range b {
		if c == '\n' {
			out = append(out, string(b[start:i]))
			start = i + 1
		}
	}
	return out
}
