package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strings"

	"codeswarm/activities"
	"codeswarm/config"
	"codeswarm/gitops"
	"codeswarm/workflows"
)

// runInput validates everything it can before any workflow starts.
func runInput(ctx context.Context, cfg *config.Config, o *runOpts, stdio IO) (workflows.SwarmInput, string, error) {
	task, err := readTask(o)
	if err != nil {
		return workflows.SwarmInput{}, "", err
	}
	if _, err := gitops.CheckGitVersion(ctx); err != nil {
		return workflows.SwarmInput{}, "", badInput("%v", err)
	}
	repo, err := gitops.Open(ctx, o.repo)
	if err != nil {
		return workflows.SwarmInput{}, "", badInput("--repo: %v", err)
	}
	base, err := repo.ResolveCommit(ctx, o.base)
	if err != nil {
		return workflows.SwarmInput{}, "", badInput("--base: %v", err)
	}
	noteDirty(ctx, repo, o.base, base, stdio)
	id := o.id
	if id == "" {
		id = newRunID(task)
	} else if !validID.MatchString(id) {
		return workflows.SwarmInput{}, "", badInput("--id %q: use letters, digits, '.', '_' and '-' only", id)
	}
	budget, err := runBudget(cfg)
	if err != nil {
		return workflows.SwarmInput{}, "", err
	}
	in := swarmInput(cfg, repo.Root, task, o)
	in.Budget = budget
	return in, id, nil
}

// noteDirty says, in one line, that the run does not see uncommitted
// changes: it works from a commit, and silence made users think otherwise.
func noteDirty(ctx context.Context, repo *gitops.Repo, ref, sha string, stdio IO) {
	if clean, err := repo.IsClean(ctx, repo.Root); err != nil || clean {
		return
	}
	fmt.Fprintf(stdio.Err, "note: your working tree has uncommitted changes; the run starts from %s %s and does not see them\n",
		ref, activities.ShortSHA(sha))
}

// runBudget takes the caps from config and prices the run's models. With
// a cost cap, a model without a price is refused: its spend could not be
// counted.
func runBudget(cfg *config.Config) (workflows.RunBudget, error) {
	b := workflows.RunBudget{
		MaxTokens:             int64(cfg.Swarm.MaxTokens),
		MaxCostUSD:            cfg.Swarm.MaxCostUSD,
		MaxTokensPerSubagent:  int64(cfg.Swarm.MaxTokensPerSubagent),
		MaxCostUSDPerSubagent: cfg.Swarm.MaxCostUSDPerSubagent,
		MaxAnswerTokens:       cfg.LLM.MaxTokens,
		FirstPromptTokens:     workflows.DefaultFirstPromptTokens,
	}
	costCapped := b.MaxCostUSD > 0 || b.MaxCostUSDPerSubagent > 0
	for _, m := range []struct {
		model string
		price *activities.Price
	}{{cfg.LLM.Model, &b.Price}, {cfg.LLM.PlannerModel, &b.PlannerPrice}} {
		p, ok := cfg.PriceOf(m.model)
		if !ok && costCapped {
			return b, badInput("swarm.max_cost_usd is set but model %q has no price: add it to llm.prices as %q "+
				"(USD per million prompt/completion tokens) in codeswarm.yaml or CODESWARM_LLM_PRICES", m.model, m.model+"=PROMPT/COMPLETION")
		}
		*m.price = activities.Price{
			Prompt:       p.Prompt,
			Completion:   p.Completion,
			CachedPrompt: p.CachedPrompt,
		}
	}
	return b, nil
}

var validID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

func readTask(o *runOpts) (string, error) {
	switch {
	case o.task != "" && o.taskFile != "":
		return "", badInput("give either --task or --task-file, not both")
	case o.taskFile != "":
		b, err := os.ReadFile(o.taskFile)
		if err != nil {
			return "", badInput("--task-file: %v", err)
		}
		if strings.TrimSpace(string(b)) == "" {
			return "", badInput("--task-file %s is empty", o.taskFile)
		}
		return string(b), nil
	case strings.TrimSpace(o.task) == "":
		return "", badInput("the task is empty: give --task TEXT or --task-file F")
	}
	return o.task, nil
}

func newRunID(task string) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return "swarm-" + activities.Slug(task, 24) + "-" + hex.EncodeToString(b[:])
}

func swarmInput(cfg *config.Config, repoRoot, task string, o *runOpts) workflows.SwarmInput {
	return workflows.SwarmInput{
		RepoPath:     repoRoot,
		Task:         task,
		BaseRef:      o.base,
		Strategy:     cfg.Swarm.Strategy,
		Model:        cfg.LLM.Model,
		PlannerModel: cfg.LLM.PlannerModel,
		Limits: activities.Limits{
			MaxSubagents:        cfg.Swarm.MaxSubagents,
			MaxConcurrent:       cfg.Swarm.MaxConcurrent,
			MaxStepsPerSubagent: cfg.Swarm.MaxStepsPerSubagent,
			MaxTotalSteps:       cfg.Swarm.MaxTotalSteps,
			SubagentTimeout:     cfg.Swarm.SubagentTimeout,
			MaxRetries:          cfg.Swarm.MaxRetries,
			ContextLimit:        cfg.LLM.ContextLimit,
			LLMTimeout:          cfg.LLM.Timeout,
		},
		Tools: activities.ToolLimits{
			BashTimeout:        cfg.Tools.Bash.Timeout,
			BashMaxTimeout:     cfg.Tools.Bash.MaxTimeout,
			MaxOutputBytes:     cfg.Tools.Bash.MaxOutputBytes,
			ShareMaxValueBytes: cfg.Tools.Share.MaxValueBytes,
			ShareMaxKeys:       cfg.Tools.Share.MaxKeys,
			ShareMaxTotalBytes: cfg.Tools.Share.MaxTotalBytes,
		},
		BranchPrefix:             cfg.Git.BranchPrefix,
		AutoMerge:                cfg.Git.AutoMerge,
		ResolveConflicts:         cfg.Git.ResolveConflicts,
		VerifyCommand:            cfg.Verify.Command,
		VerifyMode:               cfg.Verify.Mode,
		VerifyTimeout:            cfg.Tools.Bash.MaxTimeout * 3,
		Apply:                    o.apply,
		ContinueAsNewEvery:       o.continueAsNewEvery,
		ParentContinueAsNewAfter: o.parentCANAfter,
		ParentHandoverDrain:      o.parentDrain,
		ApprovePlan:              o.approvePlan,
		NoCache:                  o.noCache,
	}
}
