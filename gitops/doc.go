// Package gitops is codeswarm's git layer: per-subtask worktrees, commits,
// and a compare-and-swap merge primitive for the integration branch.
//
// Every mutating function is called from a Temporal activity that may be
// retried after a crash at any point, so each one is idempotent: a second
// call after the first one fully or partly succeeded returns the same outcome
// and never duplicates a commit, branch or merge.
//
// Everything runs through the git CLI (>= 2.38, see CheckGitVersion) rather
// than go-git. The CLI is the only implementation that reads every
// repository the user can have (reftable refs, SHA-256 objects, includeIf
// config, commit-graph), so refs, ancestry and merges mean exactly what the
// user's own git says they mean; a call costs about a millisecond (see
// BENCHMARKS.md), which is small next to the LLM calls around it.
//
// Sub-agents write the worktrees these commands run in, so no git command
// may run a program their files or config name: every one gets the
// overrides of hardenedConfig and an environment built from scratch
// (gitEnv), and a worktree's git directory is checked and named explicitly
// (worktreeGitDir). RELIABILITY.md lists the escapes this closes.
//
// The user's checked-out branch and working tree are never modified, with one
// explicit exception: FastForwardCheckedOut, used by --apply.
package gitops
