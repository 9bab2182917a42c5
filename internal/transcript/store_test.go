package transcript

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	openai "github.com/sashabaranov/go-openai"
)

var testRef = Ref{RunID: "run-1", SubtaskID: "01-api", Attempt: 1}

func rec(key, content string) Record {
	return Record{Key: key, Message: openai.ChatCompletionMessage{Role: openai.ChatMessageRoleUser, Content: content}}
}

func keys(recs []Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Key
	}
	return out
}

func mustLoad(t *testing.T, s *Store, ref Ref) []Record {
	t.Helper()
	recs, err := s.Load(ref)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return recs
}

func mustAppend(t *testing.T, s *Store, ref Ref, recs ...Record) {
	t.Helper()
	if err := s.Append(ref, recs...); err != nil {
		t.Fatalf("Append: %v", err)
	}
}

func transcriptPath(t *testing.T, s *Store, ref Ref) string {
	t.Helper()
	p, err := s.file(ref)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadMissingConversation(t *testing.T) {
	recs, err := New(t.TempDir()).Load(testRef)
	if err != nil || len(recs) != 0 {
		t.Fatalf("Load of a missing conversation = %v, %v; want empty, nil", recs, err)
	}
}

func TestAppendIsIdempotentByKey(t *testing.T) {
	s := New(t.TempDir())
	mustAppend(t, s, testRef, rec("k1", "first"))
	mustAppend(t, s, testRef, rec("k1", "second"))                      // retry with another answer
	mustAppend(t, s, testRef, rec("k2", "two"), rec("k2", "two again")) // duplicate within one call
	got := mustLoad(t, s, testRef)
	if want := []string{"k1", "k2"}; !reflect.DeepEqual(keys(got), want) {
		t.Fatalf("keys = %v, want %v", keys(got), want)
	}
	if got[0].Message.Content != "first" || got[1].Message.Content != "two" {
		t.Errorf("contents = %q, %q; want the first write of each key to win", got[0].Message.Content, got[1].Message.Content)
	}
	data, err := os.ReadFile(transcriptPath(t, s, testRef))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(data, []byte("\n")); n != 2 {
		t.Errorf("file has %d lines, want 2 (duplicates must not be written):\n%s", n, data)
	}
}

func TestAppendPreservesOrderAndFields(t *testing.T) {
	s := New(t.TempDir())
	a := Record{Key: "t0001-assistant", PromptTokens: 120, CompletionTokens: 7, Message: openai.ChatCompletionMessage{
		Role: openai.ChatMessageRoleAssistant,
		ToolCalls: []openai.ToolCall{{ID: "call_1_0", Type: openai.ToolTypeFunction,
			Function: openai.FunctionCall{Name: "read", Arguments: `{"path":"a.go"}`}}},
	}}
	mustAppend(t, s, testRef, rec("z-first", "1"), rec("a-second", "2"))
	mustAppend(t, s, testRef, a, rec("m-fourth", "4"))
	got := mustLoad(t, s, testRef)
	if want := []string{"z-first", "a-second", "t0001-assistant", "m-fourth"}; !reflect.DeepEqual(keys(got), want) {
		t.Fatalf("keys = %v, want append order %v", keys(got), want)
	}
	if !reflect.DeepEqual(got[2], a) {
		t.Errorf("record round trip = %+v, want %+v", got[2], a)
	}
	msgs := Messages(got)
	if len(msgs) != 4 || msgs[2].ToolCalls[0].Function.Arguments != `{"path":"a.go"}` {
		t.Errorf("Messages = %+v", msgs)
	}
	if r, ok := Find(got, "a-second"); !ok || r.Message.Content != "2" {
		t.Errorf("Find(a-second) = %+v, %v", r, ok)
	}
	if _, ok := Find(got, "nope"); ok {
		t.Error("Find(nope) found a record")
	}
}

func TestConversationsAreSeparate(t *testing.T) {
	s := New(t.TempDir())
	other := Ref{RunID: testRef.RunID, SubtaskID: testRef.SubtaskID, Attempt: 2}
	mustAppend(t, s, testRef, rec("k", "attempt 1"))
	mustAppend(t, s, other, rec("k", "attempt 2"))
	if got := mustLoad(t, s, other); len(got) != 1 || got[0].Message.Content != "attempt 2" {
		t.Errorf("attempt 2 = %+v, want its own record", got)
	}
}

// tear appends raw bytes with no newline, as a crash in the middle of a
// write leaves them.
func tear(t *testing.T, path, raw string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(raw); err != nil {
		t.Fatal(err)
	}
}

func TestTornLastLine(t *testing.T) {
	complete, _ := json.Marshal(rec("t0002-assistant", "complete but unterminated"))
	tests := []struct {
		name string
		torn string
	}{
		{"garbage", `{"key":"t0002-assistant","message":{"role":"assis`},
		// A crash between the record and its newline: the newline is the
		// commit marker, so Load and Append must agree on ignoring it.
		{"complete JSON without newline", string(complete)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(t.TempDir())
			mustAppend(t, s, testRef, rec("t0000-user", "hi"), rec("t0001-assistant", "hello"))
			path := transcriptPath(t, s, testRef)
			tear(t, path, tt.torn)

			if got := keys(mustLoad(t, s, testRef)); !reflect.DeepEqual(got, []string{"t0000-user", "t0001-assistant"}) {
				t.Fatalf("Load with a torn line = %v, want only the complete records", got)
			}
			mustAppend(t, s, testRef, rec("t0002-assistant", "retried"))
			got := mustLoad(t, s, testRef)
			if want := []string{"t0000-user", "t0001-assistant", "t0002-assistant"}; !reflect.DeepEqual(keys(got), want) {
				t.Fatalf("keys after repair = %v, want %v", keys(got), want)
			}
			if c := got[2].Message.Content; c != "retried" {
				t.Errorf("t0002 content = %q, want the retried write", c)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for i, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
				if !json.Valid([]byte(line)) {
					t.Errorf("line %d after repair is not JSON: %q", i+1, line)
				}
			}
			if !bytes.HasSuffix(data, []byte("\n")) {
				t.Error("file does not end with a newline after repair")
			}
		})
	}
}

