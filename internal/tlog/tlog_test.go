package tlog

import (
	"context"
	"errors"
	"testing"

	"go.temporal.io/api/serviceerror"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestCancelledHeartbeatIsDebug: the SDK's warning about a heartbeat cut
// short by a stopping worker is logged at debug level; other warnings,
// and that one with another error, stay warnings.
func TestCancelledHeartbeatIsDebug(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	l := New(zap.New(core))
	l.Warn("RecordActivityHeartbeat with error", "ActivityType", "WatchHost", "Error", context.Canceled)
	l.Warn("RecordActivityHeartbeat with error", "ActivityType", "WatchHost", "Error", status.Error(codes.Canceled, "context canceled"))
	l.Warn("RecordActivityHeartbeat with error", "Error", serviceerror.NewCanceled("context canceled"))
	l.Warn("RecordActivityHeartbeat with error", "Error", errors.New("unavailable"))
	l.Warn("something else", "Error", context.Canceled)
	got := logs.All()
	if len(got) != 5 || got[0].Level != zapcore.DebugLevel || got[1].Level != zapcore.DebugLevel || got[2].Level != zapcore.DebugLevel ||
		got[3].Level != zapcore.WarnLevel || got[4].Level != zapcore.WarnLevel {
		for _, e := range got {
			t.Logf("%s %s", e.Level, e.Message)
		}
		t.Fatal("want debug, debug, debug, warn, warn")
	}
}

// TestStoppedPostprocessIsDebug: the SDK's error about an activity result it
// could not finish because its worker stopped is debug; other errors stay.
func TestStoppedPostprocessIsDebug(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	l := New(zap.New(core))
	l.Error("Activity task postprocess error: context canceled", "ActivityType", "AgentStep")
	l.Error("Activity task postprocess error: payload too large")
	l.Error("something else: context canceled")
	got := logs.All()
	if len(got) != 3 || got[0].Level != zapcore.DebugLevel || got[1].Level != zapcore.ErrorLevel || got[2].Level != zapcore.ErrorLevel {
		for _, e := range got {
			t.Logf("%s %s", e.Level, e.Message)
		}
		t.Fatal("want debug, error, error")
	}
}
