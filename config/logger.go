package config

import (
	"fmt"
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// NewLogger builds the process logger: a human-readable, colour-less console
// encoder or a JSON encoder, at c.Level, writing to w (nil means stderr).
func NewLogger(c LogConfig, w zapcore.WriteSyncer) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	enc, err := newEncoder(c.Format)
	if err != nil {
		return nil, err
	}
	if w == nil {
		w = os.Stderr
	}
	w = zapcore.Lock(w)
	core := zapcore.NewCore(enc, w, level)
	return zap.New(core, zap.ErrorOutput(w), zap.AddCaller()), nil
}

func newEncoder(format string) (zapcore.Encoder, error) {
	switch format {
	case "json":
		ec := zap.NewProductionEncoderConfig()
		ec.EncodeTime = zapcore.ISO8601TimeEncoder
		return zapcore.NewJSONEncoder(ec), nil
	case "console":
		ec := zap.NewDevelopmentEncoderConfig()
		ec.EncodeLevel = zapcore.CapitalLevelEncoder
		return zapcore.NewConsoleEncoder(ec), nil
	default:
		return nil, fmt.Errorf("log.format: %q is not one of console, json", format)
	}
}
