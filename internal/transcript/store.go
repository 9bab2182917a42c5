// Package transcript keeps sub-agent conversations on disk so that they never
// travel through Temporal history. A conversation is an append-only JSON-lines
// file of keyed records; appending a key that is already present is a no-op,
// which makes every writer idempotent under activity retries.
package transcript

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	openai "github.com/sashabaranov/go-openai"
)

// Record is one keyed entry of a conversation.
type Record struct {
	Key              string                       `json:"key"`
	Message          openai.ChatCompletionMessage `json:"message"`
	PromptTokens     int                          `json:"prompt_tokens,omitempty"`
	CompletionTokens int                          `json:"completion_tokens,omitempty"`
	// CachedPromptTokens are the prompt tokens the provider served from its
	// prompt cache.
	CachedPromptTokens int `json:"cached_prompt_tokens,omitempty"`
	// FinishReason is the model's, for an answer ("length": cut off).
	FinishReason string `json:"finish_reason,omitempty"`
	// UsageEstimated: the server sent no usage; the tokens above are
	// estimated from characters.
	UsageEstimated bool `json:"usage_estimated,omitempty"`
}

// Ref names a conversation.
type Ref struct {
	RunID     string
	SubtaskID string
	Attempt   int
}

var safeComponent = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// Store is a directory of conversations. It caches each conversation it has
// read or written (see cache.go), so a step neither re-reads nor re-parses
// the whole file; appends to different conversations do not wait for each
// other.
type Store struct {
	root  string
	cache *cache
}

// New returns a store rooted at dir (created on first write).
func New(dir string) *Store { return &Store{root: dir, cache: newCache(defaultCacheSize)} }

// Dir returns the directory of a run's conversations.
func (s *Store) Dir(runID string) string { return filepath.Join(s.root, runID, "transcripts") }

// safeName reports whether s can be used as one path component: "." and
// ".." match the character class but would leave the store's directory.
func safeName(s string) bool {
	return safeComponent.MatchString(s) && s != "." && s != ".."
}

func (s *Store) file(ref Ref) (string, error) {
	if !safeName(ref.RunID) || !safeName(ref.SubtaskID) {
		return "", fmt.Errorf("transcript: unsafe conversation name %q/%q", ref.RunID, ref.SubtaskID)
	}
	return filepath.Join(s.Dir(ref.RunID), ref.SubtaskID+"-a"+strconv.Itoa(ref.Attempt)+".jsonl"), nil
}

// Load returns the records of a conversation in append order, first write of a
// key winning. A torn last line (crash mid-write) is ignored. The result is
// the caller's: changing it does not change the store.
func (s *Store) Load(ref Ref) ([]Record, error) {
	path, err := s.file(ref)
	if err != nil {
		return nil, err
	}
	c := s.cache.acquire(path)
	defer s.cache.release(c)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.refresh(false); err != nil {
		return nil, err
	}
	if len(c.recs) == 0 {
		return nil, nil
	}
	return append([]Record(nil), c.recs...), nil
}

// parse decodes the complete lines of data. A line is committed by its
// newline: an unterminated last line is ignored even if it happens to be
// valid JSON, because Append drops it before writing, and Load must not
// report a record that the next Append would remove.
func parse(data []byte) []Record {
	data = data[:bytes.LastIndexByte(data, '\n')+1]
	var out []Record
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for sc.Scan() {
		var r Record
		if json.Unmarshal(sc.Bytes(), &r) != nil || r.Key == "" || seen[r.Key] {
			continue
		}
		seen[r.Key] = true
		out = append(out, r)
	}
	return out
}

// Find returns the record with key, if present.
func Find(recs []Record, key string) (Record, bool) {
	for _, r := range recs {
		if r.Key == key {
			return r, true
		}
	}
	return Record{}, false
}

// Messages returns the conversation's messages in order.
func Messages(recs []Record) []openai.ChatCompletionMessage {
	out := make([]openai.ChatCompletionMessage, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.Message)
	}
	return out
}

// Append writes records whose keys are not yet present, in order, and syncs.
// It reads the file only when the cached copy is stale (another process wrote
// to it, or it was never read by this process).
func (s *Store) Append(ref Ref, recs ...Record) error {
	path, err := s.file(ref)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create transcript dir: %w", err)
	}
	c := s.cache.acquire(path)
	defer s.cache.release(c)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.refresh(true); err != nil {
		return err
	}
	var buf bytes.Buffer
	var added []Record
	pending := map[string]bool{}
	for _, r := range recs {
		if c.has(r.Key) || pending[r.Key] {
			continue
		}
		line, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encode transcript record %q: %w", r.Key, err)
		}
		buf.Write(line)
		buf.WriteByte('\n')
		pending[r.Key] = true
		added = append(added, r)
	}
	if buf.Len() == 0 {
		return nil
	}
	fi, err := appendSync(path, buf.Bytes())
	if err != nil {
		// What reached the file is unknown: read it again next time.
		c.invalidate()
		return err
	}
	c.appended(added, fi, int64(buf.Len()))
	return nil
}

// appendSync appends b to path, syncs, and returns the file's state after the
// write so the cache can recognise its own write.
func appendSync(path string, b []byte) (os.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open transcript: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("append transcript: %w", err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("sync transcript: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("stat transcript: %w", err)
	}
	return fi, f.Close()
}

// PutBlob stores a large payload (e.g. a raw tool output awaiting a summary)
// under key, atomically.
func (s *Store) PutBlob(ref Ref, key string, data []byte) error {
	path, err := s.blobPath(ref, key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create blob dir: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write blob: %w", err)
	}
	return os.Rename(tmp, path)
}

// GetBlob reads a payload stored by PutBlob.
func (s *Store) GetBlob(ref Ref, key string) ([]byte, error) {
	path, err := s.blobPath(ref, key)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(path)
}

func (s *Store) blobPath(ref Ref, key string) (string, error) {
	base, err := s.file(ref)
	if err != nil {
		return "", err
	}
	if !safeName(key) {
		return "", fmt.Errorf("transcript: unsafe blob key %q", key)
	}
	return filepath.Join(base[:len(base)-len(".jsonl")]+".blobs", key), nil
}
