package gitops

import (
	"context"
	"crypto/sha1"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// chownTree gives every file and directory under dir but .git to uid.
func chownTree(t *testing.T, dir string, uid int) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		if d.Name() == ".git" {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		return os.Lchown(p, uid, uid)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestIndexPathsNotOwnedByNamesWhatTheClaimWrote: once the last `add`
// has seen a worktree's files owned by the sandbox's uid, the index of the
// worktree claimed from it names exactly the files the claim's checkout
// rewrote; a fresh checkout names every file; an index that is a symlink
// or not an index is an error, never followed or half-read.
func TestIndexPathsNotOwnedByNamesWhatTheClaimWrote(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files to another uid")
	}
	const uid = 65534
	ctx := context.Background()
	tr := newTestRepo(t)
	work := t.TempDir()
	first := filepath.Join(work, "sub-1")
	finishedWorktree(t, tr, first, "codeswarm/sub-1")
	if got, err := IndexPathsNotOwnedBy(first, uid, uid); err != nil || !slices.Equal(got, []string{".gitignore", "a.txt", "b.txt", "c.txt"}) {
		t.Errorf("fresh worktree: %v, %v; want every tracked file", got, err)
	}
	runGit(t, first, nil, "clean", "-ffdxq") // the park's clean, before the chown of what it removes
	chownTree(t, first, uid)
	runGit(t, first, nil, "add", "--all") // CommitSubtask's add looks at every file again
	if got, err := IndexPathsNotOwnedBy(first, uid, uid); err != nil || len(got) != 0 {
		t.Errorf("after the add: %v, %v; want none", got, err)
	}
	later := tr.commitOn("main", "main", map[string]string{"c.txt": "merged\n", "d/e/f.txt": "deep\n"})
	parked := filepath.Join(work, ".state", "pool", "1")
	if err := tr.repo.ParkWorktree(ctx, first, parked); err != nil {
		t.Fatalf("ParkWorktree: %v", err)
	}
	next := filepath.Join(work, "sub-2")
	wt, err := tr.repo.AddWorktreeFrom(ctx, next, "codeswarm/sub-2", later, parked)
	if err != nil || !wt.Claimed {
		t.Fatalf("AddWorktreeFrom = %+v, %v; want a claimed worktree", wt, err)
	}
	// The agent's a.txt and .gitignore go back to main's (one rewritten, one
	// deleted); c.txt changed on main and d/e/f.txt is new; b.txt is
	// untouched.
	got, err := IndexPathsNotOwnedBy(next, uid, uid)
	if err != nil || !slices.Equal(got, []string{"a.txt", "c.txt", "d/e/f.txt"}) {
		t.Errorf("claimed worktree: %v, %v; want a.txt c.txt d/e/f.txt", got, err)
	}

	gd, err := worktreeGitDir(next, false)
	if err != nil {
		t.Fatal(err)
	}
	idx := filepath.Join(gd, "index")
	moved := idx + ".real"
	if err := os.Rename(idx, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(moved, idx); err != nil {
		t.Fatal(err)
	}
	if _, err := IndexPathsNotOwnedBy(next, uid, uid); err == nil {
		t.Error("an index that is a symlink was followed")
	}
	_ = os.Remove(idx)
	writeFile(t, idx, "DIRC\x00\x00\x00\x02\xff\xff\xff\xffnot an index")
	if got, err := IndexPathsNotOwnedBy(next, uid, uid); err == nil || !strings.Contains(err.Error(), "index owners of") {
		t.Errorf("a garbage index gave %v, %v; want an error", got, err)
	}
}

// TestIndexEntriesReadsEveryVersion: the decoder gives the paths, uids and
// gids that `git ls-files --debug` shows, for index versions 2, 3 (an
// extended entry) and 4 (prefix-compressed paths), with a path longer than
// the 12-bit length field; a flipped byte or a SHA-256 index is an error.
func TestIndexEntriesReadsEveryVersion(t *testing.T) {
	tr := newTestRepo(t)
	blob := tr.git("hash-object", "-w", "a.txt")
	long := strings.Repeat("deep/", 900) + "leaf.txt" // 4,508 bytes
	for _, p := range []string{"dir/x.txt", "dir/y.txt", "dir/sub/z.txt", long} {
		tr.git("update-index", "--add", "--cacheinfo", "100644,"+blob+","+p)
	}
	tr.git("update-index", "--skip-worktree", "b.txt")
	for _, version := range []string{"2", "3", "4"} {
		if version == "2" {
			tr.git("update-index", "--no-skip-worktree", "b.txt")
		} else {
			tr.git("update-index", "--skip-worktree", "b.txt")
		}
		tr.git("update-index", "--index-version", version)
		var want []string
		var path string
		for _, line := range strings.Split(tr.git("ls-files", "--debug"), "\n") {
			if f := strings.Fields(line); len(f) == 4 && f[0] == "uid:" {
				want = append(want, path+" "+f[1]+" "+f[3])
			} else if !strings.HasPrefix(line, " ") {
				path = line
			}
		}
		data, err := os.ReadFile(filepath.Join(tr.dir, ".git", "index"))
		if err != nil {
			t.Fatal(err)
		}
		if data[7] != version[0]-'0' {
			t.Fatalf("the index is version %d, want %s", data[7], version)
		}
		var got []string
		err = indexEntries(data, func(name []byte, uid, gid uint32) {
			got = append(got, fmt.Sprintf("%s %d %d", name, uid, gid))
		})
		if err != nil || len(got) != 7 || !slices.Equal(got, want) {
			t.Errorf("version %s: %d entries, %v; want the %d git lists:\n got %.200q\nwant %.200q", version, len(got), err, len(want), got, want)
		}
		// Cut anywhere, with a checksum that matches: an error or fewer
		// entries, never a panic or a read past the end.
		body := data[:len(data)-sha1.Size]
		for n := 12; n < len(body); n++ {
			cut := append(slices.Clip(body[:n]), make([]byte, sha1.Size)...)
			sum := sha1.Sum(cut[:n])
			copy(cut[n:], sum[:])
			_ = indexEntries(cut, func([]byte, uint32, uint32) {})
		}
		data[40] ^= 1
		if err := indexEntries(data, func([]byte, uint32, uint32) {}); err == nil || !strings.Contains(err.Error(), "checksum") {
			t.Errorf("version %s with a flipped byte: %v, want a checksum error", version, err)
		}
	}

	sha256Repo := filepath.Join(t.TempDir(), "sha256")
	runGit(t, "", nil, "init", "--quiet", "--object-format=sha256", sha256Repo)
	writeFile(t, filepath.Join(sha256Repo, "f.txt"), "f\n")
	runGit(t, sha256Repo, nil, "add", "f.txt")
	data, err := os.ReadFile(filepath.Join(sha256Repo, ".git", "index"))
	if err != nil {
		t.Fatal(err)
	}
	if err := indexEntries(data, func([]byte, uint32, uint32) {}); err == nil {
		t.Error("a SHA-256 index was read as a SHA-1 one")
	}
}
