package gitops

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// maxIndexBytes bounds the index IndexPathsNotOwnedBy reads: about 100
// bytes an entry, so a million tracked files.
const maxIndexBytes = 128 << 20

// IndexPathsNotOwnedBy lists the tracked paths of the linked worktree at
// dir that its index does not record as owned by uid and gid. Git records a
// file's owner with the rest of its stat data whenever it writes the file
// or looks at it again (a checkout, `add`), so for a worktree the pool
// handed over (Worktree.Claimed) these are the files the claim's checkout
// wrote, and any that the last `add` saw owned by someone else: the only
// ones the sandbox's uid may not own yet. The index is read, never written,
// from the worktree's checked git directory (worktreeGitDir), without
// following a symlink; what it lists is hostile input to the caller.
func IndexPathsNotOwnedBy(dir string, uid, gid int) ([]string, error) {
	gd, err := worktreeGitDir(dir, false)
	if err != nil {
		return nil, fmt.Errorf("index owners of %q: %w", dir, err)
	}
	data, err := readIndex(gd)
	if err != nil {
		return nil, fmt.Errorf("index owners of %q: %w", dir, err)
	}
	var out []string
	err = indexEntries(data, func(name []byte, entUID, entGID uint32) {
		if entUID != uint32(uid) || entGID != uint32(gid) {
			out = append(out, string(name))
		}
	})
	if err != nil {
		return nil, fmt.Errorf("index owners of %q: %w", dir, err)
	}
	return out, nil
}

// readIndex returns the index file of the git directory gd, read without
// following a symlink or blocking on a FIFO, and at most maxIndexBytes.
func readIndex(gd string) ([]byte, error) {
	f, err := os.OpenFile(filepath.Join(gd, "index"), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() || fi.Size() > maxIndexBytes {
		return nil, fmt.Errorf("the index is not a regular file of at most %d bytes", maxIndexBytes)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxIndexBytes+1))
	if err != nil || len(data) > maxIndexBytes {
		return nil, fmt.Errorf("read the index: %v", err)
	}
	return data, nil
}

// indexNames returns the paths the index of the git directory gd tracks.
func indexNames(gd string) (map[string]bool, error) {
	data, err := readIndex(gd)
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	err = indexEntries(data, func(name []byte, _, _ uint32) { names[string(name)] = true })
	return names, err
}

// RefreshIndex brings the stat data the index of the linked worktree at
// dir records for every entry up to date with the files, without staging
// anything (`update-index --refresh`). A change of owner (the sandbox's
// chown) is a change of stat data: until the index records it, every
// `status` compares those files' contents, and a claim's `read-tree -m -u`
// refuses to overwrite them. A commit of the whole tree refreshes every
// entry on the way; one of named paths (CommitPaths) only those.
func RefreshIndex(ctx context.Context, dir string) error {
	gitDir, err := worktreeGitDir(dir, false)
	if err == nil {
		_, err = git(ctx, dir, runOpts{gitDir: gitDir}, "update-index", "-q", "--refresh")
	}
	if err != nil {
		return fmt.Errorf("refresh the index of %q: %w", dir, err)
	}
	return nil
}

// indexEntries calls fn with the path, uid and gid of each entry of a git
// index (versions 2 to 4, SHA-1 object names; gitformat-index(5)), after it
// has checked the trailing checksum, so a torn, forged or SHA-256 index is
// an error rather than a misread. Only what IndexPathsNotOwnedBy needs is
// decoded: go-git's decoder reads every field through reflection, 14 ms of
// CPU for a 10,000-entry index (B8), several times the walk it replaces.
func indexEntries(data []byte, fn func(name []byte, uid, gid uint32)) error {
	const (
		hashSize   = sha1.Size
		fixedSize  = 62 // stat data, object name, flags
		flagExtend = 0x4000
		nameMask   = 0x0fff
	)
	if len(data) < 12+hashSize || !bytes.Equal(data[:4], []byte("DIRC")) {
		return errors.New("not a git index")
	}
	body := data[:len(data)-hashSize]
	if sum := sha1.Sum(body); !bytes.Equal(sum[:], data[len(body):]) {
		return errors.New("the index's checksum does not match (not a SHA-1 index, or torn)")
	}
	version := binary.BigEndian.Uint32(body[4:8])
	if version < 2 || version > 4 {
		return fmt.Errorf("index version %d", version)
	}
	count := binary.BigEndian.Uint32(body[8:12])
	pos := 12
	var prev []byte
	for i := uint32(0); i < count; i++ {
		start := pos
		if len(body)-pos < fixedSize {
			return errors.New("the index ends inside an entry")
		}
		e := body[pos:]
		uid, gid := binary.BigEndian.Uint32(e[28:32]), binary.BigEndian.Uint32(e[32:36])
		flags := binary.BigEndian.Uint16(e[60:62])
		pos += fixedSize
		if flags&flagExtend != 0 {
			if version < 3 || len(body)-pos < 2 {
				return errors.New("an extended entry in a version 2 index, or at its end")
			}
			pos += 2
		}
		var name []byte
		if version == 4 {
			strip, n := indexVarint(body[pos:])
			if n == 0 || strip > uint64(len(prev)) {
				return errors.New("a bad path prefix in a version 4 index")
			}
			pos += n
			end := bytes.IndexByte(body[pos:], 0)
			if end < 0 {
				return errors.New("an unterminated path in the index")
			}
			name = append(prev[:len(prev)-int(strip):len(prev)-int(strip)], body[pos:pos+end]...)
			pos += end + 1
		} else {
			end := bytes.IndexByte(body[pos:], 0)
			if end < 0 || (flags&nameMask != nameMask && end != int(flags&nameMask)) || (flags&nameMask == nameMask && end < nameMask) {
				return errors.New("a path whose length is not the index's")
			}
			name = body[pos : pos+end]
			// The path is followed by 1 to 8 NULs, up to a multiple of 8
			// bytes from the entry's start.
			nameEnd := pos + end
			next := start + (nameEnd-start+8)&^7
			if next > len(body) || bytes.ContainsFunc(body[nameEnd:next], func(r rune) bool { return r != 0 }) {
				return errors.New("an entry's padding is not the index's")
			}
			pos = next
		}
		fn(name, uid, gid)
		prev = name
	}
	return nil
}

// indexVarint decodes git's offset varint (varint.c); n is 0 when buf ends
// inside it or it does not fit 63 bits.
func indexVarint(buf []byte) (v uint64, n int) {
	for i, c := range buf {
		if i > 8 {
			return 0, 0
		}
		if i == 0 {
			v = uint64(c & 127)
		} else {
			v = (v+1)<<7 | uint64(c&127)
		}
		if c&128 == 0 {
			return v, i + 1
		}
	}
	return 0, 0
}
