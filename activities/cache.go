package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"codeswarm/gitops"
	"codeswarm/tools"
)

// The result cache: a sub-agent whose prompt (instruction, dependencies'
// results, conflict note, AGENTS.md), base tree, model and tool set equal
// those of one that completed is not run again: its commit's tree is
// reused on the new base (gitops.ReuseTree). A planner request equal to
// one that gave a valid plan gets that plan back. Entries are keyed by
// content (cacheKeyVersion, then a fixed JSON encoding, hashed), never by
// run; they live in <workspace.root>/.cache on the repository's host, which
// the bash sandbox hides (it hides all of workspace.root but the call's
// own worktree), and each kind keeps at most MaxEntries, the least
// recently used going first.

// cacheKeyVersion starts every key's encoding: bump it when what a
// sub-agent or the planner does with the same inputs changes in a way the
// prompts, tool definitions and limits hashed here do not show.
const cacheKeyVersion = "codeswarm-cache-v2"

// cacheEntryMaxBytes caps an entry file read back: entries are small (a
// result is at most finalTextCap, a plan at most what the planner wrote),
// and a larger file is not one this code wrote.
const cacheEntryMaxBytes = 1 << 20

// DefaultCacheMaxEntries is cache.max_entries' default.
const DefaultCacheMaxEntries = 1000

// CacheDirName is the cache's directory under workspace.root. Its leading
// dot keeps it out of the run directories codeswarm lists there.
const CacheDirName = ".cache"

// ResultCache stores finished sub-agents' results and planners' answers.
// A nil *ResultCache is a cache that is off.
type ResultCache struct {
	// Dir holds agents/<key>.json and plans/<key>.json.
	Dir string
	// MaxEntries is how many entries each kind keeps (0:
	// DefaultCacheMaxEntries).
	MaxEntries int
	// now is the clock (tests).
	now func() time.Time
}

// NewResultCache is the cache under workspaceRoot.
func NewResultCache(workspaceRoot string, maxEntries int) *ResultCache {
	return &ResultCache{Dir: filepath.Join(workspaceRoot, CacheDirName), MaxEntries: maxEntries}
}

const (
	cacheKindAgent = "agents"
	cacheKindPlan  = "plans"
)

var (
	cacheKeyRE = regexp.MustCompile(`^[0-9a-f]{64}$`)
	objectRE   = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)
)

// CachedAgent is a cache hit handed to the sub-agent: its work is already
// in the worktree (as Commit, on the sub-agent's base), and what the model
// said and spent the first time.
type CachedAgent struct {
	// Commit is the commit the hit made on this sub-agent's base; From is
	// the commit it reuses the tree of.
	Commit       string   `json:"commit"`
	From         string   `json:"from"`
	Result       string   `json:"result"`
	FilesChanged []string `json:"files_changed,omitempty"`
	// FilesOmitted counts changed files beyond MaxListedPaths, not listed.
	FilesOmitted int `json:"files_changed_omitted,omitempty"`
	// Steps, ToolCalls, LLMCalls and Usage are what the first run spent:
	// this one spent nothing.
	Steps     int   `json:"steps"`
	ToolCalls int   `json:"tool_calls"`
	LLMCalls  int   `json:"llm_calls"`
	Usage     Usage `json:"usage"`
	// RunID and SubtaskID name the run that did the work.
	RunID     string `json:"run_id,omitempty"`
	SubtaskID string `json:"subtask_id,omitempty"`
}

// agentEntry is one stored sub-agent result.
type agentEntry struct {
	Version  string `json:"version"`
	Key      string `json:"key"`
	RepoRoot string `json:"repo_root"`
	Commit   string `json:"commit"`
	Tree     string `json:"tree"`
	CachedAgent
	Stored time.Time `json:"stored"`
}

// planEntry is one stored planner answer.
type planEntry struct {
	Version string    `json:"version"`
	Key     string    `json:"key"`
	Content string    `json:"content"`
	Stored  time.Time `json:"stored"`
}

// agentKeyInput is everything a sub-agent's work depends on, in a fixed
// encoding: its prompts (the system prompt with the worktree path left
// out, as that names the run), the tree it starts from, its model, its
// tools and their limits.
type agentKeyInput struct {
	Version       string     `json:"version"`
	System        string     `json:"system"`
	User          string     `json:"user"`
	NeedsWorktree bool       `json:"needs_worktree"`
	BaseTree      string     `json:"base_tree"`
	Model         string     `json:"model"`
	Tools         string     `json:"tools"`
	Limits        ToolLimits `json:"limits"`
	Env           cacheEnv   `json:"env"`
}

// cacheEnv is what of the worker's settings decides an answer beyond the
// request itself: the provider (endpoint and sampling, llm.Client.Identity),
// llm.context_tokens (what of a long conversation the model sees) and
// whether bash runs in the sandbox.
type cacheEnv struct {
	Provider      string `json:"provider"`
	ContextTokens int    `json:"context_tokens"`
	Sandbox       string `json:"sandbox"`
}

