package tools

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// change is a planned file mutation: the complete post-image is computed in
// memory before anything touches the disk, which is what lets the journal
// record pre- and post-image hashes before applying.
type change struct {
	rel    string
	abs    string
	pre    []byte // nil when the file does not exist
	exists bool
	mode   fs.FileMode
	post   []byte
	result Result
}

type writeArgs struct {
	Path    string `json:"path"`
	Content string `json:"content"`
}

type editSpec struct {
	OldString  string   `json:"old_string"`
	NewString  string   `json:"new_string"`
	ReplaceAll flexBool `json:"replace_all"`
}

type editArgs struct {
	Path string `json:"path"`
	editSpec
}

type multiEditArgs struct {
	Path  string     `json:"path"`
	Edits []editSpec `json:"edits"`
}

// plan computes the change for write, edit or multiedit. On failure it
// returns a nil change and the error Result.
func (t *toolbox) plan(ctx context.Context, name, arguments string) (*change, Result) {
	switch name {
	case ToolWrite:
		return t.planWrite(ctx, arguments)
	case ToolEdit:
		return t.planEdit(ctx, arguments)
	default:
		return t.planMultiEdit(ctx, arguments)
	}
}

// load resolves a writable path and reads its current content: only a
// regular file (a FIFO or device is refused without blocking) of at most
// MaxFileBytes, read in chunks that stop when ctx is done.
func (t *toolbox) load(ctx context.Context, tool, p string) (*change, *Result) {
	fail := func(format string, args ...any) (*change, *Result) {
		res := errorf(format, args...)
		return nil, &res
	}
	tg, err := t.box.resolveWritable(p)
	if err != nil {
		return fail("%s: %v", tool, err)
	}
	ch := &change{rel: tg.rel, abs: tg.abs, mode: 0o644}
	fi, err := os.Stat(tg.abs)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return ch, nil
	case err != nil:
		return fail("%s %s: %v", tool, p, err)
	case fi.IsDir():
		return fail("%s: %s is a directory, not a file", tool, p)
	}
	f, err := openRegular(tg.abs)
	var special *specialFileError
	if errors.As(err, &special) {
		return fail("%s: %s is a %s, not a regular file; %s only changes regular files (a special file can block forever); remove it with bash first if you mean to replace it",
			tool, p, special.kind, tool)
	}
	if err != nil {
		return fail("%s %s: %v", tool, p, err)
	}
	defer f.Close()
	if size := fileSize(f); size > int64(t.opts.MaxFileBytes) {
		return fail("%s: %s is %d bytes, over the %d-byte limit for files the file tools load (tools.max_file_bytes); change it with bash (e.g. sed, or truncate/rm to replace it)",
			tool, p, size, t.opts.MaxFileBytes)
	}
	// The size may have grown since fstat: never load more than the cap.
	if ch.pre, err = readCapped(ctx, f, int64(t.opts.MaxFileBytes)+1); err != nil {
		return fail("%s %s: %v", tool, p, err)
	}
	if len(ch.pre) > t.opts.MaxFileBytes {
		return fail("%s: %s grew over the %d-byte limit (tools.max_file_bytes) while being read; change it with bash", tool, p, t.opts.MaxFileBytes)
	}
	ch.exists, ch.mode = true, fi.Mode().Perm()
	return ch, nil
}

// tooBig is the error for a post-image over the cap.
func (t *toolbox) tooBig(tool, p string, size int) Result {
	return errorf("%s: the result would be %d bytes, over the %d-byte limit for files the file tools write (tools.max_file_bytes); nothing was changed; write smaller files, or generate big ones with bash",
		tool, size, t.opts.MaxFileBytes)
}

func (t *toolbox) planWrite(ctx context.Context, arguments string) (*change, Result) {
	var a writeArgs
	if res := decodeArgs(ToolWrite, arguments, &a, "path", "content"); res != nil {
		return nil, *res
	}
	if len(a.Content) > t.opts.MaxFileBytes {
		return nil, t.tooBig(ToolWrite, a.Path, len(a.Content))
	}
	ch, res := t.load(ctx, ToolWrite, a.Path)
	if res != nil {
		return nil, *res
	}
	ch.post = []byte(a.Content)
	verb := "Created"
	if ch.exists {
		verb = "Overwrote"
	}
	ch.result = Result{
		Output:       fmt.Sprintf("%s %s (%d bytes written)", verb, ch.rel, len(ch.post)),
		FilesChanged: []string{ch.rel},
	}
	return ch, Result{}
}

