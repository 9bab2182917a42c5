package activities

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"codeswarm/internal/transcript"
	"codeswarm/llm/scripted"
)

// completeInTranscript writes the model's final answer of a sub-agent at
// turn 1, as AgentStep would have.
func completeInTranscript(t *testing.T, a *Activities, ref ConvRef, text string) {
	t.Helper()
	if err := a.Transcripts.Append(tref(ref), transcript.Record{
		Key:     keyAssistant(1),
		Message: openai.ChatCompletionMessage{Role: openai.ChatMessageRoleAssistant, Content: text},
	}); err != nil {
		t.Fatal(err)
	}
}

// StartSubtask takes a completed sub-agent's work from the cache for an
// equal one: the same tree, committed on the new base, with the first
// answer; --no-cache, a different instruction or a cache that is off get
// no hit.
func TestStartSubtaskTakesCachedWork(t *testing.T) {
	f := newGitFixture(t)
	f.a.Cache = NewResultCache(f.a.WorkspaceRoot, 0)
	f.prepare(t)
	in := startInput(f, "01-docs", "Document a.txt.")
	first := mustRun[StartSubtaskResult](t, f.env, f.a.StartSubtask, in)
	if first.CacheKey == "" || first.Cached != nil {
		t.Fatalf("first start: key %q, hit %+v; want a key and no hit", first.CacheKey, first.Cached)
	}
	writeFile(t, filepath.Join(first.Worktree, "a.txt"), "alpha, documented\n")
	completeInTranscript(t, f.a, in.Ref, "documented a.txt\nSTATUS: completed")
	commit := mustRun[CommitSubtaskResult](t, f.env, f.a.CommitSubtask, CommitSubtaskInput{
		RunID: runID, SubtaskID: "01-docs", Name: "docs", Worktree: first.Worktree, BaseCommit: first.BaseCommit,
		Cache: &CacheStore{Key: first.CacheKey, RepoPath: f.repo.dir, Ref: in.Ref, FinalTurn: 1, NeedsWorktree: true, Steps: 3, LLMCalls: 3, Usage: Usage{PromptTokens: 30}},
	})
	if !commit.Changed {
		t.Fatalf("commit = %+v", commit)
	}

	// The same sub-agent again (a later attempt, on its own branch).
	again := in
	again.Ref.Attempt, again.Branch = 2, in.Branch+"-a2"
	hit := mustRun[StartSubtaskResult](t, f.env, f.a.StartSubtask, again)
	if hit.CacheKey != first.CacheKey || hit.Cached == nil {
		t.Fatalf("second start: key %q (first %q), hit %+v; want the same key and a hit", hit.CacheKey, first.CacheKey, hit.Cached)
	}
	c := hit.Cached
	if c.From != commit.Commit || c.Commit == commit.Commit || c.Result != "documented a.txt\nSTATUS: completed" ||
		c.Steps != 3 || c.LLMCalls != 3 || !reflect.DeepEqual(c.FilesChanged, []string{"a.txt"}) {
		t.Errorf("hit = %+v; want a new commit from %s with the first answer", c, commit.Commit)
	}
	if head := gitCmd(t, hit.Worktree, nil, "rev-parse", "HEAD"); head != c.Commit {
		t.Errorf("worktree HEAD %s, want the hit's commit %s", head, c.Commit)
	}
	if a, b := gitCmd(t, hit.Worktree, nil, "rev-parse", c.Commit+"^{tree}"), gitCmd(t, hit.Worktree, nil, "rev-parse", commit.Commit+"^{tree}"); a != b {
		t.Errorf("the hit's tree %s differs from the cached commit's %s", a, b)
	}
	if parent := gitCmd(t, hit.Worktree, nil, "rev-parse", c.Commit+"^"); parent != hit.BaseCommit {
		t.Errorf("the hit's parent %s, want its base %s", parent, hit.BaseCommit)
	}
	if got := readFile(t, filepath.Join(hit.Worktree, "a.txt")); got != "alpha, documented\n" {
		t.Errorf("a.txt in the hit's worktree = %q", got)
	}
	// A retried StartSubtask finds the hit in place and reports it again.
	if retry := mustRun[StartSubtaskResult](t, f.env, f.a.StartSubtask, again); retry.Cached == nil || retry.Cached.Commit != c.Commit {
		t.Errorf("retried start = %+v, want the same hit %s", retry.Cached, c.Commit)
	}

	bypass := in
	bypass.Ref.Attempt, bypass.Branch, bypass.NoCache = 3, in.Branch+"-a3", true
	if res := mustRun[StartSubtaskResult](t, f.env, f.a.StartSubtask, bypass); res.Cached != nil || res.CacheKey != first.CacheKey {
		t.Errorf("--no-cache start: hit %+v key %q; want no hit and the key (to store what completes)", res.Cached, res.CacheKey)
	}
	other := startInput(f, "01-docs", "Document b.txt.")
	other.Ref.Attempt, other.Branch = 4, in.Branch+"-a4"
	if res := mustRun[StartSubtaskResult](t, f.env, f.a.StartSubtask, other); res.Cached != nil || res.CacheKey == first.CacheKey {
		t.Errorf("another instruction: hit %+v key %q; want a miss under another key", res.Cached, res.CacheKey)
	}
	f.a.Cache = nil
	off := in
	off.Ref.Attempt, off.Branch = 5, in.Branch+"-a5"
	if res := mustRun[StartSubtaskResult](t, f.env, f.a.StartSubtask, off); res.Cached != nil || res.CacheKey != "" {
		t.Errorf("cache off: hit %+v key %q; want neither", res.Cached, res.CacheKey)
	}
}

