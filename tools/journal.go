package tools

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Journal makes tool calls idempotent under activity retry. It keeps the
// records of a sub-agent attempt's calls in one append-only file outside
// the worktree (logName), one JSON line per record; a key's latest line is
// its record. A Journal is safe for concurrent use, also by attempts of one
// key: Temporal starts one attempt at a time, but an attempt it has given
// up on may still be running when the next starts (a local activity whose
// workflow task timed out, an activity past its timeout), so Run holds an
// flock on the log for the whole call (open).
//
// One file appended to, not a file per record: each new file cost an inode
// allocation, which after many deletes is most of a record's CPU (B2's
// profile: three new files per edit, with the worktree's own temp file).
// An intent is made durable by an fsync of the log before its change is
// applied; a line torn by a power loss can only be the last one, and is
// cut off before the next append.
type Journal struct {
	dir string
	// Scrub, if set, rewrites every result's output before it is recorded
	// (and returned), so a secret a command printed never reaches the disk.
	Scrub func(string) string
}

// Record states.
const (
	stateIntent = "intent" // about to apply a change or start bash
	stateDone   = "done"   // Result is final
)

// record is the journal entry of one tool call.
type record struct {
	Key      string `json:"key"`
	Tool     string `json:"tool"`
	State    string `json:"state"`
	Path     string `json:"path,omitempty"`      // worktree-relative file of a change
	PreHash  string `json:"pre_hash,omitempty"`  // sha256 before the change, or "absent"
	PostHash string `json:"post_hash,omitempty"` // sha256 after the change
	Result   Result `json:"result"`
}

// interruptedNote prefixes a bash result re-run after an interrupted attempt.
const interruptedNote = "note: a previous attempt of this command was interrupted before it finished (it may have partly run); this is the output of a new run\n"

// OpenJournal opens (creating if needed) a journal stored in dir, which
// must live outside the worktree so the model cannot touch it.
func OpenJournal(dir string) (*Journal, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open journal %s: %w", dir, err)
	}
	return &Journal{dir: dir}, nil
}

// Run executes the tool call identified by key at most once: a completed
// record is returned as is. For write/edit/multiedit it records the pre-
// and post-image hashes before applying, so a retry after a crash can tell
// whether the change already landed. An interrupted bash command is run
// again with a note. A bash call cancelled through ctx is not recorded as
// completed, so a retry runs it. The Go error reports journal I/O failures
// only; tool failures are IsError Results.
func (j *Journal) Run(ctx context.Context, key string, opts Options, name, arguments string) (Result, error) {
	if key == "" {
		return Result{}, errors.New("journal run: empty key")
	}
	l, err := j.open(ctx, key)
	if err != nil {
		return Result{}, err
	}
	defer l.close()
	rec, found, err := l.load(key)
	if err != nil {
		return Result{}, err
	}
	if found && rec.State == stateDone {
		return rec.Result, nil
	}
	if found && rec.Tool != name {
		return Result{}, fmt.Errorf("journal run: key %q was recorded for tool %q, not %q", key, rec.Tool, name)
	}
	tb, res, ok := newToolbox(opts)
	if !ok {
		return res, nil // not recorded: the worktree may be back on retry
	}
	switch name {
	case ToolWrite, ToolEdit, ToolMultiEdit:
		if found {
			return j.resumeChange(ctx, l, tb, rec, arguments)
		}
		return j.change(ctx, l, tb, key, name, arguments)
	case ToolBash:
		return j.bash(ctx, l, tb, key, found, arguments)
	default:
		return j.complete(l, record{Key: key, Tool: name}, tb.run(ctx, name, arguments), true)
	}
}

