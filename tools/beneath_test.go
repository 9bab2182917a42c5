package tools

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestReadBeneath(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(outside, "secret"), []byte("outside"), 0o644))
	must(os.MkdirAll(filepath.Join(root, "docs"), 0o755))
	must(os.WriteFile(filepath.Join(root, "docs", "ok.md"), []byte("hello"), 0o644))
	must(os.WriteFile(filepath.Join(root, "big"), []byte(strings.Repeat("y", 100)), 0o644))
	must(os.Symlink(outside, filepath.Join(root, "linkdir")))
	must(os.Symlink("docs/ok.md", filepath.Join(root, "link")))
	must(syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644))
	ctx := context.Background()

	if got, cut, err := ReadBeneath(ctx, root, "docs/ok.md", 64); err != nil || cut || string(got) != "hello" {
		t.Errorf("docs/ok.md = %q, %v, %v", got, cut, err)
	}
	if got, cut, err := ReadBeneath(ctx, root, "big", 10); err != nil || !cut || len(got) != 10 {
		t.Errorf("big capped at 10 = %d bytes, truncated %v, %v", len(got), cut, err)
	}
	for _, rel := range []string{"linkdir/secret", "link", "../x", "/etc/passwd", "docs", "fifo"} {
		got, _, err := ReadBeneath(ctx, root, rel, 64)
		if err == nil {
			t.Errorf("%s read (%q), want a refusal", rel, got)
		}
	}
	if _, _, err := ReadBeneath(ctx, root, "linkdir/secret", 64); !errors.Is(err, ErrNotBeneath) {
		t.Errorf("symlinked parent: err %v, want ErrNotBeneath", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := ReadBeneath(cctx, root, "big", 64); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled read: err %v, want context.Canceled", err)
	}
}