// Work the sub-agent did not report completed, or that changed no files
// when it should have, is not stored.
func TestCommitSubtaskStoresOnlySuccess(t *testing.T) {
	for _, tc := range []struct {
		name, answer string
		edit         bool
	}{
		{name: "blocked", answer: "cannot\nSTATUS: blocked", edit: true},
		{name: "changed nothing", answer: "done\nSTATUS: completed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newGitFixture(t)
			f.a.Cache = NewResultCache(f.a.WorkspaceRoot, 0)
			f.prepare(t)
			in := startInput(f, "01-docs", "Document a.txt.")
			st := mustRun[StartSubtaskResult](t, f.env, f.a.StartSubtask, in)
			if tc.edit {
				writeFile(t, filepath.Join(st.Worktree, "a.txt"), "edited\n")
			}
			completeInTranscript(t, f.a, in.Ref, tc.answer)
			mustRun[CommitSubtaskResult](t, f.env, f.a.CommitSubtask, CommitSubtaskInput{
				RunID: runID, SubtaskID: "01-docs", Worktree: st.Worktree, BaseCommit: st.BaseCommit,
				Cache: &CacheStore{Key: st.CacheKey, RepoPath: f.repo.dir, Ref: in.Ref, FinalTurn: 1, NeedsWorktree: true},
			})
			if _, err := os.Stat(f.a.Cache.path(cacheKindAgent, st.CacheKey)); !os.IsNotExist(err) {
				t.Errorf("an entry was stored (stat: %v)", err)
			}
		})
	}
}

