package tlog

import (
	"context"
	"errors"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestCancelledHeartbeatIsDebug: the SDK's warning about a heartbeat cut
// short by a stopping worker is logged at debug level; other warnings,
// and that one with another error, stay warnings.
func TestCancelledHeartbeatIsDebug(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	l := New(zap.New(core))
	l.Warn("RecordActivityHeartbeat with error", "ActivityType", "WatchHost", "Error", context.Canceled)
	l.Warn("RecordActivityHeartbeat with error", "Error", errors.New("unavailable"))
	l.Warn("something else", "Error", context.Canceled)
	got := logs.All()
	if len(got) != 3 || got[0].Level != zapcore.DebugLevel || got[1].Level != zapcore.WarnLevel || got[2].Level != zapcore.WarnLevel {
		for _, e := range got {
			t.Logf("%s %s", e.Level, e.Message)
		}
		t.Fatal("want debug, warn, warn")
	}
}