// cacheEnv is this worker's cacheEnv.
func (a *Activities) cacheEnv() cacheEnv {
	return cacheEnv{Provider: a.LLM.Identity(), ContextTokens: a.ContextTokens, Sandbox: a.sandboxMode()}
}

// cacheWorkdirPlaceholder stands for the worktree's path in the hashed
// system prompt.
const cacheWorkdirPlaceholder = "<worktree>"

// agentCacheKey is the key of a sub-agent's result.
func agentCacheKey(st Subtask, agentsMD, user, baseTree, model string, limits ToolLimits, env cacheEnv) string {
	return hashKey(agentKeyInput{
		Version:       cacheKeyVersion,
		System:        SubAgentSystemPrompt(st, cacheWorkdirPlaceholder, agentsMD),
		User:          user,
		NeedsWorktree: st.NeedsWorktree,
		BaseTree:      baseTree,
		Model:         model,
		Tools:         toolSetHash(),
		Limits:        limits,
		Env:           env,
	})
}

// planKeyInput is everything a planner's answer depends on.
type planKeyInput struct {
	Version  string `json:"version"`
	Kind     string `json:"kind"`
	System   string `json:"system"`
	User     string `json:"user"`
	Model    string `json:"model"`
	BaseTree string `json:"base_tree,omitempty"`
	Provider string `json:"provider"`
}

// planCacheKey is the key of a planner's answer: its messages (task,
// strategy, repository listing, subtask cap), model, provider (endpoint and
// sampling) and, when known, the base commit's tree.
func planCacheKey(system, user, model, baseTree, provider string) string {
	return hashKey(planKeyInput{
		Version:  cacheKeyVersion,
		Kind:     "plan",
		System:   system,
		User:     user,
		Model:    model,
		BaseTree: baseTree,
		Provider: provider,
	})
}

func hashKey(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // plain structs of strings and numbers
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// toolSetHash names the tools the model is offered, by their definitions.
func toolSetHash() string {
	b, _ := json.Marshal(tools.Definitions())
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// lookupAgent returns the stored result of key whose commit still exists
// in the repository at root with the tree the entry names; anything else
// is a miss.
func (c *ResultCache) lookupAgent(ctx context.Context, root, key string) (agentEntry, bool) {
	if c == nil {
		return agentEntry{}, false
	}
	var e agentEntry
	if err := c.read(cacheKindAgent, key, &e); err != nil {
		return agentEntry{}, false
	}
	if e.Version != cacheKeyVersion || e.Key != key || !objectRE.MatchString(e.Commit) || !objectRE.MatchString(e.Tree) ||
		len(e.Result) > finalTextCap+1024 || len(e.FilesChanged) > 100000 {
		return agentEntry{}, false
	}
	if tree, err := treeOf(ctx, root, e.Commit); err != nil || tree != e.Tree {
		return agentEntry{}, false
	}
	return e, true
}

// storeAgent records a completed sub-agent's commit under key. It adds no
// ref to the repository (codeswarm writes only its own branches there): the
// sub-agent's branch keeps the commit reachable until `codeswarm clean`, and
// after that a lookup hits only while git has not pruned it.
func (c *ResultCache) storeAgent(ctx context.Context, root, key string, e agentEntry) error {
	if !cacheKeyRE.MatchString(key) {
		return fmt.Errorf("cache key %q is not a sha256", key)
	}
	tree, err := treeOf(ctx, root, e.Commit)
	if err != nil {
		return fmt.Errorf("cache: tree of %s: %w", e.Commit, err)
	}
	e.Version, e.Key, e.RepoRoot, e.Tree, e.Stored = cacheKeyVersion, key, root, tree, c.clock().UTC()
	if err := c.write(cacheKindAgent, key, e); err != nil {
		return err
	}
	c.evict(cacheKindAgent)
	return nil
}

// lookupPlan returns the planner answer stored under key.
func (c *ResultCache) lookupPlan(key string) (string, bool) {
	if c == nil {
		return "", false
	}
	var e planEntry
	if err := c.read(cacheKindPlan, key, &e); err != nil {
		return "", false
	}
	if e.Version != cacheKeyVersion || e.Key != key || strings.TrimSpace(e.Content) == "" {
		return "", false
	}
	return e.Content, true
}

// storePlan records a planner answer that gave a valid plan.
func (c *ResultCache) storePlan(key, content string) error {
	if c == nil {
		return nil
	}
	if err := c.write(cacheKindPlan, key, planEntry{
		Version: cacheKeyVersion,
		Key:     key,
		Content: content,
		Stored:  c.clock().UTC(),
	}); err != nil {
		return err
	}
	c.evict(cacheKindPlan)
	return nil
}

// treeOf is the tree of commit in the repository at root.
func treeOf(ctx context.Context, root, commit string) (string, error) {
	out, err := gitops.Run(ctx, root, "rev-parse", "--verify", "--quiet", "--end-of-options", commit+"^{tree}")
	if err != nil {
		return "", err
	}
	t := strings.TrimSpace(out)
	if !objectRE.MatchString(t) {
		return "", errors.New("no tree")
	}
	return t, nil
}
