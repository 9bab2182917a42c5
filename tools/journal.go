package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Journal makes tool calls idempotent under activity retry. It stores one
// record per call key in a directory outside the worktree. A Journal is
// safe for concurrent use, also by attempts of one key: Temporal starts one
// attempt at a time, but an attempt it has given up on may still be running
// when the next starts (a local activity whose workflow task timed out, an
// activity past its timeout), so Run holds a lock of the key (lock) for the
// whole call.
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
	unlock, err := j.lock(ctx, key)
	if err != nil {
		return Result{}, err
	}
	defer unlock()
	rec, found, err := j.load(key)
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
			return j.resumeChange(ctx, tb, rec, arguments)
		}
		return j.change(ctx, tb, key, name, arguments)
	case ToolBash:
		return j.bash(ctx, tb, key, found, arguments)
	default:
		return j.finish(record{Key: key, Tool: name}, tb.run(ctx, name, arguments))
	}
}

// change plans, records the intent, applies and completes a mutation.
func (j *Journal) change(ctx context.Context, tb *toolbox, key, name, arguments string) (Result, error) {
	rec := record{Key: key, Tool: name}
	ch, res := tb.plan(ctx, name, arguments)
	if ctx.Err() != nil {
		return res, nil // not recorded: the attempt was stopped, a retry plans again
	}
	if ch == nil {
		return j.finishChange(rec, res)
	}
	rec.State, rec.Path, rec.Result = stateIntent, ch.rel, ch.result
	rec.PreHash, rec.PostHash = ch.preHash(), hashBytes(ch.post)
	if err := j.save(rec); err != nil {
		return Result{}, err
	}
	if err := ch.apply(tb.opts.Sandbox.fileOwner()); err != nil {
		return j.finishChange(rec, errorf("%s %s: %v", name, ch.rel, err))
	}
	return j.finishChange(rec, ch.result)
}

// resumeChange completes a mutation whose intent was recorded but whose
// completion was not, without ever applying it twice.
func (j *Journal) resumeChange(ctx context.Context, tb *toolbox, rec record, arguments string) (Result, error) {
	tg, err := tb.box.resolveWritable(rec.Path)
	if err != nil {
		return j.finishChange(rec, errorf("%s: %v", rec.Tool, err))
	}
	if err := removeStaleTemps(tg.abs); err != nil {
		return Result{}, err
	}
	cur, err := hashFile(ctx, tg.abs)
	if err != nil && ctx.Err() != nil {
		return errorf("%s %s: %v", rec.Tool, rec.Path, err), nil // not recorded: a retry looks again
	}
	if err != nil {
		return j.finishChange(rec, errorf("%s %s: %v", rec.Tool, rec.Path, err))
	}
	switch cur {
	case rec.PostHash: // the change landed before the crash
		return j.finishChange(rec, rec.Result)
	case rec.PreHash: // the crash came before the change
		ch, res := tb.plan(ctx, rec.Tool, arguments)
		if ctx.Err() != nil {
			return res, nil
		}
		if ch == nil {
			return j.finishChange(rec, res)
		}
		if ch.preHash() != rec.PreHash || hashBytes(ch.post) != rec.PostHash {
			return j.finishChange(rec, errorf("%s %s: the retried call no longer produces the recorded change; read the file and redo the change", rec.Tool, rec.Path))
		}
		if err := ch.apply(tb.opts.Sandbox.fileOwner()); err != nil {
			return j.finishChange(rec, errorf("%s %s: %v", rec.Tool, rec.Path, err))
		}
		return j.finishChange(rec, rec.Result)
	default:
		return j.finishChange(rec, errorf("%s: %s changed since the interrupted attempt of this call (it matches neither the content before nor after the change); read it again and redo the change if still needed", rec.Tool, rec.Path))
	}
}

