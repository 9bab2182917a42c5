package tools

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/renameio/v2"
)

// apply writes the planned post-image.
// New files and directories get owner o (the sandbox's uid).
func (c *change) apply(o fileOwner) error {
	return writeFileAtomicAs(c.abs, c.post, c.mode, o)
}

// writeFileAtomicAs replaces path with data so that a crash leaves either the
// old or the new content, never a torn file. renameio writes a temp file in
// the same directory (WithTempDir: never /tmp, which may be another mount or
// outside the sandbox), fsyncs it and renames it into place; the file gets
// exactly mode (umask ignored), as the planned post-image says. renameio
// does not fsync the directory, so the rename itself is made durable here.
func writeFileAtomicAs(path string, data []byte, mode fs.FileMode, o fileOwner) error {
	dir := filepath.Dir(path)
	if err := o.mkdirAll(dir); err != nil {
		return fmt.Errorf("create parent directories: %w", err)
	}
	f, err := newPendingFile(path, mode)
	if err != nil {
		return fmt.Errorf("create temp file: %w", err)
	}
	defer func() { _ = f.Cleanup() }()
	if err := o.chown(f.File); err != nil {
		return fmt.Errorf("chown temp file: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write temp file: %w", err)
	}
	if beforeReplace != nil {
		beforeReplace(path)
	}
	if err := f.CloseAtomicallyReplace(); err != nil {
		return fmt.Errorf("replace %s: %w", filepath.Base(path), err)
	}
	return syncDir(dir)
}

// beforeReplace, set by tests only, is called with path once its temp file
// is written, just before it is renamed into place.
var beforeReplace func(path string)

// newPendingFile opens writeFileAtomicAs's temp file for path.
func newPendingFile(path string, mode fs.FileMode) (*renameio.PendingFile, error) {
	return renameio.NewPendingFile(path, renameio.WithTempDir(filepath.Dir(path)), renameio.WithStaticPermissions(mode))
}

// tempPrefix starts the names of writeFileAtomicAs's temp files for path:
// renameio names them "." + base name + a decimal random number.
func tempPrefix(path string) string { return "." + filepath.Base(path) }

// isTempOf reports whether name is one of writeFileAtomicAs's temp files for
// path (the prefix followed by digits only, so ".a.go.orig" never matches).
func isTempOf(name, path string) bool {
	rest, ok := strings.CutPrefix(name, tempPrefix(path))
	return ok && rest != "" && strings.Trim(rest, "0123456789") == ""
}

// removeStaleTemps deletes the temp files a writeFileAtomicAs of path killed
// before its rename left behind: they sit in the worktree, and a commit
// would take them in as if the model had written them.
func removeStaleTemps(path string) error {
	entries, err := os.ReadDir(filepath.Dir(path))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !isTempOf(e.Name(), path) {
			continue
		}
		if err := os.Remove(filepath.Join(filepath.Dir(path), e.Name())); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("remove temp file of an interrupted write: %w", err)
		}
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory for sync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	return nil
}

// absentHash stands for the hash of a file that does not exist.
const absentHash = "absent"

func hashBytes(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// hashFile returns the sha256 of the file at path, or absentHash. It
// streams the file (no size limit needed), never opens a special file, and
// stops when ctx is done.
func hashFile(ctx context.Context, path string) (string, error) {
	f, err := openRegular(path)
	if os.IsNotExist(err) {
		return absentHash, nil
	}
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	buf := make([]byte, chunkFor(f))
	for {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		n, err := f.Read(buf)
		h.Write(buf[:n])
		if errors.Is(err, io.EOF) {
			return hex.EncodeToString(h.Sum(nil)), nil
		}
		if err != nil {
			return "", fmt.Errorf("hash %s: %w", path, err)
		}
	}
}