// An equal planner request in another run gets the stored plan with no
// model call; --no-cache, a repair attempt and another task ask the model.
func TestPlanFromResultCache(t *testing.T) {
	plan := "```json\n" + twoStepPlan + "\n```"
	h := newHarness(t, scripted.Script{Planner: []scripted.Reply{{Content: plan, PromptTokens: 300, CompletionTokens: 40}}})
	h.a.Cache = &ResultCache{Dir: filepath.Join(t.TempDir(), CacheDirName)}
	in := PlanInput{RunID: "run-1", Task: "Rename Foo to Bar everywhere", Strategy: "automatic", RepoListing: "api/foo.go\n", MaxSubtasks: 4, Model: "planner-model"}
	first := mustRun[PlanResult](t, h.env, h.a.Plan, in)
	if first.Cached || len(first.Subtasks) != 2 || h.srv.Count(scripted.KindPlanner) != 1 {
		t.Fatalf("first plan = %+v after %d calls", first, h.srv.Count(scripted.KindPlanner))
	}

	in.RunID = "run-2"
	hit := mustRun[PlanResult](t, h.env, h.a.Plan, in)
	if !hit.Cached || !reflect.DeepEqual(hit.Subtasks, first.Subtasks) || hit.Usage != (Usage{}) || h.srv.Count(scripted.KindPlanner) != 1 {
		t.Errorf("second plan = %+v after %d calls; want the first plan, cached, with no call and no usage", hit, h.srv.Count(scripted.KindPlanner))
	}

	calls := h.srv.Count(scripted.KindPlanner)
	for name, change := range map[string]func(*PlanInput){
		"no-cache": func(p *PlanInput) { p.NoCache = true },
		"repair":   func(p *PlanInput) { p.Attempt, p.RepairProblem = 1, "x" },
		"task":     func(p *PlanInput) { p.Task = "Rename Foo to Baz everywhere" },
		"model":    func(p *PlanInput) { p.Model = "other-model" },
		"listing":  func(p *PlanInput) { p.RepoListing = "api/foo.go\napi/bar.go\n" },
	} {
		p := in
		p.RunID = "run-" + name
		change(&p)
		res := mustRun[PlanResult](t, h.env, h.a.Plan, p)
		calls++
		if res.Cached || h.srv.Count(scripted.KindPlanner) != calls {
			t.Errorf("%s: cached %v, %d planner calls; want a model call (%d)", name, res.Cached, h.srv.Count(scripted.KindPlanner), calls)
			calls = h.srv.Count(scripted.KindPlanner)
		}
	}
}

