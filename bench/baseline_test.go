package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	openai "github.com/sashabaranov/go-openai"

	"codeswarm/gitops"
	"codeswarm/llm"
	"codeswarm/tools"
)

// baselineOutcome is what an in-process run did.
type baselineOutcome struct {
	merged, calls int
}

// runBaseline runs the plan the model gives for task the way an in-process
// swarm does (CodeTether): a planner call, then one goroutine per subtask,
// started when its dependencies are merged, under a concurrency cap; each
// runs its tool loop with the conversation in memory, in its own worktree,
// then commits; a merge lock serialises merges into the integration branch;
// a merged worktree is parked for the next subtask (gitops.ParkWorktree and
// gitops.WorktreePool with the same bound on fresh checkouts, as codeswarm's
// workers do) and what is left is removed at the end. The same model client, tool code
// and git operations as codeswarm; no Temporal, no transcript, no journal.
func runBaseline(ctx context.Context, modelURL, apiKey, repoDir, wsRoot string, maxConcurrent int) (baselineOutcome, error) {
	client := llm.New(llm.Options{BaseURL: modelURL, APIKey: apiKey})
	repo, err := gitops.Open(ctx, repoDir)
	if err != nil {
		return baselineOutcome{}, err
	}
	base, err := repo.ResolveCommit(ctx, "HEAD")
	if err != nil {
		return baselineOutcome{}, err
	}
	const integration = "bench/integration"
	if err := repo.EnsureBranch(ctx, integration, base); err != nil {
		return baselineOutcome{}, err
	}
	plan, err := planBaseline(ctx, client)
	if err != nil {
		return baselineOutcome{}, err
	}
	b := &baseline{client: client, repo: repo, wsRoot: wsRoot, integration: integration,
		sem: make(chan struct{}, maxConcurrent), done: map[string]chan struct{}{},
		pool: gitops.NewWorktreePool(freshCheckouts)}
	for _, st := range plan {
		b.done[st.Name] = make(chan struct{})
	}
	errs := make(chan error, len(plan))
	for _, st := range plan {
		go func() { errs <- b.runSubtask(ctx, st) }()
	}
	var all []error
	for range plan {
		all = append(all, <-errs)
	}
	if err := errors.Join(all...); err != nil {
		return baselineOutcome{}, err
	}
	b.parking.Wait()
	if _, kept, err := repo.RemoveWorktrees(ctx, append(b.worktrees, b.pool.Forget("")...)); err != nil || len(kept) > 0 {
		return baselineOutcome{}, fmt.Errorf("remove worktrees: kept %v, %v", kept, err)
	}
	return baselineOutcome{merged: b.merged, calls: b.calls + 1}, nil
}

type planned struct {
	Name         string   `json:"name"`
	Instruction  string   `json:"instruction"`
	Dependencies []string `json:"dependencies"`
}

func planBaseline(ctx context.Context, client *llm.Client) ([]planned, error) {
	resp, err := client.Chat(ctx, openai.ChatCompletionRequest{Model: "scripted", Messages: []openai.ChatCompletionMessage{
		{Role: openai.ChatMessageRoleSystem, Content: "Decompose the task into subtasks as JSON."},
		{Role: openai.ChatMessageRoleUser, Content: task},
	}})
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	var plan struct {
		Subtasks []planned `json:"subtasks"`
	}
	if len(resp.Choices) == 0 {
		return nil, errors.New("plan: no choices")
	}
	if err := json.Unmarshal([]byte(resp.Choices[0].Message.Content), &plan); err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	return plan.Subtasks, nil
}

type baseline struct {
	client      *llm.Client
	repo        *gitops.Repo
	wsRoot      string
	integration string
	sem         chan struct{}
	done        map[string]chan struct{}

	pool      *gitops.WorktreePool // merged worktrees ready for the next subtask
	mu        sync.Mutex           // the merge lock; also guards the fields below
	worktrees []string
	parkSeq   int
	parking   sync.WaitGroup
	merged    int
	calls     int
}

// freshCheckouts is the bound on fresh checkouts in flight, as a worker's
// (activities.freshParallelism).
const freshCheckouts = 2

