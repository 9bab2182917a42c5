package cli

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"codeswarm/devserver"
)

// serverDied is the cause a command's context is cancelled with when the
// embedded server stops under it; Execute prints it as the command's only
// error line.
type serverDied struct {
	reason  string // "" when unknown
	logPath string // "" when the server logs elsewhere
}

func (d serverDied) Error() string {
	msg := "the embedded Temporal server stopped unexpectedly"
	if d.reason != "" {
		msg += " (" + d.reason + ")"
	}
	if d.logPath != "" {
		msg += "; its log is " + d.logPath
	}
	return msg
}

// stopCommandKey keys the function that cancels the running command's
// context with a cause (set by Execute).
type stopCommandKey struct{}

// withStopCommand returns ctx with a cancel function that commands' envs
// call when their embedded server dies.
func withStopCommand(ctx context.Context) (context.Context, context.CancelCauseFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	return context.WithValue(ctx, stopCommandKey{}, cancel), cancel
}

// diedOf reports whether ctx ended because the embedded server died.
func diedOf(ctx context.Context) (serverDied, bool) {
	var d serverDied
	ok := errors.As(context.Cause(ctx), &d)
	return d, ok
}

// watchServer ends the command at once when the embedded server stops
// serving while this env still uses it: it silences the SDK's and the
// worker's logs (a dying server makes them retry, loudly, for a minute) and
// cancels the command's context with serverDied; the command returns and
// its deferred close stops the worker.
func (e *env) watchServer(ctx context.Context) {
	stop, _ := ctx.Value(stopCommandKey{}).(context.CancelCauseFunc)
	srv := e.server
	go func() {
		select {
		case <-srv.Done():
		case <-e.closing:
			return
		}
		select {
		case <-e.closing: // close stopped it
			return
		default:
		}
		d := serverDied{logPath: srv.LogFile()}
		if err := srv.Err(); err != nil && !errors.Is(err, devserver.ErrStopped) {
			d.reason = err.Error()
		}
		e.died.Store(&d)
		e.gate.muted.Store(true)
		if stop != nil {
			stop(d)
		}
	}()
}

// logGate drops the SDK's and the worker's warnings while the embedded
// server does not answer, and all their lines once it is taken for dead:
// the user sees one line saying the server stopped, not its consequences.
type logGate struct {
	server *devserver.Server // nil: nothing to gate
	muted  atomic.Bool
}

// gateProbeTimeout bounds the health check a warning waits for.
const gateProbeTimeout = 500 * time.Millisecond

// wrap routes logger through the gate.
func (g *logGate) wrap(logger *zap.Logger) *zap.Logger {
	if g.server == nil {
		return logger
	}
	return logger.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return gateCore{
			Core: c,
			g:    g,
		}
	}))
}

// drop says whether an entry is to be dropped.
func (g *logGate) drop(ent zapcore.Entry) bool {
	if g.muted.Load() {
		return true
	}
	if ent.Level < zapcore.WarnLevel {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), gateProbeTimeout)
	defer cancel()
	return g.server.Check(ctx) != nil
}

type gateCore struct {
	zapcore.Core
	g *logGate
}

func (c gateCore) With(fields []zapcore.Field) zapcore.Core {
	return gateCore{Core: c.Core.With(fields), g: c.g}
}

func (c gateCore) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(ent.Level) {
		return ce.AddCore(ent, c)
	}
	return ce
}

func (c gateCore) Write(ent zapcore.Entry, fields []zapcore.Field) error {
	if c.g.drop(ent) {
		return nil
	}
	return c.Core.Write(ent, fields)
}
