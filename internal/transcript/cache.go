package transcript

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Cache bounds: idle conversations are dropped beyond either. A dropped
// conversation is read again from disk on its next use, so the bounds only
// trade memory for a re-read.
const (
	defaultCacheSize  = 2048      // conversations
	defaultCacheBytes = 256 << 20 // bytes of JSON lines held
)

// cache holds the parsed conversations of one Store. Each conversation has
// its own lock, so steps of different sub-agents never wait for each other;
// the cache's own lock only guards the map.
type cache struct {
	mu       sync.Mutex
	convs    map[string]*conv
	maxConvs int
	maxBytes int64
	bytes    int64        // sum of committed over convs
	reads    atomic.Int64 // whole-file reads, for tests
}

func newCache(maxConvs int) *cache {
	return &cache{convs: map[string]*conv{}, maxConvs: maxConvs, maxBytes: defaultCacheBytes}
}

// conv is the cached state of one conversation file. It is trusted only
// while the file has the size, inode and modification time recorded here:
// anything else (another process appended, the file was replaced or torn)
// makes the next use read the file again.
type conv struct {
	path string
	refs int   // users holding it; guarded by cache.mu
	held int64 // committed bytes as counted in cache.bytes; guarded by cache.mu

	reads *atomic.Int64 // the cache's counter of whole-file reads

	mu        sync.Mutex
	valid     bool
	recs      []Record
	keys      map[string]struct{}
	size      int64 // file size at the last stat
	committed int64 // bytes up to the last newline; < size when the last line is torn
	ino       uint64
	mtime     time.Time
}

// acquire returns path's conversation, pinned against eviction until release.
func (c *cache) acquire(path string) *conv {
	c.mu.Lock()
	defer c.mu.Unlock()
	cv, ok := c.convs[path]
	if !ok {
		cv = &conv{path: path, reads: &c.reads}
		c.convs[path] = cv
	}
	cv.refs++
	return cv
}

// release unpins cv, accounts for its new size and evicts idle
// conversations when the cache is over its bounds.
func (c *cache) release(cv *conv) {
	cv.mu.Lock()
	size := cv.committed
	if !cv.valid {
		size = 0
	}
	cv.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	cv.refs--
	c.bytes += size - cv.held
	cv.held = size
	if len(c.convs) <= c.maxConvs && c.bytes <= c.maxBytes {
		return
	}
	// Drop idle conversations down to three quarters of each bound, so
	// that eviction runs once per many acquisitions, not on every one.
	for path, other := range c.convs {
		if len(c.convs) <= c.maxConvs*3/4 && c.bytes <= c.maxBytes*3/4 {
			break
		}
		if other.refs == 0 {
			c.bytes -= other.held
			delete(c.convs, path)
		}
	}
}

// has reports whether key is already in the conversation.
func (cv *conv) has(key string) bool {
	_, ok := cv.keys[key]
	return ok
}

// invalidate makes the next use read the file again.
func (cv *conv) invalidate() { cv.valid = false }

// refresh makes the cached records match the file, reading it only when
// the file is not the one last seen. With repair, a torn last line is cut
// off the file so that the next append starts on a line of its own.
// Callers hold cv.mu.
func (cv *conv) refresh(repair bool) error {
	fi, err := os.Stat(cv.path)
	if errors.Is(err, os.ErrNotExist) {
		cv.reset()
		return nil
	}
	if err != nil {
		return fmt.Errorf("stat transcript: %w", err)
	}
	if !cv.valid || !cv.matches(fi) {
		if err := cv.reload(); err != nil {
			return err
		}
	}
	if repair && cv.committed < cv.size {
		// A crash tore the last line: drop it before appending.
		if err := os.Truncate(cv.path, cv.committed); err != nil {
			cv.invalidate()
			return fmt.Errorf("repair transcript: %w", err)
		}
		fi, err := os.Stat(cv.path)
		if err != nil {
			cv.invalidate()
			return fmt.Errorf("stat transcript: %w", err)
		}
		cv.stamp(fi)
	}
	return nil
}

// reset records a conversation that has no file yet.
func (cv *conv) reset() {
	cv.valid = true
	cv.recs = nil
	cv.keys = map[string]struct{}{}
	cv.size, cv.committed, cv.ino, cv.mtime = 0, 0, 0, time.Time{}
}

// reload reads and parses the whole file.
func (cv *conv) reload() error {
	f, err := os.Open(cv.path)
	if errors.Is(err, os.ErrNotExist) {
		cv.reset()
		return nil
	}
	if err != nil {
		return fmt.Errorf("read transcript: %w", err)
	}
	defer f.Close()
	cv.reads.Add(1)
	// Stat the open file, not the path, so that the stamp describes the
	// bytes read even if the file is replaced meanwhile.
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat transcript: %w", err)
	}
	data := make([]byte, fi.Size())
	n, err := readFull(f, data)
	if err != nil {
		return fmt.Errorf("read transcript: %w", err)
	}
	data = data[:n]
	cv.recs = parse(data)
	cv.keys = make(map[string]struct{}, len(cv.recs))
	for _, r := range cv.recs {
		cv.keys[r.Key] = struct{}{}
	}
	cv.committed = int64(bytes.LastIndexByte(data, '\n') + 1)
	cv.valid = true
	cv.stamp(fi)
	cv.size = int64(n)
	return nil
}

// readFull reads until buf is full or the file ends.
func readFull(f *os.File, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := f.Read(buf[n:])
		n += m
		if err != nil {
			if errors.Is(err, io.EOF) {
				return n, nil
			}
			return n, err
		}
	}
	return n, nil
}

// appended records this process's own append of added (n bytes), after
// which the file is described by fi. If the file grew by more than n,
// someone else wrote too: the cache is dropped and the file read next time.
func (cv *conv) appended(added []Record, fi os.FileInfo, n int64) {
	if !cv.valid || cv.committed != cv.size || fi.Size() != cv.size+n {
		cv.invalidate()
		return
	}
	cv.recs = append(cv.recs, added...)
	for _, r := range added {
		cv.keys[r.Key] = struct{}{}
	}
	cv.committed = fi.Size()
	cv.stamp(fi)
}

// stamp remembers the identity of the file the cache describes.
func (cv *conv) stamp(fi os.FileInfo) {
	cv.size = fi.Size()
	cv.mtime = fi.ModTime()
	cv.ino = inode(fi)
	if cv.committed > cv.size {
		cv.committed = cv.size
	}
}

// matches reports whether fi is the file the cache describes.
func (cv *conv) matches(fi os.FileInfo) bool {
	return fi.Size() == cv.size && fi.ModTime().Equal(cv.mtime) && inode(fi) == cv.ino
}

// inode returns fi's inode number, or 0 where the platform has none.
func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