func TestConcurrentAppends(t *testing.T) {
	s := New(t.TempDir())
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := string(rune('a' + i))
			if err := s.Append(testRef, rec(key, key), rec("shared", key)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got := mustLoad(t, s, testRef)
	if len(got) != 21 {
		t.Errorf("%d records, want 20 distinct keys + 1 shared", len(got))
	}
}

func TestBlobs(t *testing.T) {
	s := New(t.TempDir())
	payload := bytes.Repeat([]byte("line of output\n"), 10_000)
	if err := s.PutBlob(testRef, "t0003-tool-01", payload); err != nil {
		t.Fatalf("PutBlob: %v", err)
	}
	got, err := s.GetBlob(testRef, "t0003-tool-01")
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("GetBlob = %d bytes, %v; want the %d bytes stored", len(got), err, len(payload))
	}
	if err := s.PutBlob(testRef, "t0003-tool-01", []byte("replaced")); err != nil {
		t.Fatalf("PutBlob overwrite: %v", err)
	}
	if got, _ := s.GetBlob(testRef, "t0003-tool-01"); string(got) != "replaced" {
		t.Errorf("GetBlob after overwrite = %q", got)
	}
	if _, err := s.GetBlob(testRef, "t0009-tool-00"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("GetBlob of a missing key = %v, want ErrNotExist", err)
	}
	// Blobs are not records: the conversation stays empty.
	if recs := mustLoad(t, s, testRef); len(recs) != 0 {
		t.Errorf("blob showed up as records: %v", keys(recs))
	}
}

func TestUnsafeNamesRejected(t *testing.T) {
	root := t.TempDir()
	s := New(filepath.Join(root, "store"))
	refs := []Ref{
		{RunID: "../escape", SubtaskID: "x"},
		{RunID: "run", SubtaskID: "a/b"},
		{RunID: "", SubtaskID: "x"},
		{RunID: "run", SubtaskID: ""},
		{RunID: "..", SubtaskID: "x"},
		{RunID: ".", SubtaskID: "x"},
		{RunID: "run id", SubtaskID: "x"},
	}
	for _, ref := range refs {
		if err := s.Append(ref, rec("k", "v")); err == nil {
			t.Errorf("Append(%+v) succeeded, want an unsafe-name error", ref)
		}
		if _, err := s.Load(ref); err == nil {
			t.Errorf("Load(%+v) succeeded, want an unsafe-name error", ref)
		}
		if err := s.PutBlob(ref, "k", []byte("v")); err == nil {
			t.Errorf("PutBlob(%+v) succeeded, want an unsafe-name error", ref)
		}
	}
	for _, key := range []string{"../k", "a/b", "", "..", "."} {
		if err := s.PutBlob(testRef, key, []byte("v")); err == nil {
			t.Errorf("PutBlob(key %q) succeeded, want an unsafe-key error", key)
		}
		if _, err := s.GetBlob(testRef, key); err == nil {
			t.Errorf("GetBlob(key %q) succeeded, want an unsafe-key error", key)
		}
	}
	// Nothing may have been written outside the store's root.
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "store" {
			t.Errorf("unexpected %q written next to the store", e.Name())
		}
	}
}

func TestDir(t *testing.T) {
	s := New("/data")
	if got := s.Dir("run-1"); got != filepath.Join("/data", "run-1", "transcripts") {
		t.Errorf("Dir = %q", got)
	}
}
