package activities

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestAgentCacheKeyIsTheWorkItDependsOn(t *testing.T) {
	st := Subtask{ID: "01-a", Name: "a", Instruction: "rename helper to assist"}
	limits := ToolLimits{BashTimeout: time.Minute}
	env := cacheEnv{Provider: "http://a/v1 temperature=unset", ContextTokens: 60000, Sandbox: "on"}
	base := agentCacheKey(st, "", "user prompt", "tree1", "model-a", limits, env)
	// The instruction reaches the model in the user prompt (StartSubtask
	// passes SubAgentUserPrompt's text), which the key hashes whole.
	if again := agentCacheKey(st, "", "user prompt", "tree1", "model-a", limits, env); again != base {
		t.Fatalf("the same inputs gave two keys: %s, %s", base, again)
	}
	other := st
	other.Instruction = "rename helper to help"
	otherLimits := limits
	otherLimits.BashTimeout = 2 * time.Minute
	with := func(f func(*cacheEnv)) cacheEnv {
		e := env
		f(&e)
		return e
	}
	for name, key := range map[string]string{
		"instruction":    agentCacheKey(other, "", SubAgentUserPrompt(other.Instruction, "", ""), "tree1", "model-a", limits, env),
		"subtask":        agentCacheKey(Subtask{ID: "02-b", Name: "b", Instruction: st.Instruction}, "", "user prompt", "tree1", "model-a", limits, env),
		"AGENTS.md":      agentCacheKey(st, "be terse", "user prompt", "tree1", "model-a", limits, env),
		"user prompt":    agentCacheKey(st, "", "user prompt, with a dependency's result", "tree1", "model-a", limits, env),
		"base tree":      agentCacheKey(st, "", "user prompt", "tree2", "model-a", limits, env),
		"model":          agentCacheKey(st, "", "user prompt", "tree1", "model-b", limits, env),
		"tool limits":    agentCacheKey(st, "", "user prompt", "tree1", "model-a", otherLimits, env),
		"sandbox":        agentCacheKey(st, "", "user prompt", "tree1", "model-a", limits, with(func(e *cacheEnv) { e.Sandbox = "off" })),
		"provider":       agentCacheKey(st, "", "user prompt", "tree1", "model-a", limits, with(func(e *cacheEnv) { e.Provider = "http://b/v1 temperature=unset" })),
		"context tokens": agentCacheKey(st, "", "user prompt", "tree1", "model-a", limits, with(func(e *cacheEnv) { e.ContextTokens = 0 })),
	} {
		if key == base {
			t.Errorf("a different %s gave the same key", name)
		}
	}
}

func TestPlanCacheKeyIsTheAnswerItDependsOn(t *testing.T) {
	base := planCacheKey("system", "user", "model-a", "tree1", "http://a/v1")
	for name, key := range map[string]string{
		"system":    planCacheKey("system 2", "user", "model-a", "tree1", "http://a/v1"),
		"user":      planCacheKey("system", "user 2", "model-a", "tree1", "http://a/v1"),
		"model":     planCacheKey("system", "user", "model-b", "tree1", "http://a/v1"),
		"base tree": planCacheKey("system", "user", "model-a", "tree2", "http://a/v1"),
		"provider":  planCacheKey("system", "user", "model-a", "tree1", "http://b/v1"),
	} {
		if key == base {
			t.Errorf("a different %s gave the same key", name)
		}
	}
}