func (t *toolbox) planEdit(ctx context.Context, arguments string) (*change, Result) {
	var a editArgs
	if res := decodeArgs(ToolEdit, arguments, &a, "path", "old_string", "new_string"); res != nil {
		return nil, *res
	}
	ch, res := t.loadExisting(ctx, ToolEdit, a.Path)
	if res != nil {
		return nil, *res
	}
	post, n, err := applyEdit(string(ch.pre), a.editSpec, t.opts.MaxFileBytes)
	if size, big := errTooBig(err); big {
		return nil, t.tooBig(ToolEdit, a.Path, size)
	}
	if err != nil {
		return nil, errorf("edit %s: %v", a.Path, err)
	}
	ch.post = []byte(post)
	ch.result = Result{
		Output:       fmt.Sprintf("Edited %s: replaced %d occurrence(s)%s", ch.rel, n, firstChangeNote(string(ch.pre), post)),
		FilesChanged: []string{ch.rel},
	}
	return ch, Result{}
}

func (t *toolbox) planMultiEdit(ctx context.Context, arguments string) (*change, Result) {
	var a multiEditArgs
	if res := decodeArgs(ToolMultiEdit, arguments, &a, "path", "edits"); res != nil {
		return nil, *res
	}
	if len(a.Edits) == 0 {
		return nil, errorf("multiedit: edits is empty; give at least one {old_string, new_string}")
	}
	ch, res := t.loadExisting(ctx, ToolMultiEdit, a.Path)
	if res != nil {
		return nil, *res
	}
	content, total := string(ch.pre), 0
	for i, e := range a.Edits {
		if err := ctx.Err(); err != nil {
			return nil, errorf("multiedit %s: stopped: %v; nothing was changed", a.Path, err)
		}
		next, n, err := applyEdit(content, e, t.opts.MaxFileBytes)
		if size, big := errTooBig(err); big {
			return nil, t.tooBig(ToolMultiEdit, a.Path, size)
		}
		if err != nil {
			return nil, errorf("multiedit %s: edits[%d] (of %d) failed: %v; no edit was applied, the file is unchanged (later edits see the result of earlier ones)",
				a.Path, i, len(a.Edits), err)
		}
		content, total = next, total+n
	}
	ch.post = []byte(content)
	ch.result = Result{
		Output: fmt.Sprintf("Edited %s: applied %d edit(s), %d replacement(s)%s",
			ch.rel, len(a.Edits), total, firstChangeNote(string(ch.pre), content)),
		FilesChanged: []string{ch.rel},
	}
	return ch, Result{}
}

// loadExisting is load for tools that need the file to exist already.
func (t *toolbox) loadExisting(ctx context.Context, tool, p string) (*change, *Result) {
	ch, res := t.load(ctx, tool, p)
	if res != nil {
		return nil, res
	}
	if !ch.exists {
		r := errorf("%s: %s does not exist; create it with write, or find the right path with glob", tool, p)
		return nil, &r
	}
	return ch, nil
}

// postTooBigError reports that an edit's result would exceed the cap; it
// is found before the result is built.
type postTooBigError struct{ size int }

func (e *postTooBigError) Error() string { return fmt.Sprintf("result of %d bytes is too big", e.size) }

func errTooBig(err error) (int, bool) {
	var big *postTooBigError
	if errors.As(err, &big) {
		return big.size, true
	}
	return 0, false
}

// applyEdit replaces old_string in content, returning the new content and
// the number of replacements. A result over maxBytes is refused before it
// is built (replace_all of a short string can multiply a file's size).
func applyEdit(content string, e editSpec, maxBytes int) (string, int, error) {
	if e.OldString == "" {
		return "", 0, errors.New("old_string is empty; quote the exact text to replace (use write to replace a whole file)")
	}
	if e.OldString == e.NewString {
		return "", 0, errors.New("old_string and new_string are identical; nothing would change")
	}
	n, all := strings.Count(content, e.OldString), bool(e.ReplaceAll)
	switch {
	case n == 0:
		return "", 0, fmt.Errorf("old_string not found in the file%s", notFoundHint(content, e.OldString))
	case n > 1 && !all:
		return "", 0, fmt.Errorf("old_string occurs %d times; include more surrounding lines to make it unique, or set replace_all to true", n)
	}
	if !all {
		n = 1
	}
	if size := len(content) + n*(len(e.NewString)-len(e.OldString)); size > maxBytes {
		return "", 0, &postTooBigError{size: size}
	}
	switch {
	case all:
		return strings.ReplaceAll(content, e.OldString, e.NewString), n, nil
	default:
		return strings.Replace(content, e.OldString, e.NewString, 1), 1, nil
	}
}

// firstChangeNote names the first line that differs, so the model can
// re-read around it.
func firstChangeNote(before, after string) string {
	i := 0
	for i < len(before) && i < len(after) && before[i] == after[i] {
		i++
	}
	return fmt.Sprintf(" (first change at line %d)", strings.Count(after[:i], "\n")+1)
}
