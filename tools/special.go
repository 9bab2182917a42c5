package tools

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// specialFileError refuses a FIFO, device or socket: reading one can block
// until the activity times out (a FIFO with no writer) or never end.
type specialFileError struct {
	kind string
}

func (e *specialFileError) Error() string {
	return fmt.Sprintf("is a %s, not a regular file; read, grep and list do not open special files (they can block forever); inspect it with bash if you must", e.kind)
}

// specialKind names the kind of a non-regular, non-directory mode, or "".
func specialKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "FIFO (named pipe)"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	case m&fs.ModeIrregular != 0:
		return "irregular file"
	}
	return ""
}

// openRegular opens a regular file without ever blocking: the mode is
// checked before opening, and again on the open file, since the path may be
// swapped for a FIFO in between (O_NONBLOCK keeps that open from hanging).
func openRegular(abs string) (*os.File, error) {
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, err
	}
	if k := specialKind(fi.Mode()); k != "" {
		return nil, &specialFileError{kind: k}
	}
	f, err := os.OpenFile(abs, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	fi, err = f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if k := specialKind(fi.Mode()); k != "" {
		f.Close()
		return nil, &specialFileError{kind: k}
	}
	return f, nil
}
