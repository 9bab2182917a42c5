package devserver

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// LogFileName is the name of the server's log file in its state directory.
const LogFileName = "temporal-server.log"

// maxLogSize is the size above which the log is moved to <file>.1 at start,
// replacing the one before: the file grows only for as long as one server
// runs, and the previous run's log stays for a look after a crash.
const maxLogSize = 4 << 20

// logFile is the file the server logs to, when Options.LogFile is set.
type logFile struct {
	f *os.File
}

// openLogFile opens path for appending, first moving it to path.1 when it
// is larger than maxLogSize.
func openLogFile(path string) (*logFile, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("devserver: create directory for log %s: %w", path, err)
	}
	if info, err := os.Stat(path); err == nil && info.Size() > maxLogSize {
		if err := os.Rename(path, path+".1"); err != nil {
			return nil, fmt.Errorf("devserver: rotate log %s: %w", path, err)
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("devserver: open log %s: %w", path, err)
	}
	return &logFile{f: f}, nil
}

// logger is a zap logger writing lvl and above to the file, one
// human-readable line per entry.
func (l *logFile) logger(lvl zapcore.Level) *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.AddSync(l.f), lvl)
	// Late lines of stopping services hit a closed file; zap would report
	// that on stderr, the terminal this file exists to keep quiet.
	return zap.New(core, zap.ErrorOutput(zapcore.AddSync(io.Discard)))
}

// mark writes a line whatever the level, so that the file shows each start
// and stop of the server even when nothing else was logged.
func (l *logFile) mark(format string, args ...any) {
	if l == nil {
		return
	}
	_, _ = fmt.Fprintf(l.f, "%s\tcodeswarm\t%s\n", time.Now().Format("2006-01-02T15:04:05.000Z0700"), fmt.Sprintf(format, args...))
}

// close closes the file; safe on nil.
func (l *logFile) close() {
	if l == nil {
		return
	}
	_ = l.f.Close()
}