// bash records an intent, runs the command and records the result unless
// the run was cancelled.
func (j *Journal) bash(ctx context.Context, tb *toolbox, key string, interrupted bool, arguments string) (Result, error) {
	rec := record{Key: key, Tool: ToolBash, State: stateIntent}
	if !interrupted {
		if err := j.save(rec); err != nil {
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
	return j.finish(rec, res)
}

// finish stores res as the final result of rec's key.
func (j *Journal) finish(rec record, res Result) (Result, error) {
	return j.complete(rec, res, j.save)
}

// finishChange is finish for a mutation: its completion goes to a file of
// its own next to the intent (doneFile) and is not fsynced. It needs no
// durability: if it is lost or torn, load falls back to the durable intent
// and resumeChange returns the same result (the file matches the
// post-image: nothing else writes the worktree between the change and its
// activity's end). That saves a file and a directory fsync per write/edit.
func (j *Journal) finishChange(rec record, res Result) (Result, error) {
	return j.complete(rec, res, j.saveNoSync)
}

func (j *Journal) complete(rec record, res Result, save func(record) error) (Result, error) {
	if j.Scrub != nil {
		res.Output = j.Scrub(res.Output)
	}
	rec.State, rec.Result = stateDone, res
	if err := save(rec); err != nil {
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

// lock waits until no other attempt of key runs, in this process or in
// another one on this host, and returns the function that lets the next
// one in. Without it, a retry that starts while an abandoned attempt is
// still writing the file removes that attempt's temp file as stale
// (resumeChange): the abandoned attempt's rename then fails and it records
// its edit as failed, and an edit may end up applied by neither. The lock
// is an flock on the journal's lock file, which the kernel releases when
// the holder dies; the file stays (removing it would let two holders lock
// two files). One lock for all keys: a journal is one sub-agent attempt's,
// whose calls run one at a time, each only once every attempt of the one
// before has ended, so only attempts of the same call ever wait for each
// other; a file per key cost a new inode per call. Waiting stops when ctx
// is done, with ctx's error.
func (j *Journal) lock(ctx context.Context, key string) (func(), error) {
	f, err := os.OpenFile(j.lockFile(), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open journal lock for %q: %w", key, err)
	}
	wait := time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = f.Close() }, nil // closing releases the flock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			_ = f.Close()
			return nil, fmt.Errorf("lock journal record for %q: %w", key, err)
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
}

// lockFile names the journal's lock.
func (j *Journal) lockFile() string {
	return filepath.Join(j.dir, "calls.lock")
}

// file names a key's record; hashing keeps any key a safe file name.
func (j *Journal) file(key string) string {
	return filepath.Join(j.dir, hashBytes([]byte(key))+".json")
}

// doneFile names the unsynced completion record of a change's key.
func (j *Journal) doneFile(key string) string {
	return filepath.Join(j.dir, hashBytes([]byte(key))+".done")
}

// load returns key's record: a change's completion when it is there and
// whole, else the (durable) record of file.
func (j *Journal) load(key string) (record, bool, error) {
	if data, err := os.ReadFile(j.doneFile(key)); err == nil {
		var rec record
		if json.Unmarshal(data, &rec) == nil && rec.Key == key && rec.State == stateDone {
			return rec, true, nil
		}
	}
	data, err := os.ReadFile(j.file(key))
	if errors.Is(err, os.ErrNotExist) {
		return record{}, false, nil
	}
	if err != nil {
		return record{}, false, fmt.Errorf("read journal record for %q: %w", key, err)
	}
	var rec record
	if err := json.Unmarshal(data, &rec); err != nil {
		return record{}, false, fmt.Errorf("decode journal record %s: %w", j.file(key), err)
	}
	if rec.Key != key {
		return record{}, false, fmt.Errorf("journal record %s holds key %q, want %q", j.file(key), rec.Key, key)
	}
	return rec, true, nil
}

// saveNoSync writes rec to its doneFile, by a rename of a complete temp
// file; nothing is fsynced, and the intent record is left as it is.
func (j *Journal) saveNoSync(rec record) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode journal record for %q: %w", rec.Key, err)
	}
	f, err := os.CreateTemp(j.dir, ".done-*")
	if err != nil {
		return fmt.Errorf("write journal record for %q: %w", rec.Key, err)
	}
	_, werr := f.Write(data)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(f.Name(), j.doneFile(rec.Key))
	}
	if werr != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("write journal record for %q: %w", rec.Key, werr)
	}
	return nil
}

func (j *Journal) save(rec record) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode journal record for %q: %w", rec.Key, err)
	}
	if err := writeFileAtomic(j.file(rec.Key), data, 0o600); err != nil {
		return fmt.Errorf("write journal record for %q: %w", rec.Key, err)
	}
	return nil
}