// ChangedPaths returns the worktree-relative paths of every file the
// journal's calls changed or were about to change (a recorded intent may
// have landed), each once, in the order first recorded. complete says the
// list is the whole of what the calls changed in the worktree: the journal
// exists and holds no bash call (a command may change anything) and no
// record of the layout before the log (not listed). A journal that does
// not exist answers complete=false: its absence proves nothing. Every
// other tool a journal records (read-only ones, names no tool has) changes
// nothing. The log is read under its lock, so no call of the journal is
// half recorded meanwhile.
func (j *Journal) ChangedPaths(ctx context.Context) (paths []string, complete bool, err error) {
	if _, err := os.Stat(filepath.Join(j.dir, logName)); errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	l, err := j.open(ctx, "changed paths")
	if err != nil {
		return nil, false, err
	}
	defer l.close()
	if l.idx.legacy {
		return nil, false, nil
	}
	// Every line, not only each key's latest: a key's intent and its
	// completion name the same path, and a path is listed once.
	buf := make([]byte, l.idx.end)
	if _, err := l.f.ReadAt(buf, 0); err != nil {
		return nil, false, fmt.Errorf("read journal %s: %w", l.path, err)
	}
	_, buf, _ = bytes.Cut(buf, []byte{'\n'}) // the log's header
	seen := map[string]bool{}
	for len(buf) > 0 {
		line, rest, _ := bytes.Cut(buf, []byte{'\n'})
		buf = rest
		var rec record
		if err := json.Unmarshal(line, &rec); err != nil {
			return nil, false, fmt.Errorf("decode journal record %s: %w; the file is damaged", l.path, err)
		}
		switch rec.Tool {
		case ToolBash:
			return nil, false, nil
		case ToolWrite, ToolEdit, ToolMultiEdit:
			if rec.Path != "" && !seen[rec.Path] {
				seen[rec.Path] = true
				paths = append(paths, rec.Path)
			}
		}
	}
	return paths, true, nil
}

// change plans, records the intent, applies and completes a mutation.
func (j *Journal) change(ctx context.Context, l *callLog, tb *toolbox, key, name, arguments string) (Result, error) {
	rec := record{Key: key, Tool: name}
	ch, res := tb.plan(ctx, name, arguments)
	if ctx.Err() != nil {
		return res, nil // not recorded: the attempt was stopped, a retry plans again
	}
	if ch == nil {
		return j.finishChange(l, rec, res)
	}
	rec.State, rec.Path, rec.Result = stateIntent, ch.rel, ch.result
	rec.PreHash, rec.PostHash = ch.preHash(), hashBytes(ch.post)
	if err := l.append(rec, true); err != nil {
		return Result{}, err
	}
	if err := ch.apply(tb.opts.Sandbox.fileOwner()); err != nil {
		return j.finishChange(l, rec, errorf("%s %s: %v", name, ch.rel, err))
	}
	return j.finishChange(l, rec, ch.result)
}

// resumeChange completes a mutation whose intent was recorded but whose
// completion was not, without ever applying it twice.
func (j *Journal) resumeChange(ctx context.Context, l *callLog, tb *toolbox, rec record, arguments string) (Result, error) {
	tg, err := tb.box.resolveWritable(rec.Path)
	if err != nil {
		return j.finishChange(l, rec, errorf("%s: %v", rec.Tool, err))
	}
	if err := removeStaleTemps(tg.abs); err != nil {
		return Result{}, err
	}
	cur, err := hashFile(ctx, tg.abs)
	if err != nil && ctx.Err() != nil {
		return errorf("%s %s: %v", rec.Tool, rec.Path, err), nil // not recorded: a retry looks again
	}
	if err != nil {
		return j.finishChange(l, rec, errorf("%s %s: %v", rec.Tool, rec.Path, err))
	}
	switch cur {
	case rec.PostHash: // the change landed before the crash
		return j.finishChange(l, rec, rec.Result)
	case rec.PreHash: // the crash came before the change
		ch, res := tb.plan(ctx, rec.Tool, arguments)
		if ctx.Err() != nil {
			return res, nil
		}
		if ch == nil {
			return j.finishChange(l, rec, res)
		}
		if ch.preHash() != rec.PreHash || hashBytes(ch.post) != rec.PostHash {
			return j.finishChange(l, rec, errorf("%s %s: the retried call no longer produces the recorded change; read the file and redo the change", rec.Tool, rec.Path))
		}
		if err := ch.apply(tb.opts.Sandbox.fileOwner()); err != nil {
			return j.finishChange(l, rec, errorf("%s %s: %v", rec.Tool, rec.Path, err))
		}
		return j.finishChange(l, rec, rec.Result)
	default:
		return j.finishChange(l, rec, errorf("%s: %s changed since the interrupted attempt of this call (it matches neither the content before nor after the change); read it again and redo the change if still needed", rec.Tool, rec.Path))
	}
}

