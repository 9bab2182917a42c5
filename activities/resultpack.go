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

// keptPackThreshold is the size of the kept worktrees' JSON above which a
// run's result carries them packed: a run whose 10,000 sub-agents all
// failed keeps 10,000 worktrees, about 480 kB of paths, 50 kB gzipped.
const keptPackThreshold = 64 << 10

// Pack returns r with its subtask results packed (gzip-compressed JSON in
// SubtaskResultsPacked) when their JSON passes resultPackThreshold, and its
// kept worktrees (in KeptWorktreesPacked) when theirs passes
// keptPackThreshold, else r itself.
func (r SwarmResult) Pack() (SwarmResult, error) {
	packed, err := packJSON(r.SubtaskResults, resultPackThreshold)
	if err != nil {
		return r, err
	}
	if packed != nil {
		r.SubtaskResults, r.SubtaskResultsPacked = nil, packed
	}
	if packed, err = packJSON(r.KeptWorktrees, keptPackThreshold); err != nil {
		return r, err
	}
	if packed != nil {
		r.KeptWorktrees, r.KeptWorktreesPacked = nil, packed
	}
	return r, nil
}

// packJSON is v as gzip-compressed JSON when its JSON passes threshold,
// else nil.
func packJSON(v any, threshold int) ([]byte, error) {
	plain, err := json.Marshal(v)
	if err != nil || len(plain) <= threshold {
		return nil, err
	}
	return Gzip(plain)
}

// Unpack restores what Pack packed; a result without packed parts is left
// as it is.
func (r *SwarmResult) Unpack() error {
	if len(r.SubtaskResultsPacked) > 0 {
		var subs []SubtaskResult
		if err := unpackJSON(r.SubtaskResultsPacked, &subs); err != nil {
			return fmt.Errorf("run result: packed subtask results: %w", err)
		}
		r.SubtaskResults, r.SubtaskResultsPacked = subs, nil
	}
	if len(r.KeptWorktreesPacked) > 0 {
		var kept []string
		if err := unpackJSON(r.KeptWorktreesPacked, &kept); err != nil {
			return fmt.Errorf("run result: packed kept worktrees: %w", err)
		}
		r.KeptWorktrees, r.KeptWorktreesPacked = kept, nil
	}
	return nil
}

// unpackJSON undoes packJSON into v.
func unpackJSON(packed []byte, v any) error {
	plain, err := Gunzip(packed)
	if err != nil {
		return err
	}
	return json.Unmarshal(plain, v)
}
