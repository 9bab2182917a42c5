package secret

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// TestWriterScrubsLogs: a logger writing through Writer leaks the key in
// neither its message nor a string, error or structured field.
func TestWriterScrubsLogs(t *testing.T) {
	var buf bytes.Buffer
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	logger := zap.New(zapcore.NewCore(enc, Writer(zapcore.AddSync(&buf), New(fakeKey)), zap.DebugLevel))
	b64 := base64.StdEncoding.EncodeToString([]byte("Authorization: " + fakeKey))
	logger.Info("calling with "+fakeKey,
		zap.String("header", "Bearer "+fakeKey),
		zap.Error(errors.New("upstream said "+b64)),
		zap.Any("request", map[string]string{"key": fakeKey}))
	out := buf.String()
	if strings.Contains(out, fakeKey) || strings.Contains(out, b64[24:48]) {
		t.Errorf("log line leaks the key:\n%s", out)
	}
	if strings.Count(out, Redacted) != 4 || !strings.HasSuffix(out, "\n") {
		t.Errorf("want 4 redactions in one whole line, got:\n%s", out)
	}
	var plain bytes.Buffer
	if _, err := Writer(zapcore.AddSync(&plain), New()).Write([]byte(fakeKey)); err != nil || plain.String() != fakeKey {
		t.Errorf("a writer with nothing to scrub wrote %q, %v", plain.String(), err)
	}
}
