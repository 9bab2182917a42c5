package gitops

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/go-git/go-git/v5/plumbing/format/index"
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
	f, err := os.OpenFile(filepath.Join(gd, "index"), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("index owners of %q: %w", dir, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() || fi.Size() > maxIndexBytes {
		return nil, fmt.Errorf("index owners of %q: the index is not a regular file of at most %d bytes", dir, maxIndexBytes)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxIndexBytes+1))
	if err != nil || len(data) > maxIndexBytes {
		return nil, fmt.Errorf("index owners of %q: read the index: %v", dir, err)
	}
	var idx index.Index
	if err := index.NewDecoder(bytes.NewReader(data)).Decode(&idx); err != nil {
		return nil, fmt.Errorf("index owners of %q: %w", dir, err)
	}
	var out []string
	for _, e := range idx.Entries {
		if e.UID != uint32(uid) || e.GID != uint32(gid) {
			out = append(out, e.Name)
		}
	}
	return out, nil
}
