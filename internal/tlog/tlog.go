// Package tlog adapts a zap logger to the Temporal SDK's logger interface.
package tlog

import (
	"go.temporal.io/sdk/log"
	"go.uber.org/zap"
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

// Warn logs at warn level.
func (l *Logger) Warn(msg string, keyvals ...any) { l.s.Warnw(msg, keyvals...) }

// Error logs at error level.
func (l *Logger) Error(msg string, keyvals ...any) { l.s.Errorw(msg, keyvals...) }

// With returns a logger with fixed key-value pairs.
func (l *Logger) With(keyvals ...any) log.Logger { return &Logger{s: l.s.With(keyvals...)} }
