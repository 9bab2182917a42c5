package gitops

import (
	"errors"
	"fmt"
)

// Sentinel errors; match them with errors.Is. The returned errors carry the
// details (paths, refs, SHAs) in their message.
var (
	// ErrNotRepository means a path is not inside a git working tree.
	ErrNotRepository = errors.New("not a git repository")
	// ErrNoCommits means the repository has no commit to start from.
	ErrNoCommits = errors.New("repository has no commits")
	// ErrUnknownRef means a revision does not name a commit.
	ErrUnknownRef = errors.New("unknown ref")
	// ErrRefMoved means a compare-and-swap ref update lost a race: the ref
	// no longer holds the expected old value.
	ErrRefMoved = errors.New("ref moved concurrently")
	// ErrBaseMoved means the user's branch is no longer where the run
	// started, so applying the result would discard their new commits.
	ErrBaseMoved = errors.New("branch moved since the run started")
	// ErrDirtyWorktree means a working tree has changes that an operation
	// would lose or collide with.
	ErrDirtyWorktree = errors.New("working tree has uncommitted changes")
	// ErrNotCheckedOut means the branch is not the one checked out in the
	// user's working tree.
	ErrNotCheckedOut = errors.New("branch is not checked out")
	// ErrNotFastForward means the new commit does not descend from the
	// branch head.
	ErrNotFastForward = errors.New("not a fast-forward")
	// ErrNotMerged means a branch holds commits not reachable from any of
	// the refs it should have been merged into.
	ErrNotMerged = errors.New("branch is not merged")
)

// kindError is an error with a complete, specific message that still
// matches a sentinel (or fs.ErrNotExist) through errors.Is.
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// errorf formats a message and ties it to kind.
func errorf(kind error, format string, args ...any) error {
	return &kindError{msg: fmt.Sprintf(format, args...), kind: kind}
}
