// Package tlog adapts a zap logger to the Temporal SDK's logger interface.
package tlog

import (
	"context"
	"errors"
	"strings"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/log"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Logger is a Temporal log.Logger backed by zap.
type Logger struct{ s *zap.SugaredLogger }

var _ log.Logger = (*Logger)(nil)
var _ log.WithLogger = (*Logger)(nil)

// New wraps z; the caller skip makes zap report the SDK's call site.
func New(z *zap.Logger) *Logger {
	return &Logger{s: z.WithOptions(zap.AddCallerSkip(1)).Sugar()}
}

// Debug logs at debug level.
func (l *Logger) Debug(msg string, keyvals ...any) { l.s.Debugw(msg, keyvals...) }

// Info logs at info level.
func (l *Logger) Info(msg string, keyvals ...any) { l.s.Infow(msg, keyvals...) }

// Warn logs at warn level, except the SDK's report of a heartbeat cut short
// because its worker is stopping (the CLI stops its in-process worker when
// its run ends, while the run's host watch still beats): expected, so debug.
func (l *Logger) Warn(msg string, keyvals ...any) {
	if msg == "RecordActivityHeartbeat with error" && cancelledErr(keyvals) {
		l.s.Debugw(msg, keyvals...)
		return
	}
	l.s.Warnw(msg, keyvals...)
}

// cancelledErr reports whether keyvals carry Error: context.Canceled.
func cancelledErr(keyvals []any) bool {
	for i := 0; i+1 < len(keyvals); i += 2 {
		if k, ok := keyvals[i].(string); ok && k == "Error" {
			err, ok := keyvals[i+1].(error)
			var cancelled *serviceerror.Canceled
			return ok && (errors.Is(err, context.Canceled) || errors.As(err, &cancelled) || status.Code(err) == codes.Canceled)
		}
	}
	return false
}

// Error logs at error level, except the SDK's report that it could not
// finish an activity's result because its worker is stopping ("Activity
// task postprocess error: context canceled": the worker's context ends
// while an activity returns): the attempt is reported failed and retried
// by the next worker, which is expected when a CLI's worker stops, so
// debug.
func (l *Logger) Error(msg string, keyvals ...any) {
	if strings.HasPrefix(msg, "Activity task postprocess error: ") && strings.HasSuffix(msg, context.Canceled.Error()) {
		l.s.Debugw(msg, keyvals...)
		return
	}
	l.s.Errorw(msg, keyvals...)
}

// With returns a logger with fixed key-value pairs.
func (l *Logger) With(keyvals ...any) log.Logger { return &Logger{s: l.s.With(keyvals...)} }
