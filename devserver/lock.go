package devserver

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// dbLock is the exclusive lock a server holds on its SQLite file for its
// lifetime, in <db>.lock: two servers writing one database corrupted it
// (a second demo's server found and replaced the first's file).
type dbLock struct{ f *os.File }

// ErrDBInUse is the error of a server whose database another server holds.
var ErrDBInUse = errors.New("database in use by another Temporal server")

// lockDB takes the lock of the SQLite file dbPath, or fails at once naming
// the holder's pid.
func lockDB(dbPath string) (*dbLock, error) {
	abs, err := filepath.Abs(dbPath)
	if err != nil {
		return nil, fmt.Errorf("devserver: database path %s: %w", dbPath, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return nil, fmt.Errorf("devserver: create directory for database %s: %w", abs, err)
	}
	path := abs + ".lock"
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("devserver: open lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := "another process"
		if b, rerr := os.ReadFile(path); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
				holder = "process " + strconv.Itoa(pid)
			}
		}
		_ = f.Close()
		return nil, fmt.Errorf("devserver: %w: %s holds %s (lock %s); stop it, or point embedded.db_path elsewhere", ErrDBInUse, holder, abs, path)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dbLock{f: f}, nil
}

// release gives the lock up; the file stays (removing it would race with a
// server that just opened it).
func (l *dbLock) release() {
	if l == nil {
		return
	}
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	_ = l.f.Close()
}
