package activities

// The result cache's files: one JSON entry per key under
// <Dir>/<kind>/, read as untrusted input, written atomically, the least
// recently used evicted past MaxEntries.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

func (c *ResultCache) maxEntries() int {
	if c.MaxEntries <= 0 {
		return DefaultCacheMaxEntries
	}
	return c.MaxEntries
}

func (c *ResultCache) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

func (c *ResultCache) path(kind, key string) string {
	return filepath.Join(c.Dir, kind, key+".json")
}

// read loads an entry, treating the file as untrusted: a regular file (no
// symlink), at most cacheEntryMaxBytes, valid JSON. A missing file is
// fs.ErrNotExist.
func (c *ResultCache) read(kind, key string, v any) error {
	if !cacheKeyRE.MatchString(key) {
		return fmt.Errorf("cache key %q is not a sha256", key)
	}
	p := c.path(kind, key)
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Size() > cacheEntryMaxBytes {
		return fmt.Errorf("cache entry %s is not a regular file under %d bytes", p, cacheEntryMaxBytes)
	}
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, cacheEntryMaxBytes+1))
	if err != nil {
		return err
	}
	if len(data) > cacheEntryMaxBytes {
		return fmt.Errorf("cache entry %s is larger than %d bytes", p, cacheEntryMaxBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("cache entry %s: %w", p, err)
	}
	// Used: the least recently used entries go first.
	now := c.clock()
	_ = os.Chtimes(p, now, now)
	return nil
}

// write stores an entry atomically (a temporary file renamed over it) and
// evicts the least recently used entries past MaxEntries.
func (c *ResultCache) write(kind, key string, v any) error {
	dir := filepath.Join(c.Dir, kind)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(data) > cacheEntryMaxBytes {
		return fmt.Errorf("cache entry of %d bytes is over the %d-byte cap", len(data), cacheEntryMaxBytes)
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	p := c.path(kind, key)
	if err := os.Rename(tmp.Name(), p); err != nil {
		return err
	}
	now := c.clock()
	_ = os.Chtimes(p, now, now)
	return nil
}

type cacheFile struct {
	name string
	used time.Time
}

// cacheTmpMaxAge is how old a temporary file of write gets before evict
// removes it: a write takes milliseconds, so an older one was left by a
// process that died between creating and renaming it.
const cacheTmpMaxAge = time.Hour

// evict removes the least recently used entries of kind past MaxEntries,
// and temporary files a dead writer left.
func (c *ResultCache) evict(kind string) {
	entries, err := os.ReadDir(filepath.Join(c.Dir, kind))
	if err != nil {
		return
	}
	var files []cacheFile
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			if info, err := e.Info(); err == nil && info.Mode().IsRegular() && c.clock().Sub(info.ModTime()) > cacheTmpMaxAge {
				_ = os.Remove(filepath.Join(c.Dir, kind, e.Name()))
			}
			continue
		}
		key, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || !cacheKeyRE.MatchString(key) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		files = append(files, cacheFile{name: key, used: info.ModTime()})
	}
	over := len(files) - c.maxEntries()
	if over <= 0 {
		return
	}
	slices.SortFunc(files, func(a, b cacheFile) int {
		if d := a.used.Compare(b.used); d != 0 {
			return d
		}
		return strings.Compare(a.name, b.name)
	})
	for _, f := range files[:over] {
		_ = os.Remove(c.path(kind, f.name))
	}
}
