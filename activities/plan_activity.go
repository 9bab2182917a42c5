package activities

import (
	"context"
	"fmt"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"codeswarm/internal/transcript"
)

// PlanInput asks the planner for a plan (Attempt 0) or a repair (Attempt 1).
type PlanInput struct {
	RunID         string `json:"run_id"`
	Task          string `json:"task"`
	Strategy      string `json:"strategy"`
	RepoListing   string `json:"repo_listing"`
	MaxSubtasks   int    `json:"max_subtasks"`
	Model         string `json:"model"`
	Attempt       int    `json:"attempt"`
	RepairProblem string `json:"repair_problem,omitempty"`
	// RepoPath and BaseCommit add the base commit's tree to the plan's
	// result cache key; NoCache skips the lookup (a valid plan is still
	// stored). See cache_plan.go.
	RepoPath   string `json:"repo_path,omitempty"`
	BaseCommit string `json:"base_commit,omitempty"`
	NoCache    bool   `json:"no_cache,omitempty"`
}

// PlanResult is a validated plan, or the problem that made it invalid.
type PlanResult struct {
	Subtasks []Subtask `json:"subtasks,omitempty"`
	Problem  string    `json:"problem,omitempty"`
	Usage    Usage     `json:"usage"`
	Reused   bool      `json:"reused"`
	// ModelMs is how long the model took to answer (0 when the answer was
	// stored already): the run tells its sub-agents whether the model is
	// fast (see AgentStepResult.ModelMs).
	ModelMs int64 `json:"model_ms,omitempty"`
	// Cut: the answer was still cut by the token limit after the
	// continuations.
	Cut bool `json:"cut,omitempty"`
	// Cached: the plan came from the result cache; no model call was made.
	Cached bool `json:"cached,omitempty"`
}

// Plan runs one planner request. The answer is stored in the transcript
// before it is returned, so a retried activity never pays for it twice.
func (a *Activities) Plan(ctx context.Context, in PlanInput) (PlanResult, error) {
	ref := tref(plannerRef(in.RunID))
	sys, user := PlannerMessages(in.Task, in.Strategy, in.RepoListing, in.MaxSubtasks)
	head := []transcript.Record{
		{
			Key:     keySystem(),
			Message: openai.ChatCompletionMessage{Role: openai.ChatMessageRoleSystem, Content: sys},
		},
		{
			Key:     keyUser(),
			Message: openai.ChatCompletionMessage{Role: openai.ChatMessageRoleUser, Content: user},
		},
	}
	if in.Attempt > 0 {
		head = append(head, transcript.Record{
			Key: keyRepair(in.Attempt),
			Message: openai.ChatCompletionMessage{
				Role:    openai.ChatMessageRoleUser,
				Content: RepairMessage(in.RepairProblem),
			},
		})
	}
	if err := a.Transcripts.Append(ref, head...); err != nil {
		return PlanResult{}, err
	}
	cacheKey := a.planKey(ctx, in, sys, user)
	if res, ok := a.cachedPlan(ctx, in, cacheKey); ok {
		return res, nil
	}
	began := time.Now()
	rec, reused, err := a.answer(ctx, ref, keyAssistant(in.Attempt), func(msgs []openai.ChatCompletionMessage) openai.ChatCompletionRequest {
		return openai.ChatCompletionRequest{Model: in.Model, Messages: msgs}
	}, nil)
	if err != nil {
		return PlanResult{}, llmError(err)
	}
	out := PlanResult{Usage: recUsage(rec), Reused: reused}
	content := rec.Message.Content
	// A long plan is cut by llm.max_tokens (finish_reason "length"): ask the
	// model to go on where it stopped and join the parts, so a plan of many
	// subtasks is not lost to invalid JSON.
	for c := 1; c <= planContinuations && rec.FinishReason == string(openai.FinishReasonLength); c++ {
		if err := a.Transcripts.Append(ref, transcript.Record{
			Key: keyPlanContinue(in.Attempt, c),
			Message: openai.ChatCompletionMessage{
				Role:    openai.ChatMessageRoleUser,
				Content: planContinueMessage,
			},
		}); err != nil {
			return PlanResult{}, err
		}
		var more bool
		rec, more, err = a.answer(ctx, ref, keyPlanPart(in.Attempt, c), func(msgs []openai.ChatCompletionMessage) openai.ChatCompletionRequest {
			return openai.ChatCompletionRequest{Model: in.Model, Messages: msgs}
		}, nil)
		if err != nil {
			return PlanResult{}, llmError(err)
		}
		reused = reused && more
		out.Usage = out.Usage.Add(recUsage(rec))
		content += rec.Message.Content
	}
	if rec.FinishReason == string(openai.FinishReasonLength) {
		out.Cut = true
	}
	out.Reused = reused
	if !reused {
		out.ModelMs = elapsedMs(began)
	}
	subtasks, perr := ParsePlan(content, in.MaxSubtasks)
	if perr != nil && out.Cut {
		perr = fmt.Errorf("the plan was cut off by llm.max_tokens (finish_reason length, %d continuations): %v", planContinuations, perr)
	}
	if perr != nil {
		out.Problem = perr.Error()
		return out, nil
	}
	out.Subtasks = subtasks
	a.storePlan(ctx, cacheKey, content, out)
	return out, nil
}

// Keys of a cut planner answer's continuations: attempt's c-th "go on"
// request and the part it got.
func keyPlanContinue(attempt, c int) string { return fmt.Sprintf("t%04d-plan-continue-%d", attempt, c) }

func keyPlanPart(attempt, c int) string { return fmt.Sprintf("t%04d-plan-part-%d", attempt, c) }

// planContinuations is how many times a planner answer cut by the token
// limit is continued before it is judged as it is.
const planContinuations = 4

const planContinueMessage = "Your answer was cut off by the output limit. Continue exactly where you stopped: no repetition, no preamble, no code fence; only the rest of the JSON."
