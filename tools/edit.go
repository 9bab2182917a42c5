package tools

import (
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
func (t *toolbox) plan(name, arguments string) (*change, Result) {
	switch name {
	case ToolWrite:
		return t.planWrite(arguments)
	case ToolEdit:
		return t.planEdit(arguments)
	default:
		return t.planMultiEdit(arguments)
	}
}

// load resolves a writable path and reads its current content.
func (t *toolbox) load(tool, p string) (*change, *Result) {
	tg, err := t.box.resolveWritable(p)
	if err != nil {
		res := errorf("%s: %v", tool, err)
		return nil, &res
	}
	ch := &change{rel: tg.rel, abs: tg.abs, mode: 0o644}
	fi, err := os.Stat(tg.abs)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return ch, nil
	case err != nil:
		res := errorf("%s %s: %v", tool, p, err)
		return nil, &res
	case fi.IsDir():
		res := errorf("%s: %s is a directory, not a file", tool, p)
		return nil, &res
	}
	if ch.pre, err = os.ReadFile(tg.abs); err != nil {
		res := errorf("%s %s: %v", tool, p, err)
		return nil, &res
	}
	ch.exists, ch.mode = true, fi.Mode().Perm()
	return ch, nil
}

func (t *toolbox) planWrite(arguments string) (*change, Result) {
	var a writeArgs
	if res := decodeArgs(ToolWrite, arguments, &a, "path", "content"); res != nil {
		return nil, *res
	}
	ch, res := t.load(ToolWrite, a.Path)
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

func (t *toolbox) planEdit(arguments string) (*change, Result) {
	var a editArgs
	if res := decodeArgs(ToolEdit, arguments, &a, "path", "old_string", "new_string"); res != nil {
		return nil, *res
	}
	ch, res := t.loadExisting(ToolEdit, a.Path)
	if res != nil {
		return nil, *res
	}
	post, n, err := applyEdit(string(ch.pre), a.editSpec)
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

func (t *toolbox) planMultiEdit(arguments string) (*change, Result) {
	var a multiEditArgs
	if res := decodeArgs(ToolMultiEdit, arguments, &a, "path", "edits"); res != nil {
		return nil, *res
	}
	if len(a.Edits) == 0 {
		return nil, errorf("multiedit: edits is empty; give at least one {old_string, new_string}")
	}
	ch, res := t.loadExisting(ToolMultiEdit, a.Path)
	if res != nil {
		return nil, *res
	}
	content, total := string(ch.pre), 0
	for i, e := range a.Edits {
		next, n, err := applyEdit(content, e)
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
func (t *toolbox) loadExisting(tool, p string) (*change, *Result) {
	ch, res := t.load(tool, p)
	if res != nil {
		return nil, res
	}
	if !ch.exists {
		r := errorf("%s: %s does not exist; create it with write, or find the right path with glob", tool, p)
		return nil, &r
	}
	return ch, nil
}

// applyEdit replaces old_string in content, returning the new content and
// the number of replacements.
func applyEdit(content string, e editSpec) (string, int, error) {
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
