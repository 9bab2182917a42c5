package gitops

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// tips is what a merge reads before computing anything: the target's head
// and that commit's tree, and the commit each source names.
type tips struct {
	head     string   // "" when the target ref does not exist
	headTree string   // the tree of head
	sources  []string // one per source asked for; "" when it names no commit
}

// complete reports whether the target exists and every source resolved.
func (t tips) complete() bool {
	if t.head == "" || t.headTree == "" {
		return false
	}
	for _, s := range t.sources {
		if s == "" {
			return false
		}
	}
	return true
}

// readTips reads ref's commit and resolves each source to a commit in one
// `git cat-file --batch-command`, where a rev-parse per name costs a
// process each. The head and its tree come from a single read of the ref,
// so they belong together even while someone moves it.
func (r *Repo) readTips(ctx context.Context, ref string, sources []string) (tips, error) {
	var cmds strings.Builder
	fmt.Fprintf(&cmds, "contents %s\n", ref)
	asked := make([]bool, len(sources))
	for i, s := range sources {
		// A line is one name: an empty or multi-line name cannot be asked.
		if asked[i] = s != "" && !strings.ContainsAny(s, "\n\r"); asked[i] {
			fmt.Fprintf(&cmds, "info %s^{commit}\n", s)
		}
	}
	out, err := git(ctx, r.Root, runOpts{stdin: strings.NewReader(cmds.String())}, "cat-file", "--batch-command")
	if err != nil {
		return tips{}, fmt.Errorf("read %s and the merge sources: %w", ref, err)
	}
	return parseTips(out, asked)
}

// parseTips reads cat-file's answers: the ref's header and contents, then
// one header per source that was asked.
func parseTips(out []byte, asked []bool) (tips, error) {
	rd := bufio.NewReader(bytes.NewReader(out))
	oid, typ, body, err := readBatchObject(rd, true)
	if err != nil {
		return tips{}, err
	}
	t := tips{sources: make([]string, len(asked))}
	if typ == "commit" {
		t.head, t.headTree = oid, treeOfCommit(body)
	} else if oid != "" {
		return tips{}, fmt.Errorf("merge target is a %s, not a commit", typ)
	}
	for i := range asked {
		if !asked[i] {
			continue
		}
		if t.sources[i], _, _, err = readBatchObject(rd, false); err != nil {
			return tips{}, err
		}
	}
	return t, nil
}

// readBatchObject reads one answer of `cat-file --batch-command`: a header
// "<oid> <type> <size>", followed for a contents command by the object and
// a newline; a name that resolves to nothing is answered "<name> missing"
// (or "ambiguous"), returned as an empty oid.
func readBatchObject(rd *bufio.Reader, contents bool) (oid, typ string, body []byte, err error) {
	line, err := rd.ReadString('\n')
	if err != nil {
		return "", "", nil, fmt.Errorf("cat-file: short answer: %w", err)
	}
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return "", "", nil, errors.New("cat-file: empty answer")
	}
	if last := fields[len(fields)-1]; len(fields) != 3 || last == "missing" || last == "ambiguous" {
		return "", "", nil, nil // "<name> missing": the name may hold spaces
	}
	size, err := strconv.Atoi(fields[2])
	if err != nil {
		return "", "", nil, fmt.Errorf("cat-file: bad header %q", strings.TrimSpace(line))
	}
	if contents {
		body = make([]byte, size+1) // the object and its newline
		if _, err := io.ReadFull(rd, body); err != nil {
			return "", "", nil, fmt.Errorf("cat-file: short object: %w", err)
		}
		body = body[:size]
	}
	return fields[0], fields[1], body, nil
}

// treeOfCommit is the tree a raw commit object names on its first line.
func treeOfCommit(body []byte) string {
	first, _, _ := bytes.Cut(body, []byte("\n"))
	tree, ok := bytes.CutPrefix(first, []byte("tree "))
	if !ok {
		return ""
	}
	return string(tree)
}