// bash records an intent, runs the command and records the result unless
// the run was cancelled.
func (j *Journal) bash(ctx context.Context, l *callLog, tb *toolbox, key string, interrupted bool, arguments string) (Result, error) {
	rec := record{Key: key, Tool: ToolBash, State: stateIntent}
	if !interrupted {
		if err := l.append(rec, true); err != nil {
			return Result{}, err
		}
	}
	res := tb.bash(ctx, arguments)
	if interrupted {
		res.Output = interruptedNote + res.Output
	}
	if ctx.Err() != nil {
		return res, nil
	}
	return j.complete(l, rec, res, true)
}

// finishChange completes a mutation. Its completion is not fsynced: it
// needs no durability. If it is lost or torn, load falls back to the
// durable intent and resumeChange returns the same result (the file
// matches the post-image: nothing else writes the worktree between the
// change and its activity's end). That saves an fsync per write/edit.
func (j *Journal) finishChange(l *callLog, rec record, res Result) (Result, error) {
	return j.complete(l, rec, res, false)
}

// complete records res as the final result of rec's key, fsynced if sync.
func (j *Journal) complete(l *callLog, rec record, res Result, sync bool) (Result, error) {
	if j.Scrub != nil {
		res.Output = j.Scrub(res.Output)
	}
	rec.State, rec.Result = stateDone, res
	if err := l.append(rec, sync); err != nil {
		return Result{}, err
	}
	return res, nil
}

func (c *change) preHash() string {
	if !c.exists {
		return absentHash
	}
	return hashBytes(c.pre)
}

// logName is a journal's file of records, and its lock.
const logName = "calls.log"

// callLog is a journal's log, opened and locked for one call.
type callLog struct {
	path string
	f    *os.File
	idx  *logIndex
}

// open waits until no other attempt of key runs, in this process or in
// another one on this host, and returns the journal's log, locked and
// read up to its end; close lets the next one in. Without the lock, a
// retry that starts while an abandoned attempt is still writing the file
// removes that attempt's temp file as stale (resumeChange): the abandoned
// attempt's rename then fails and it records its edit as failed, and an
// edit may end up applied by neither. The lock is an flock on the log,
// which the kernel releases when the holder dies. One lock for all keys:
// a journal is one sub-agent attempt's, whose calls run one at a time,
// each only once every attempt of the one before has ended, so only
// attempts of the same call ever wait for each other. Waiting stops when
// ctx is done, with ctx's error.
func (j *Journal) open(ctx context.Context, key string) (*callLog, error) {
	path := filepath.Join(j.dir, logName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0)
	if errors.Is(err, os.ErrNotExist) {
		if f, err = os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600); err == nil {
			// The log's name must outlive a power loss like its records.
			err = syncDir(j.dir)
		}
	}
	if err != nil {
		if f != nil {
			_ = f.Close()
		}
		return nil, fmt.Errorf("open journal %s for %q: %w", path, key, err)
	}
	wait := time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			_ = f.Close()
			return nil, fmt.Errorf("lock journal %s for %q: %w", path, key, err)
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			_ = f.Close()
			return nil, fmt.Errorf("journal run %q: waiting for an earlier attempt of the call to end: %w", key, ctx.Err())
		case <-timer.C:
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
	l := &callLog{path: path, f: f}
	if err := l.catchUp(); err != nil {
		_ = f.Close()
		return nil, err
	}
	return l, nil
}

// close releases the lock (closing the file does) and keeps what this
// process knows of the log for the journal's next call.
func (l *callLog) close() {
	if l.idx != nil {
		logIndexes.put(l.path, l.idx)
	}
	_ = l.f.Close()
}

