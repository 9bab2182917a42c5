package tools

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"
)

const (
	readDefaultLimit = 2000
	readMaxLineChars = 2000
	binarySniffBytes = 8 << 10
)

type readArgs struct {
	Path   string  `json:"path"`
	Offset flexInt `json:"offset"`
	Limit  flexInt `json:"limit"`
}

func (t *toolbox) read(ctx context.Context, arguments string) Result {
	var a readArgs
	if res := decodeArgs(ToolRead, arguments, &a, "path"); res != nil {
		return *res
	}
	tg, err := t.box.resolve(a.Path)
	if err != nil {
		return errorf("read: %v", err)
	}
	if a.Offset.set && a.Offset.v < 1 {
		return errorf("read: offset %d is invalid; lines are numbered from 1", a.Offset.v)
	}
	if a.Limit.set && a.Limit.v < 1 {
		return errorf("read: limit %d is invalid; give at least 1", a.Limit.v)
	}
	f, res, ok := openText(tg, a.Path)
	if !ok {
		return res
	}
	defer f.Close()
	if size := fileSize(f); size > int64(t.opts.MaxFileBytes) && !a.Offset.set && !a.Limit.set {
		return errorf("read: %s is %d bytes, over the %d-byte limit (tools.max_file_bytes); read it in parts with offset and limit, or search it with grep",
			a.Path, size, t.opts.MaxFileBytes)
	}
	offset, limit := 1, readDefaultLimit
	if a.Offset.set {
		offset = a.Offset.v
	}
	if a.Limit.set {
		limit = a.Limit.v
	}
	out, err := numberLines(ctxReader{ctx, f}, a.Path, offset, limit)
	if err != nil {
		return errorf("read %s: %v", a.Path, err)
	}
	return Result{Output: out}
}

// openText opens a regular, non-binary file for reading.
func openText(tg target, shown string) (*os.File, Result, bool) {
	fi, err := os.Stat(tg.abs)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, errorf("read: %s does not exist; use glob or list to find the right path", shown), false
	case err != nil:
		return nil, errorf("read %s: %v", shown, err), false
	case fi.IsDir():
		return nil, errorf("read: %s is a directory; use list to see its entries", shown), false
	}
	f, err := openRegular(tg.abs)
	if err != nil {
		return nil, errorf("read: %s %v", shown, err), false
	}
	head := make([]byte, binarySniffBytes)
	n, _ := io.ReadFull(f, head)
	if bytes.IndexByte(head[:n], 0) >= 0 {
		f.Close()
		return nil, errorf("read: %s looks binary (NUL byte in its first 8 KiB); inspect it with bash (e.g. `file` or `xxd | head`) instead", shown), false
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, errorf("read %s: %v", shown, err), false
	}
	return f, Result{}, true
}

// ctxReader stops a read (of a huge, possibly sparse file) once ctx is
// done: each Read is at most one buffer, so the check runs between chunks.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func fileSize(f *os.File) int64 {
	fi, err := f.Stat()
	if err != nil {
		return 0
	}
	return fi.Size()
}

// numberLines streams r and formats lines offset..offset+limit-1 like
// `cat -n`, then counts the remaining lines for the paging note.
func numberLines(r io.Reader, shown string, offset, limit int) (string, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var b strings.Builder
	n, shownLines, more := 0, 0, 0
	var line []byte
	for {
		var cut bool
		var err error
		line, cut, err = readLine(br, readMaxLineChars, line)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", err
		}
		n++
		switch {
		case n < offset:
		case shownLines < limit:
			shownLines++
			fmt.Fprintf(&b, "%6d\t%s", n, line)
			if cut {
				b.WriteString(" [... line truncated]")
			}
			b.WriteByte('\n')
		default:
			more++
		}
	}
	switch {
	case n == 0:
		return fmt.Sprintf("(%s is empty)\n", shown), nil
	case offset > n:
		return "", fmt.Errorf("offset %d is past the end of the file, which has %d lines", offset, n)
	case more > 0:
		fmt.Fprintf(&b, "... %d more lines; use offset=%d to read on\n", more, offset+shownLines)
	}
	return b.String(), nil
}

// readLine returns the next line without its line ending, keeping at most
// maxChars runes so a gigantic line never sits in memory whole. The line is
// built in buf's storage, which callers reuse across lines. err is io.EOF
// only when no line remains.
func readLine(br *bufio.Reader, maxChars int, buf []byte) ([]byte, bool, error) {
	limit := maxChars*utf8.UTFMax + 2 // room for "\r\n"
	buf = buf[:0]
	dropped := false
	for {
		chunk, err := br.ReadSlice('\n')
		room := limit - len(buf)
		if len(chunk) > room {
			chunk, dropped = chunk[:max(room, 0)], true
		}
		buf = append(buf, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil && !(errors.Is(err, io.EOF) && (len(buf) > 0 || dropped)) {
			return nil, false, err
		}
		line, cut := finishLine(buf, maxChars)
		return line, cut || dropped, nil
	}
}

// finishLine strips the line ending and cuts to maxChars runes.
func finishLine(buf []byte, maxChars int) ([]byte, bool) {
	buf = bytes.TrimSuffix(buf, []byte("\n"))
	buf = bytes.TrimSuffix(buf, []byte("\r"))
	i, n := 0, 0
	for i < len(buf) && n < maxChars {
		_, size := utf8.DecodeRune(buf[i:])
		i += size
		n++
	}
	return buf[:i], i < len(buf)
}