// A planted plan entry is a miss unless it is this key's and still parses
// into a valid plan.
func TestResultCacheIgnoresPlantedPlans(t *testing.T) {
	ctx := context.Background()
	a := &Activities{Cache: &ResultCache{Dir: filepath.Join(t.TempDir(), CacheDirName)}}
	in := PlanInput{Task: "t", MaxSubtasks: 4}
	k := hashKey("plan")
	entry := func(version, key, content string) string {
		return fmt.Sprintf(`{"version":%q,"key":%q,"content":%q}`, version, key, content)
	}
	if err := os.MkdirAll(filepath.Join(a.Cache.Dir, cacheKindPlan), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{
		"not JSON":      "{",
		"old version":   entry("codeswarm-cache-v0", k, twoStepPlan),
		"another key":   entry(cacheKeyVersion, hashKey("other"), twoStepPlan),
		"empty":         entry(cacheKeyVersion, k, " "),
		"invalid plan":  entry(cacheKeyVersion, k, `{"subtasks":[{"name":"a","instruction":"x","dependencies":["ghost"]}]}`),
		"too many":      entry(cacheKeyVersion, k, strings.Repeat(" ", cacheEntryMaxBytes)),
		"not a subtask": entry(cacheKeyVersion, k, "rm -rf /"),
	} {
		writeFile(t, a.Cache.path(cacheKindPlan, k), text)
		if res, ok := a.cachedPlan(ctx, in, k); ok {
			t.Errorf("%s: planted plan taken: %+v", name, res)
		}
	}
	writeFile(t, a.Cache.path(cacheKindPlan, k), entry(cacheKeyVersion, k, twoStepPlan))
	if res, ok := a.cachedPlan(ctx, in, k); !ok || len(res.Subtasks) != 2 || !res.Cached {
		t.Errorf("a valid entry: %+v, %v; want its two subtasks", res, ok)
	}
}

// Workers on one host store and read entries at once: a reader sees a whole
// entry or none (writes are renames), no temporary file stays, and the
// cache holds at most MaxEntries.
func TestResultCacheConcurrentWriters(t *testing.T) {
	c := &ResultCache{Dir: filepath.Join(t.TempDir(), CacheDirName), MaxEntries: 5}
	content := strings.Repeat("x", 200_000) // big enough that a torn write would show
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for w := range 8 {
		wg.Go(func() {
			for i := range 20 {
				key := hashKey(fmt.Sprint(i % 7))
				if err := c.storePlan(key, fmt.Sprintf("%d %d %s", w, i, content)); err != nil {
					errs <- err
				}
				if got, ok := c.lookupPlan(key); ok && (len(got) < len(content) || !strings.HasSuffix(got, content)) {
					errs <- fmt.Errorf("a torn entry of %d bytes", len(got))
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	files, err := os.ReadDir(filepath.Join(c.Dir, cacheKindPlan))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Name())
		if strings.HasPrefix(f.Name(), ".tmp-") {
			t.Errorf("temporary file %s left", f.Name())
		}
	}
	if len(names) > c.MaxEntries {
		t.Errorf("%d entries kept, want at most %d: %v", len(names), c.MaxEntries, names)
	}
	if fi, err := os.Stat(c.Dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("cache directory mode %v (%v), want 0700: only the worker's user reads or plants entries", fi.Mode().Perm(), err)
	}
}

// A temporary file a dead writer left is removed once it is old; a fresh
// one (a write in progress) is not.
func TestResultCacheRemovesStaleTemporaryFiles(t *testing.T) {
	now := time.Now()
	c := &ResultCache{Dir: filepath.Join(t.TempDir(), CacheDirName), now: func() time.Time { return now }}
	dir := filepath.Join(c.Dir, cacheKindPlan)
	must(t, os.MkdirAll(dir, 0o700))
	stale, fresh := filepath.Join(dir, ".tmp-dead"), filepath.Join(dir, ".tmp-busy")
	writeFile(t, stale, "half an entry")
	writeFile(t, fresh, "half an entry")
	old := now.Add(-2 * cacheTmpMaxAge)
	must(t, os.Chtimes(stale, old, old))
	must(t, c.storePlan(hashKey("p"), twoStepPlan))
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temporary file kept (stat: %v)", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("a write in progress lost its temporary file: %v", err)
	}
}

// A read-only sub-agent's completed answer (no files changed) is stored,
// and its hit changes nothing either: no empty commit, so the read-only
// policy does not fail it for a change it did not make.
func TestReadOnlyCachedWorkChangesNothing(t *testing.T) {
	f := newGitFixture(t)
	f.a.Cache = NewResultCache(f.a.WorkspaceRoot, 0)
	f.prepare(t)
	in := startInput(f, "01-review", "Review a.txt.")
	in.Subtask.NeedsWorktree = false
	first := mustRun[StartSubtaskResult](t, f.env, f.a.StartSubtask, in)
	completeInTranscript(t, f.a, in.Ref, "a.txt reads well\nSTATUS: completed")
	commit := mustRun[CommitSubtaskResult](t, f.env, f.a.CommitSubtask, CommitSubtaskInput{
		RunID: runID, SubtaskID: "01-review", Worktree: first.Worktree, BaseCommit: first.BaseCommit,
		Cache: &CacheStore{Key: first.CacheKey, RepoPath: f.repo.dir, Ref: in.Ref, FinalTurn: 1},
	})
	if commit.Changed {
		t.Fatalf("a review changed files: %+v", commit)
	}
	again := in
	again.Ref.Attempt, again.Branch = 2, in.Branch+"-a2"
	hit := mustRun[StartSubtaskResult](t, f.env, f.a.StartSubtask, again)
	if hit.Cached == nil || hit.Cached.Result != "a.txt reads well\nSTATUS: completed" {
		t.Fatalf("second start: hit %+v; want the review's answer", hit.Cached)
	}
	if hit.Cached.Commit != hit.BaseCommit || len(hit.Cached.FilesChanged) != 0 {
		t.Errorf("hit commit %s files %v; want the base %s and no files", hit.Cached.Commit, hit.Cached.FilesChanged, hit.BaseCommit)
	}
	res := mustRun[CommitSubtaskResult](t, f.env, f.a.CommitSubtask, CommitSubtaskInput{
		RunID: runID, SubtaskID: "01-review", Worktree: hit.Worktree, BaseCommit: hit.BaseCommit,
	})
	if res.Changed || res.Commit != hit.BaseCommit {
		t.Errorf("the hit's commit = %+v; want no change at the base %s", res, hit.BaseCommit)
	}
}
