package activities

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
)

// resultPackThreshold is the size of the subtask results' JSON above which
// a run's result carries them packed: Temporal refuses a payload over 2 MB
// (the workflow task that returns it fails, again and again), and 10,000
// subtasks' results are about 3 MB of repetitive JSON, a tenth of that
// gzipped. Below it the result stays readable as it is in the Web UI.
const resultPackThreshold = 512 << 10

// Gzip compresses plain. The gzip header has no name or time, so the same
// input always packs the same (workflow code calls it).
func Gzip(plain []byte) ([]byte, error) {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(plain); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Gunzip undoes Gzip.
func Gunzip(packed []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(packed))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

// Pack returns r with its subtask results packed (gzip-compressed JSON in
// SubtaskResultsPacked) when their JSON passes resultPackThreshold, else r
// itself.
func (r SwarmResult) Pack() (SwarmResult, error) {
	plain, err := json.Marshal(r.SubtaskResults)
	if err != nil || len(plain) <= resultPackThreshold {
		return r, err
	}
	packed, err := Gzip(plain)
	if err != nil {
		return r, err
	}
	r.SubtaskResults, r.SubtaskResultsPacked = nil, packed
	return r, nil
}

// Unpack restores subtask results Pack packed; a result without packed
// ones is left as it is.
func (r *SwarmResult) Unpack() error {
	if len(r.SubtaskResultsPacked) == 0 {
		return nil
	}
	plain, err := Gunzip(r.SubtaskResultsPacked)
	if err != nil {
		return fmt.Errorf("run result: packed subtask results: %w", err)
	}
	var subs []SubtaskResult
	if err := json.Unmarshal(plain, &subs); err != nil {
		return fmt.Errorf("run result: packed subtask results: %w", err)
	}
	r.SubtaskResults, r.SubtaskResultsPacked = subs, nil
	return nil
}