// logIndex is what a process knows of a log: where each key's latest
// record starts and ends, up to end. It is only used by the holder of the
// log's lock. The log's first line names it (a random id written when the
// file is made), so an index is never applied to another file that took
// the path (a run's state removed and made again, an inode reused); within
// one log, a size past end means another process appended since, and only
// that part is read.
type logIndex struct {
	id  string
	end int64
	at  map[string][2]int64 // key → [offset, length] of its latest line
	// legacy: the directory holds records of a version before the log, a
	// file per key (legacyLoad).
	legacy bool
}

// logIndexes keeps the indexes of the logs this process used last, so that
// a call reads only what was appended since, not the whole log.
var logIndexes = indexCache{m: map[string]*logIndex{}}

// maxLogIndexes bounds logIndexes: one per sub-agent attempt running on
// this host is enough; an evicted one is rebuilt by reading its log.
const maxLogIndexes = 4096

type indexCache struct {
	mu sync.Mutex
	m  map[string]*logIndex
}

// take removes and returns path's index (nil if none).
func (c *indexCache) take(path string) *logIndex {
	c.mu.Lock()
	defer c.mu.Unlock()
	idx := c.m[path]
	delete(c.m, path)
	return idx
}

func (c *indexCache) put(path string, idx *logIndex) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxLogIndexes {
		for p := range c.m { // any: a log's calls come close together
			delete(c.m, p)
			break
		}
	}
	c.m[path] = idx
}

// catchUp brings l's index up to the end of the log, and cuts off a last
// line a power loss tore (no newline: every append writes one whole line)
// so that the next append starts a line of its own.
func (l *callLog) catchUp() error {
	fi, err := l.f.Stat()
	if err != nil {
		return fmt.Errorf("stat journal %s: %w", l.path, err)
	}
	size := fi.Size()
	id, err := l.header(size)
	if err != nil {
		return err
	}
	if id == "" {
		// A new log, or one whose first line a power loss took.
		if size, err = l.start(); err != nil {
			return err
		}
		if id, err = l.header(size); err != nil {
			return err
		}
	}
	idx := logIndexes.take(l.path)
	if idx == nil || idx.id != id || idx.end > size {
		idx = &logIndex{id: id, at: map[string][2]int64{}}
		idx.legacy = hasLegacyRecords(filepath.Dir(l.path))
	}
	if idx.end == 0 {
		idx.end = int64(len(logHeader) + len(id) + 3) // past the first line
	}
	if size > idx.end {
		buf := make([]byte, size-idx.end)
		if _, err := l.f.ReadAt(buf, idx.end); err != nil {
			return fmt.Errorf("read journal %s: %w", l.path, err)
		}
		for {
			nl := bytes.IndexByte(buf, '\n')
			if nl < 0 {
				break
			}
			var head struct {
				Key string `json:"key"`
			}
			if err := json.Unmarshal(buf[:nl], &head); err != nil || head.Key == "" {
				return fmt.Errorf("decode journal record %s at byte %d: not a record (%v); the file is damaged", l.path, idx.end, err)
			}
			idx.at[head.Key] = [2]int64{idx.end, int64(nl)}
			idx.end += int64(nl) + 1
			buf = buf[nl+1:]
		}
		if len(buf) > 0 {
			if err := l.f.Truncate(idx.end); err != nil {
				return fmt.Errorf("cut the torn last record of journal %s: %w", l.path, err)
			}
		}
	}
	l.idx = idx
	return nil
}

// logHeader starts a log's first line: {"log":"ID"}.
const logHeader = `{"log":"`

// header returns the id of the log's first line, "" if it has none whole.
func (l *callLog) header(size int64) (string, error) {
	buf := make([]byte, min(size, 64))
	if _, err := l.f.ReadAt(buf, 0); err != nil {
		return "", fmt.Errorf("read journal %s: %w", l.path, err)
	}
	line, _, whole := bytes.Cut(buf, []byte{'\n'})
	if !whole {
		return "", nil
	}
	var h struct {
		Log string `json:"log"`
	}
	if !bytes.HasPrefix(line, []byte(logHeader)) || json.Unmarshal(line, &h) != nil || h.Log == "" ||
		len(line) != len(logHeader)+len(h.Log)+2 {
		return "", fmt.Errorf("decode journal %s: its first line %q names no log; the file is damaged", l.path, line)
	}
	return h.Log, nil
}

