package gitops

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"codeswarm/internal/textcut"
)

// Identity of every commit codeswarm makes, so automated commits never
// depend on (or fail for lack of) the user's configured identity.
const (
	identityName  = "codeswarm"
	identityEmail = "codeswarm@localhost"
)

// maxStderr bounds how much of git's stderr goes into an error message.
const maxStderr = 2000

// gitError reports a git command that exited non-zero. Callers that expect a
// particular status (merge-tree's 1 = conflicts) read it with exitCode.
type gitError struct {
	args   []string
	code   int
	stderr string
}

func (e *gitError) Error() string {
	return fmt.Sprintf("git %s: exit status %d: %s", strings.Join(e.args, " "), e.code, e.stderr)
}

// exitCode returns git's exit status carried by err, or -1 if err is not a
// git exit status (nil, cancelled context, git missing).
func exitCode(err error) int {
	var ge *gitError
	if errors.As(err, &ge) {
		return ge.code
	}
	return -1
}

// runOpts are the rarely needed extras of a git invocation.
type runOpts struct {
	stdin    io.Reader
	identity bool // run as codeswarm's identity (commits, reflogs)
	// gitDir, when set, is passed with --git-dir, and dir as the work
	// tree, so git does not discover the repository from dir's contents.
	gitDir string
}

// git runs `git -C dir args...` and returns its stdout. On a non-zero exit it
// returns the stdout so far together with a *gitError.
func git(ctx context.Context, dir string, opts runOpts, args ...string) ([]byte, error) {
	cfg := configArgs()
	full := make([]string, 0, len(cfg)+len(args)+6)
	full = append(full, "--no-pager")
	full = append(full, cfg...)
	if dir != "" {
		full = append(full, "-C", dir)
	}
	if opts.gitDir != "" {
		full = append(full, "--git-dir="+opts.gitDir, "--work-tree=.")
	}
	full = append(full, args...)

	cmd := exec.CommandContext(ctx, "git", full...)
	cmd.Env = gitEnv(os.Environ(), opts.identity)
	cmd.Stdin = opts.stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr

	err := cmd.Run()
	if err == nil {
		return stdout.Bytes(), nil
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) && ctx.Err() == nil {
		return stdout.Bytes(), &gitError{
			args:   args,
			code:   exitErr.ExitCode(),
			stderr: trimStderr(stderr.String()),
		}
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("git %s: %w", args[0], ctx.Err())
	}
	return nil, fmt.Errorf("git %s: %w", args[0], err)
}

// Run runs `git -C dir args...` with the environment and config every
// codeswarm git command gets (see gitEnv and hardenedConfig) and returns its
// stdout. It is the one way to run
// git outside this package.
func Run(ctx context.Context, dir string, args ...string) (string, error) {
	out, err := git(ctx, dir, runOpts{}, args...)
	return string(out), err
}

// gitOut runs git and returns its stdout with surrounding whitespace trimmed.
func gitOut(ctx context.Context, dir string, args ...string) (string, error) {
	out, err := git(ctx, dir, runOpts{}, args...)
	return strings.TrimSpace(string(out)), err
}

func trimStderr(s string) string { return textcut.Head(strings.TrimSpace(s), maxStderr, "…") }

// splitNUL splits NUL-terminated git output (-z) into its non-empty fields.
func splitNUL(out []byte) []string {
	var fields []string
	for _, f := range strings.Split(string(out), "\x00") {
		if f != "" {
			fields = append(fields, f)
		}
	}
	return fields
}

// shortSHA abbreviates a SHA for messages.
func shortSHA(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	if sha == "" {
		return "(none)"
	}
	return sha
}