func TestResultCacheStoresLooksUpAndEvicts(t *testing.T) {
	ctx := context.Background()
	repo := newGitRepo(t, map[string]string{"a.txt": "one\n"})
	head := repo.git("rev-parse", "HEAD")
	work := repo.commitOn("work", head, map[string]string{"a.txt": "two\n"})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &ResultCache{Dir: filepath.Join(t.TempDir(), CacheDirName), MaxEntries: 2, now: func() time.Time { return now }}
	key := func(s string) string { return hashKey(s) }

	if _, ok := c.lookupAgent(ctx, repo.dir, key("k1")); ok {
		t.Fatal("a hit in an empty cache")
	}
	entry := agentEntry{Commit: work, CachedAgent: CachedAgent{Result: "done\nSTATUS: completed", Steps: 3}}
	if err := c.storeAgent(ctx, repo.dir, key("k1"), entry); err != nil {
		t.Fatal(err)
	}
	got, ok := c.lookupAgent(ctx, repo.dir, key("k1"))
	if !ok || got.Commit != work || got.Result != entry.Result || got.Steps != 3 || got.Tree != repo.git("rev-parse", work+"^{tree}") {
		t.Fatalf("lookup after store = %+v, %v", got, ok)
	}
	// The repository gets no ref of the cache's (codeswarm writes only its
	// own branches there).
	if refs := repo.git("for-each-ref", "--format=%(refname)"); refs != "refs/heads/main\nrefs/heads/work" {
		t.Errorf("refs after a store:\n%s", refs)
	}

	// Three entries in a cache of two: the least recently used goes. k1
	// is read (used) after k2 was stored, so k2 is the oldest when k3 comes.
	now = now.Add(time.Minute)
	if err := c.storeAgent(ctx, repo.dir, key("k2"), entry); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	if _, ok := c.lookupAgent(ctx, repo.dir, key("k1")); !ok {
		t.Fatal("k1 gone before the cache was full")
	}
	now = now.Add(time.Minute)
	if err := c.storeAgent(ctx, repo.dir, key("k3"), entry); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]bool{"k1": true, "k2": false, "k3": true} {
		if _, ok := c.lookupAgent(ctx, repo.dir, key(k)); ok != want {
			t.Errorf("%s present = %v after eviction, want %v", k, ok, want)
		}
	}
	// A stored commit git has pruned is a miss.
	repo.git("update-ref", "-d", "refs/heads/work")
	repo.git("reflog", "expire", "--expire=now", "--all")
	repo.git("gc", "--quiet", "--prune=now")
	if _, ok := c.lookupAgent(ctx, repo.dir, key("k1")); ok {
		t.Error("a hit on a commit the repository no longer holds")
	}
}

func TestResultCacheIgnoresPlantedEntries(t *testing.T) {
	ctx := context.Background()
	repo := newGitRepo(t, map[string]string{"a.txt": "one\n"})
	head := repo.git("rev-parse", "HEAD")
	c := &ResultCache{Dir: filepath.Join(t.TempDir(), CacheDirName)}
	k := hashKey("planted")
	dir := filepath.Join(c.Dir, cacheKindAgent)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(t.TempDir(), "secret.json")
	writeFile(t, secret, `{"version":"`+cacheKeyVersion+`","key":"`+k+`","commit":"`+head+`"}`)
	cases := map[string]func(p string){
		"symlink":  func(p string) { must(t, os.Symlink(secret, p)) },
		"not JSON": func(p string) { writeFile(t, p, "not json") },
		"wrong key": func(p string) {
			writeFile(t, p, `{"version":"`+cacheKeyVersion+`","key":"`+hashKey("other")+`","commit":"`+head+`","tree":"`+head+`"}`)
		},
		"tree mismatch": func(p string) {
			writeFile(t, p, `{"version":"`+cacheKeyVersion+`","key":"`+k+`","commit":"`+head+`","tree":"`+head+`"}`)
		},
		"unknown commit": func(p string) {
			writeFile(t, p, `{"version":"`+cacheKeyVersion+`","key":"`+k+`","commit":"`+hashKey("x")[:40]+`","tree":"`+hashKey("y")[:40]+`"}`)
		},
		"huge": func(p string) { writeFile(t, p, string(make([]byte, cacheEntryMaxBytes+1))) },
	}
	for name, plant := range cases {
		t.Run(name, func(t *testing.T) {
			p := c.path(cacheKindAgent, k)
			_ = os.Remove(p)
			plant(p)
			if e, ok := c.lookupAgent(ctx, repo.dir, k); ok {
				t.Errorf("planted entry taken: %+v", e)
			}
		})
	}
	if _, ok := c.lookupAgent(ctx, repo.dir, "../../etc/passwd"); ok {
		t.Error("a key that is not a sha256 was looked up")
	}
	var nilCache *ResultCache
	if _, ok := nilCache.lookupAgent(ctx, repo.dir, k); ok {
		t.Error("a nil (off) cache hit")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
