// Package tools implements the sub-agent's tools (read, write, edit,
// multiedit, glob, grep, bash, list), the sandbox that keeps them inside one
// git worktree, and a journal that makes each tool call idempotent when the
// Temporal activity running it is retried.
package tools

import (
	"context"
	"strings"
	"time"
)

// Tool names, as the model sees them. They are a contract (DESIGN.md).
const (
	ToolRead       = "read"
	ToolWrite      = "write"
	ToolEdit       = "edit"
	ToolMultiEdit  = "multiedit"
	ToolGlob       = "glob"
	ToolGrep       = "grep"
	ToolBash       = "bash"
	ToolList       = "list"
	ToolSwarmShare = "swarm_share"
)

// Defaults applied by Run when the corresponding Options field is zero.
const (
	DefaultBashTimeout       = 2 * time.Minute
	DefaultBashMaxTimeout    = 10 * time.Minute
	DefaultMaxOutputBytes    = 30_000
	DefaultHeartbeatInterval = 5 * time.Second
	// DefaultMaxFileBytes caps the files read, write, edit and multiedit
	// take into memory (tools.max_file_bytes).
	DefaultMaxFileBytes = 8 << 20
)

// toolNames lists every tool in the order Definitions returns them.
func toolNames() []string {
	return []string{
		ToolRead, ToolWrite, ToolEdit, ToolMultiEdit, ToolGlob,
		ToolGrep, ToolBash, ToolList, ToolSwarmShare,
	}
}

// Result is what the model sees for one tool call.
type Result struct {
	// Output is the text for the model, including error explanations.
	Output string `json:"output"`
	// IsError reports that the call failed; Output says why and what to do.
	IsError bool `json:"is_error"`
	// FilesChanged lists worktree-relative, slash-separated paths written
	// by write, edit or multiedit.
	FilesChanged []string `json:"files_changed,omitempty"`
}

// Options configures one tool call.
type Options struct {
	// Root is the absolute worktree path; no file tool reaches outside it.
	Root string
	// BashTimeout is the bash timeout when the model asks for none
	// (default DefaultBashTimeout).
	BashTimeout time.Duration
	// BashMaxTimeout caps a model-requested bash timeout
	// (default DefaultBashMaxTimeout).
	BashMaxTimeout time.Duration
	// MaxOutputBytes caps bash and grep output; bash keeps head and tail
	// (default DefaultMaxOutputBytes).
	MaxOutputBytes int
	// Env is the environment for bash, already passed through SanitizeEnv.
	// When nil, the worker's own environment is sanitized and used, so a nil
	// Env can never leak the worker's secrets.
	Env []string
	// Heartbeat, if set, is called periodically while bash runs.
	Heartbeat func()
	// HeartbeatInterval is the period of Heartbeat calls
	// (default DefaultHeartbeatInterval).
	HeartbeatInterval time.Duration
	// Sandbox confines bash. nil uses a default sandbox that hides the home
	// directory, so a caller that forgets it never runs commands unconfined.
	Sandbox *Sandbox
	// MaxFileBytes caps a file read, write, edit or multiedit loads, and
	// the content write or an edit would leave (default
	// DefaultMaxFileBytes): a 2 GiB sparse file must not become 2 GiB of
	// worker memory.
	MaxFileBytes int
}

// withDefaults fills zero fields with their defaults.
func (o Options) withDefaults() Options {
	if o.BashTimeout <= 0 {
		o.BashTimeout = DefaultBashTimeout
	}
	if o.BashMaxTimeout <= 0 {
		o.BashMaxTimeout = DefaultBashMaxTimeout
	}
	if o.MaxOutputBytes <= 0 {
		o.MaxOutputBytes = DefaultMaxOutputBytes
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if o.MaxFileBytes <= 0 {
		o.MaxFileBytes = DefaultMaxFileBytes
	}
	if o.Sandbox == nil {
		o.Sandbox = defaultSandbox()
	}
	return o
}

// Run executes one tool call inside opts.Root. It never returns a Go error:
// every failure is an IsError Result whose Output tells the model what went
// wrong and how to recover. swarm_share is handled by the orchestrator, so
// Run refuses it.
func Run(ctx context.Context, opts Options, name, arguments string) Result {
	tb, res, ok := newToolbox(opts)
	if !ok {
		return res
	}
	return tb.run(ctx, name, arguments)
}

// toolbox is one tool call's view of the worktree.
type toolbox struct {
	opts Options
	box  sandbox
}

// newToolbox validates opts; on failure it returns the error Result.
func newToolbox(opts Options) (*toolbox, Result, bool) {
	box, err := newSandbox(opts.Root)
	if err != nil {
		return nil, errorf("worktree is not usable: %v", err), false
	}
	return &toolbox{opts: opts.withDefaults(), box: box}, Result{}, true
}

func (t *toolbox) run(ctx context.Context, name, arguments string) Result {
	switch name {
	case ToolRead:
		return t.read(ctx, arguments)
	case ToolWrite, ToolEdit, ToolMultiEdit:
		return t.mutate(ctx, name, arguments)
	case ToolGlob:
		return t.glob(arguments)
	case ToolGrep:
		return t.grep(arguments)
	case ToolBash:
		return t.bash(ctx, arguments)
	case ToolList:
		return t.list(arguments)
	case ToolSwarmShare:
		return errorf("swarm_share is executed by the orchestrator, not by the tool runner; this call was routed wrongly")
	default:
		return errorf("unknown tool %q; valid tools are: %s", name, strings.Join(toolNames(), ", "))
	}
}

// mutate plans a write/edit/multiedit and applies it.
func (t *toolbox) mutate(ctx context.Context, name, arguments string) Result {
	ch, res := t.plan(ctx, name, arguments)
	if ch == nil {
		return res
	}
	if err := ch.apply(t.opts.Sandbox.fileOwner()); err != nil {
		return errorf("%s %s: %v", name, ch.rel, err)
	}
	return ch.result
}