// park parks a merged worktree in the background; the caller holds mu.
func (b *baseline) park(ctx context.Context, dir string) {
	b.parkSeq++
	to := filepath.Join(b.wsRoot, ".pool", strconv.Itoa(b.parkSeq))
	b.parking.Add(1)
	go func() {
		defer b.parking.Done()
		if err := b.repo.ParkWorktree(ctx, dir, to); err != nil {
			return
		}
		b.pool.Put("", to)
	}()
}

func (b *baseline) runSubtask(ctx context.Context, st planned) error {
	defer close(b.done[st.Name])
	for _, d := range st.Dependencies {
		<-b.done[d]
	}
	b.sem <- struct{}{}
	defer func() { <-b.sem }()
	head, err := b.repo.RefSHA(ctx, b.integration)
	if err != nil {
		return err
	}
	dir := filepath.Join(b.wsRoot, st.Name)
	// Concurrent `git worktree add`s can trip over each other's half-made
	// entries; codeswarm retries its activity, so the baseline retries too.
	parked, done, err := b.pool.Source(ctx, "")
	if err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		from := parked
		if attempt > 1 {
			from = ""
		}
		_, err := b.repo.AddWorktreeFrom(ctx, dir, "bench/"+st.Name, head, from)
		if err == nil {
			break
		}
		if attempt == 3 {
			done()
			return err
		}
	}
	done()
	if _, err := os.Lstat(parked); parked != "" && err == nil {
		b.pool.Put("", parked) // not claimed: still parked
	}
	calls, changed, err := b.loop(ctx, st, dir)
	if err != nil {
		return fmt.Errorf("%s: %w", st.Name, err)
	}
	// As codeswarm's CommitSubtask: the files the tool calls wrote when no
	// bash command ran (here from their results, there from the journal).
	var commit gitops.CommitResult
	if changed != nil {
		commit, err = gitops.CommitPaths(ctx, dir, head, "bench: "+st.Name, nil, changed)
	} else {
		commit, err = gitops.CommitAll(ctx, dir, head, "bench: "+st.Name, nil)
	}
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.worktrees = append(b.worktrees, dir)
	b.calls += calls
	if !commit.Changed {
		return nil
	}
	m, err := b.repo.Merge(ctx, gitops.MergeInput{TargetBranch: b.integration, Source: commit.Commit})
	if err != nil {
		return err
	}
	if m.Status != gitops.MergeMerged {
		return fmt.Errorf("%s: merge %s %v", st.Name, m.Status, m.Conflicts)
	}
	b.merged++
	b.park(ctx, dir)
	return nil
}

// loop is the tool-calling loop with the conversation in memory. It
// returns the files the tool calls wrote, nil if a bash command ran (which
// may have written anything).
func (b *baseline) loop(ctx context.Context, st planned, dir string) (int, []string, error) {
	changed, bash := []string{}, false
	msgs := []openai.ChatCompletionMessage{
		{Role: openai.ChatMessageRoleSystem, Content: "You are a coding sub-agent."},
		{Role: openai.ChatMessageRoleUser, Content: st.Instruction},
	}
	defs := tools.Definitions()
	for calls := 1; ; calls++ {
		resp, err := b.client.Chat(ctx, openai.ChatCompletionRequest{Model: "scripted", Messages: msgs, Tools: defs})
		if err != nil {
			return calls, nil, err
		}
		if len(resp.Choices) == 0 {
			return calls, nil, errors.New("no choices")
		}
		msg := resp.Choices[0].Message
		msgs = append(msgs, msg)
		if len(msg.ToolCalls) == 0 {
			if !strings.Contains(msg.Content, "STATUS: completed") {
				return calls, nil, fmt.Errorf("not completed: %q", msg.Content)
			}
			if bash {
				changed = nil
			}
			return calls, changed, nil
		}
		for _, tc := range msg.ToolCalls {
			res := tools.Run(ctx, tools.Options{Root: dir}, tc.Function.Name, tc.Function.Arguments)
			bash = bash || tc.Function.Name == tools.ToolBash
			changed = append(changed, res.FilesChanged...)
			if res.IsError {
				return calls, nil, fmt.Errorf("tool %s: %s", tc.Function.Name, res.Output)
			}
			msgs = append(msgs, openai.ChatCompletionMessage{Role: openai.ChatMessageRoleTool, Content: res.Output, ToolCallID: tc.ID, Name: tc.Function.Name})
		}
	}
}
