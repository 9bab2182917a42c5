package tools

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrNotBeneath is returned by OpenBeneath for a path that is absolute,
// climbs out with "..", or passes through a symlink.
var ErrNotBeneath = errors.New("not a plain path inside the worktree")

// OpenBeneath opens rel, a slash-separated path inside root, for reading
// without following any symlink: each directory is opened with
// O_NOFOLLOW|O_DIRECTORY from its parent's descriptor, and the file itself
// with O_NOFOLLOW|O_NONBLOCK, so a path swapped for a symlink mid-walk is
// refused and a FIFO or device never blocks the open. Only a regular file
// (checked on the open descriptor) is returned. It is for the files
// codeswarm reads itself from a worktree the model controls (AGENTS.md):
// their content goes into prompts, which must never hold the worker's
// files (/proc/self/environ, its config) or an endless device.
func OpenBeneath(root, rel string) (*os.File, error) {
	parts, err := beneathParts(rel)
	if err != nil {
		return nil, err
	}
	dir, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", root, err)
	}
	for i, p := range parts {
		flags := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NONBLOCK
		if i < len(parts)-1 {
			flags |= unix.O_DIRECTORY
		}
		fd, err := unix.Openat(dir, p, flags, 0)
		_ = unix.Close(dir)
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return nil, fmt.Errorf("%s: %w (%s is a symlink or not a directory)", rel, ErrNotBeneath, path.Join(parts[:i+1]...))
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: rel, Err: err}
		}
		dir = fd
	}
	f := os.NewFile(uintptr(dir), rel)
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		kind := specialKind(fi.Mode())
		if fi.IsDir() {
			kind = "directory"
		}
		return nil, fmt.Errorf("%s is a %s, not a regular file", rel, kind)
	}
	return f, nil
}

// beneathParts splits rel into its components, refusing absolute paths,
// "..", and the root itself.
func beneathParts(rel string) ([]string, error) {
	if rel == "" || strings.HasPrefix(rel, "/") {
		return nil, fmt.Errorf("%q: %w", rel, ErrNotBeneath)
	}
	var parts []string
	for _, p := range strings.Split(rel, "/") {
		switch p {
		case "", ".":
		case "..":
			return nil, fmt.Errorf("%q: %w", rel, ErrNotBeneath)
		default:
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("%q: %w", rel, ErrNotBeneath)
	}
	return parts, nil
}

// ReadBeneath reads at most max bytes of the regular file rel inside root,
// opened as OpenBeneath does; truncated reports that the file holds more.
// ctx is checked between chunks.
func ReadBeneath(ctx context.Context, root, rel string, max int64) (data []byte, truncated bool, err error) {
	f, err := OpenBeneath(root, rel)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	data, err = readCapped(ctx, f, max+1)
	if err != nil {
		return nil, false, err
	}
	if int64(len(data)) > max {
		return data[:max], true, nil
	}
	return data, false, nil
}

// readChunk is the unit of readCapped: ctx is checked between chunks.
const readChunk = 256 << 10

// chunkFor is the first read's size for r: a regular file's size and a
// byte (which sees its end), at most readChunk. A tool call reads mostly
// small files, and a 256 kB buffer zeroed for each was most of the tools'
// allocations.
func chunkFor(r io.Reader) int64 {
	if f, ok := r.(interface{ Stat() (os.FileInfo, error) }); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			return min(fi.Size()+1, readChunk)
		}
	}
	return readChunk
}

// readCapped reads r to its end or to limit bytes, whichever comes first,
// stopping early when ctx is done.
func readCapped(ctx context.Context, r io.Reader, limit int64) ([]byte, error) {
	var buf []byte
	chunk := chunkFor(r)
	for int64(len(buf)) < limit {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n := min(chunk, limit-int64(len(buf)))
		chunk = readChunk
		start := len(buf)
		buf = append(buf, make([]byte, n)...)
		m, err := io.ReadFull(r, buf[start:])
		buf = buf[:start+m]
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
	return buf, nil
}
