package devserver

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestLogFile: with LogFile set the server logs there at the chosen level,
// and nothing reaches the Logger the caller gave (the user's terminal).
func TestLogFile(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	path := filepath.Join(t.TempDir(), "state", LogFileName)
	s := startServer(t, Options{UIPort: -1, Logger: zap.New(core), LogFile: path, LogLevel: "info"})
	if s.LogFile() != path {
		t.Errorf("LogFile() = %q, want %q", s.LogFile(), path)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, want := range []string{"starting the embedded Temporal server", "\tinfo\ttemporal\t", "\tcodeswarm\tstopped\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("log file lacks %q:\n%.2000s", want, text)
		}
	}
	if n := logs.Len(); n != 0 {
		t.Errorf("%d entries reached the given Logger, want none; first: %q", n, logs.All()[0].Message)
	}
}

// TestLogFileRotated: a log above maxLogSize becomes <file>.1 at start, so
// the file stays bounded and the previous run's log is kept.
func TestLogFileRotated(t *testing.T) {
	path := filepath.Join(t.TempDir(), LogFileName)
	old := []byte(strings.Repeat("x", maxLogSize+1))
	if err := os.WriteFile(path, old, 0o644); err != nil {
		t.Fatal(err)
	}
	lf, err := openLogFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lf.mark("hello")
	lf.close()
	if info, err := os.Stat(path + ".1"); err != nil || info.Size() != int64(len(old)) {
		t.Errorf("previous log not kept as .1: %v", err)
	}
	if b, _ := os.ReadFile(path); !strings.Contains(string(b), "hello") || len(b) > 200 {
		t.Errorf("new log = %q", b)
	}
}

// TestDoneWhenServerDies stops the Temporal server out from under the
// devserver: Done closes within a few seconds and Err says which service
// stopped answering.
func TestDoneWhenServerDies(t *testing.T) {
	path := filepath.Join(t.TempDir(), LogFileName)
	s := startServer(t, Options{UIPort: -1, LogFile: path})
	select {
	case <-s.Done():
		t.Fatalf("Done closed on a healthy server: %v", s.Err())
	case <-time.After(2 * healthInterval):
	}
	if err := s.Err(); err != nil {
		t.Fatalf("Err() = %v on a healthy server", err)
	}
	if err := s.SimulateCrash(); err != nil {
		t.Fatalf("stop the Temporal server: %v", err)
	}
	stopped := time.Now()
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed 10 s after the server stopped")
	}
	err := s.Err()
	t.Logf("Done %v after the stop returned: %v", time.Since(stopped), err)
	if err == nil || errors.Is(err, ErrStopped) || !strings.Contains(err.Error(), "does not answer") {
		t.Errorf("Err() = %v, want a service that does not answer", err)
	}
	if b, _ := os.ReadFile(path); !strings.Contains(string(b), "stopped answering: "+err.Error()) {
		t.Errorf("log file does not say why:\n%s", b)
	}
}

// TestDoneAfterStop: Stop closes Done with ErrStopped.
func TestDoneAfterStop(t *testing.T) {
	s := startServer(t, Options{UIPort: -1})
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	default:
		t.Fatal("Done open after Stop")
	}
	if !errors.Is(s.Err(), ErrStopped) {
		t.Errorf("Err() = %v, want ErrStopped", s.Err())
	}
}
