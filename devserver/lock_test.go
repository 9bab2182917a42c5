package devserver

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestSecondServerOnSameDBRefused: a second server on a database another
// one holds fails at once, naming the holder; once the first stops, the
// database can be opened again.
func TestSecondServerOnSameDBRefused(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "temporal.db")
	opts := Options{DBPath: dbPath, UIPort: -1}
	first, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("first Start: %v", err)
	}
	defer func() { _ = first.Stop() }()
	second, err := Start(context.Background(), opts)
	if err == nil {
		_ = second.Stop()
		t.Fatal("second Start on the same database succeeded")
	}
	if !errors.Is(err, ErrDBInUse) || !strings.Contains(err.Error(), "process "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("second Start: %v, want %v naming pid %d", err, ErrDBInUse, os.Getpid())
	}
	if err := first.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	third, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("Start after Stop: %v", err)
	}
	_ = third.Stop()
}

func TestLockDBReleased(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "sub", "temporal.db")
	l, err := lockDB(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockDB(dbPath); !errors.Is(err, ErrDBInUse) {
		t.Fatalf("second lock: %v, want %v", err, ErrDBInUse)
	}
	l.release()
	l2, err := lockDB(dbPath)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	l2.release()
}
