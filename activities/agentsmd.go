package activities

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"go.temporal.io/sdk/activity"

	"codeswarm/tools"
)

// agentsMDReadCap bounds how much of AGENTS.md is read at all; the prompt
// then keeps at most agentsMDCap bytes of it.
const agentsMDReadCap = 64 << 10

// agentsMD returns the worktree's AGENTS.md for the system prompt: read
// without following symlinks (the model may have committed one to
// /proc/self/environ, /dev/zero or the worker's config), only a regular
// file inside the worktree, at most agentsMDReadCap bytes, scrubbed, and
// cut to agentsMDCap. A refused or unreadable file is a logged warning and
// no project instructions, never a failed subtask.
func (a *Activities) agentsMD(ctx context.Context, dir string) string {
	data, truncated, err := tools.ReadBeneath(ctx, dir, "AGENTS.md", agentsMDReadCap)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			activity.GetLogger(ctx).Warn("AGENTS.md not used", "worktree", dir, "error", a.scrub(err.Error()))
		}
		return ""
	}
	text := capText(a.scrub(string(data)), agentsMDCap)
	if truncated {
		text += fmt.Sprintf("\n[AGENTS.md is larger than %d KiB; only its first %d KiB were read]", agentsMDReadCap>>10, agentsMDReadCap>>10)
	}
	return text
}