// start writes a log's first line, with a new id, into an empty or torn
// log; it returns the log's size.
func (l *callLog) start() (int64, error) {
	var raw [8]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return 0, fmt.Errorf("start journal %s: %w", l.path, err)
	}
	line := logHeader + hex.EncodeToString(raw[:]) + "\"}\n"
	if err := l.f.Truncate(0); err != nil {
		return 0, fmt.Errorf("start journal %s: %w", l.path, err)
	}
	if _, err := l.f.WriteString(line); err != nil {
		return 0, fmt.Errorf("start journal %s: %w", l.path, err)
	}
	return int64(len(line)), nil
}

// load returns key's latest record.
func (l *callLog) load(key string) (record, bool, error) {
	at, ok := l.idx.at[key]
	if !ok {
		if l.idx.legacy {
			return legacyLoad(filepath.Dir(l.path), key)
		}
		return record{}, false, nil
	}
	data := make([]byte, at[1])
	if _, err := l.f.ReadAt(data, at[0]); err != nil {
		return record{}, false, fmt.Errorf("read journal record for %q: %w", key, err)
	}
	var rec record
	if err := json.Unmarshal(data, &rec); err != nil {
		return record{}, false, fmt.Errorf("decode journal record %s at byte %d: %w", l.path, at[0], err)
	}
	if rec.Key != key {
		return record{}, false, fmt.Errorf("journal record %s at byte %d holds key %q, want %q", l.path, at[0], rec.Key, key)
	}
	return rec, true, nil
}

// append writes rec as the log's last line, fsynced if sync. A failed
// write may leave part of a line: the index is dropped, and the next
// catchUp cuts it off.
func (l *callLog) append(rec record, sync bool) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode journal record for %q: %w", rec.Key, err)
	}
	data = append(data, '\n')
	_, err = l.f.Write(data)
	if err == nil && sync {
		err = l.f.Sync()
	}
	if err != nil {
		l.idx = nil
		return fmt.Errorf("write journal record for %q: %w", rec.Key, err)
	}
	l.idx.at[rec.Key] = [2]int64{l.idx.end, int64(len(data) - 1)}
	l.idx.end += int64(len(data))
	return nil
}

// Before the log, a journal kept a file per key: KEY.json (the durable
// record) and KEY.done (a change's unsynced completion), KEY being the
// sha256 of the key. A run that a worker of that version left half done
// is still read: its recorded changes are never applied twice.

// hasLegacyRecords reports whether dir holds records of that layout.
func hasLegacyRecords(dir string) bool {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if n := e.Name(); strings.HasSuffix(n, ".json") || strings.HasSuffix(n, ".done") {
			return true
		}
	}
	return false
}

// legacyLoad returns key's record from the per-key files of dir: a
// change's completion when it is there and whole, else the durable record.
func legacyLoad(dir, key string) (record, bool, error) {
	name := filepath.Join(dir, hashBytes([]byte(key)))
	if data, err := os.ReadFile(name + ".done"); err == nil {
		var rec record
		if json.Unmarshal(data, &rec) == nil && rec.Key == key && rec.State == stateDone {
			return rec, true, nil
		}
	}
	data, err := os.ReadFile(name + ".json")
	if errors.Is(err, os.ErrNotExist) {
		return record{}, false, nil
	}
	if err != nil {
		return record{}, false, fmt.Errorf("read journal record for %q: %w", key, err)
	}
	var rec record
	if err := json.Unmarshal(data, &rec); err != nil {
		return record{}, false, fmt.Errorf("decode journal record %s.json: %w", name, err)
	}
	if rec.Key != key {
		return record{}, false, fmt.Errorf("journal record %s.json holds key %q, want %q", name, rec.Key, key)
	}
	return rec, true, nil
}
