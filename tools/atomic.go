package tools

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"
)

// apply writes the planned post-image.
func (c *change) apply() error {
	return writeFileAtomic(c.abs, c.post, c.mode)
}

// writeFileAtomic replaces path with data so that a crash leaves either the
// old or the new content, never a torn file. renameio writes a temp file in
// the same directory (WithTempDir: never /tmp, which may be another mount or
// outside the sandbox), fsyncs it and renames it into place; the file gets
// exactly mode (umask ignored), as the planned post-image says. renameio
// does not fsync the directory, so the rename itself is made durable here.
func writeFileAtomic(path string, data []byte, mode fs.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create parent directories: %w", err)
	}
	f, err := renameio.NewPendingFile(path, renameio.WithTempDir(dir), renameio.WithStaticPermissions(mode))
	if err != nil {
		return fmt.Errorf("create temp file: %w", err)
	}
	defer func() { _ = f.Cleanup() }()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write temp file: %w", err)
	}
	if err := f.CloseAtomicallyReplace(); err != nil {
		return fmt.Errorf("replace %s: %w", filepath.Base(path), err)
	}
	return syncDir(dir)
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

// hashFile returns the sha256 of the file at path, or absentHash.
func hashFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return absentHash, nil
	}
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hashBytes(b), nil
}
