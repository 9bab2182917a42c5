package tools

// FileOwner is the owner that files and directories the file tools create in
// a worktree must get, so that the sandboxed commands of the same sub-agent
// can change them: ok is false when files keep the worker's own identity
// (the sandbox runs commands as the worker's user, or it is off).
func (s *Sandbox) FileOwner() (uid, gid int, ok bool) {
	return -1, -1, false
}
