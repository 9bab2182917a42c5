package config

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func TestNewLoggerJSON(t *testing.T) {
	var buf bytes.Buffer
	log, err := NewLogger(LogConfig{Level: "warn", Format: "json"}, zapcore.AddSync(&buf))
	if err != nil {
		t.Fatalf("NewLogger: %v", err)
	}
	log.Info("hidden")
	log.Warn("shown", zap.String("run_id", "r1"))
	log.Error("also shown")
	if err := log.Sync(); err != nil {
		t.Fatal(err)
	}

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2 (info filtered):\n%s", len(lines), buf.String())
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatalf("line %q is not JSON: %v", lines[0], err)
	}
	if first["level"] != "warn" || first["msg"] != "shown" || first["run_id"] != "r1" {
		t.Errorf("entry = %v, want level warn, msg shown, run_id r1", first)
	}
	for _, key := range []string{"ts", "caller"} {
		if _, ok := first[key]; !ok {
			t.Errorf("entry has no %q: %v", key, first)
		}
	}
}

func TestNewLoggerConsole(t *testing.T) {
	var buf bytes.Buffer
	log, err := NewLogger(LogConfig{Level: "debug", Format: "console"}, zapcore.AddSync(&buf))
	if err != nil {
		t.Fatalf("NewLogger: %v", err)
	}
	log.Debug("hello")
	_ = log.Sync()

	out := buf.String()
	if !strings.Contains(out, "DEBUG") || !strings.Contains(out, "hello") {
		t.Errorf("output %q lacks level or message", out)
	}
	if strings.Contains(out, "\x1b[") {
		t.Errorf("output %q has colour escapes", out)
	}
	if json.Valid([]byte(strings.TrimSpace(out))) {
		t.Errorf("console output %q is JSON", out)
	}
}

func TestNewLoggerRejects(t *testing.T) {
	tests := []struct {
		cfg  LogConfig
		want string
	}{
		{LogConfig{Level: "loud", Format: "json"}, "log.level"},
		{LogConfig{Level: "info", Format: "xml"}, `log.format: "xml"`},
	}
	for _, tt := range tests {
		if _, err := NewLogger(tt.cfg, nil); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewLogger(%+v) error = %v, want %q", tt.cfg, err, tt.want)
		}
	}
}
