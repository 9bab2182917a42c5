package secret

import "io"

// WriteSyncer is an io.Writer that can flush, as zapcore.WriteSyncer.
type WriteSyncer interface {
	io.Writer
	Sync() error
}

// Writer returns w with every write scrubbed. A logger's encoder writes one
// whole entry per call, so wrapping its output catches a secret in the
// message and in any field, whatever its type.
func Writer(w WriteSyncer, s *Scrubber) WriteSyncer {
	if s.Empty() {
		return w
	}
	return &scrubWriter{w: w, s: s}
}

type scrubWriter struct {
	w WriteSyncer
	s *Scrubber
}

// Write scrubs p and reports all of p written, as callers expect of a
// successful write whose length the scrubbing changed.
func (sw *scrubWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(sw.w, sw.s.Scrub(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (sw *scrubWriter) Sync() error { return sw.w.Sync() }
