package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	openai "github.com/sashabaranov/go-openai"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"

	"codeswarm/internal/transcript"
	"codeswarm/llm"
	"codeswarm/tools"
)

// ExecToolInput names one tool call of a turn; its arguments are read from
// the transcript, so file bodies never enter history.
type ExecToolInput struct {
	Ref      ConvRef    `json:"ref"`
	Turn     int        `json:"turn"`
	Index    int        `json:"index"`
	Worktree string     `json:"worktree"`
	Limits   ToolLimits `json:"limits"`
}

// ExecToolResult is the small outcome the workflow sees.
type ExecToolResult struct {
	Name         string   `json:"name"`
	IsError      bool     `json:"is_error,omitempty"`
	OutputChars  int      `json:"output_chars"`
	NeedsSummary bool     `json:"needs_summary,omitempty"`
	FilesChanged []string `json:"files_changed,omitempty"`
	Reused       bool     `json:"reused,omitempty"`
}

// ExecTool runs one tool call in the worktree through the idempotency journal
// and appends its result to the transcript. Tool failures are results for the
// model, not activity errors.
func (a *Activities) ExecTool(ctx context.Context, in ExecToolInput) (ExecToolResult, error) {
	defer keepAlive(ctx)()
	ref := tref(in.Ref)
	key := keyTool(in.Turn, in.Index)
	recs, err := a.Transcripts.Load(ref)
	if err != nil {
		return ExecToolResult{}, err
	}
	call, err := toolCall(recs, in.Turn, in.Index)
	if err != nil {
		return ExecToolResult{}, err
	}
	out := ExecToolResult{Name: call.Function.Name}
	if r, ok := transcript.Find(recs, key); ok {
		out.Reused, out.OutputChars = true, len(r.Message.Content)
		return out, nil
	}
	opts := tools.Options{
		Root: in.Worktree, BashTimeout: in.Limits.BashTimeout, BashMaxTimeout: in.Limits.BashMaxTimeout,
		MaxOutputBytes: in.Limits.MaxOutputBytes, Env: a.Environ,
		Heartbeat: func() { activity.RecordHeartbeat(ctx) },
	}
	res, err := a.runTool(ctx, in, opts, call)
	if err != nil {
		return ExecToolResult{}, err
	}
	output := a.scrub(res.Output)
	out.IsError, out.FilesChanged, out.OutputChars = res.IsError, res.FilesChanged, len(output)
	if len(output) > llm.SummarizeThresholdChars {
		out.NeedsSummary = true
		return out, a.Transcripts.PutBlob(ref, key, []byte(output))
	}
	if len(output) > llm.SimpleTruncateChars {
		output = llm.TruncateResult(output, llm.SimpleTruncateChars)
	}
	return out, a.Transcripts.Append(ref, toolRecord(key, call, output))
}

// readOnlyTools change nothing. Their result needs no journal record: until
// the transcript holds it no one has seen it, so a retry may read again,
// and once it does the retry returns it (Reused). Skipping the journal saves
// a record write and two fsyncs per read.
var readOnlyTools = map[string]bool{tools.ToolRead: true, tools.ToolGlob: true, tools.ToolGrep: true, tools.ToolList: true}

// runTool runs a call: read-only tools directly, every other one through
// the worktree's journal so that a retry never applies it twice.
func (a *Activities) runTool(ctx context.Context, in ExecToolInput, opts tools.Options, call openai.ToolCall) (tools.Result, error) {
	if readOnlyTools[call.Function.Name] {
		return tools.Run(ctx, opts, call.Function.Name, call.Function.Arguments), nil
	}
	journal, err := tools.OpenJournal(filepath.Join(a.stateDir(in.Ref.RunID), "journal", fmt.Sprintf("%s-a%d", in.Ref.SubtaskID, in.Ref.Attempt)))
	if err != nil {
		return tools.Result{}, err
	}
	return journal.Run(ctx, fmt.Sprintf("t%04d-%02d", in.Turn, in.Index), opts, call.Function.Name, call.Function.Arguments)
}

func toolCall(recs []transcript.Record, turn, index int) (openai.ToolCall, error) {
	r, ok := transcript.Find(recs, keyAssistant(turn))
	if !ok || index >= len(r.Message.ToolCalls) {
		return openai.ToolCall{}, fmt.Errorf("transcript has no tool call %d of turn %d", index, turn)
	}
	return r.Message.ToolCalls[index], nil
}

func toolRecord(key string, call openai.ToolCall, output string) transcript.Record {
	if output == "" {
		output = "(no output)"
	}
	return transcript.Record{Key: key, Message: openai.ChatCompletionMessage{
		Role: openai.ChatMessageRoleTool, Content: output, ToolCallID: call.ID, Name: call.Function.Name,
	}}
}

func (a *Activities) scrub(s string) string {
	for _, secret := range a.Secrets {
		if len(secret) >= 8 {
			s = strings.ReplaceAll(s, secret, "[REDACTED]")
		}
	}
	return s
}

// SwarmShareInput names a swarm_share call of a turn.
type SwarmShareInput struct {
	Ref              ConvRef `json:"ref"`
	Turn             int     `json:"turn"`
	Index            int     `json:"index"`
	ParentWorkflowID string  `json:"parent_workflow_id"`
}

// SwarmShareResult is the small outcome the workflow sees.
type SwarmShareResult struct {
	Action  string `json:"action"`
	IsError bool   `json:"is_error,omitempty"`
	Reused  bool   `json:"reused,omitempty"`
}

// SwarmShare executes swarm_share against the store kept in the parent
// workflow: publish is a workflow update (deduplicated by update ID, so a
// retry publishes once), reads are queries.
func (a *Activities) SwarmShare(ctx context.Context, in SwarmShareInput) (SwarmShareResult, error) {
	defer keepAlive(ctx)()
	ref := tref(in.Ref)
	key := keyTool(in.Turn, in.Index)
	recs, err := a.Transcripts.Load(ref)
	if err != nil {
		return SwarmShareResult{}, err
	}
	call, err := toolCall(recs, in.Turn, in.Index)
	if err != nil {
		return SwarmShareResult{}, err
	}
	if _, ok := transcript.Find(recs, key); ok {
		return SwarmShareResult{Reused: true}, nil
	}
	args, perr := tools.ParseShareArgs(call.Function.Arguments)
	out := SwarmShareResult{Action: args.Action}
	var text string
	if perr != nil {
		out.IsError, text = true, "swarm_share error: "+perr.Error()
	} else if text, err = a.share(ctx, in, args); err != nil {
		return SwarmShareResult{}, err
	}
	return out, a.Transcripts.Append(ref, toolRecord(key, call, text))
}

func (a *Activities) share(ctx context.Context, in SwarmShareInput, args tools.ShareArgs) (string, error) {
	req := ShareRequest{Action: args.Action, Key: args.Key, Value: string(args.Value), Tags: args.Tags, Prefix: args.Prefix, Publisher: in.Ref.SubtaskID}
	if args.Action == "publish" {
		h, err := a.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
			WorkflowID: in.ParentWorkflowID, UpdateName: SharePublishUpdateName,
			UpdateID:     fmt.Sprintf("share-%s-a%d-t%04d-%02d", in.Ref.SubtaskID, in.Ref.Attempt, in.Turn, in.Index),
			Args:         []any{req},
			WaitForStage: client.WorkflowUpdateStageCompleted,
		})
		if err != nil {
			return "", fmt.Errorf("publish to swarm store: %w", err)
		}
		var n int
		if err := h.Get(ctx, &n); err != nil {
			return "", fmt.Errorf("publish to swarm store: %w", err)
		}
		return fmt.Sprintf("Published %q (%d shared results in the swarm).", args.Key, n), nil
	}
	v, err := a.Temporal.QueryWorkflow(ctx, in.ParentWorkflowID, "", ShareQueryName, req)
	if err != nil {
		return "", fmt.Errorf("query swarm store: %w", err)
	}
	var results []SharedResult
	if err := v.Get(&results); err != nil {
		return "", fmt.Errorf("decode swarm store answer: %w", err)
	}
	if len(results) == 0 {
		return "No shared results match.", nil
	}
	b, err := json.MarshalIndent(results, "", "  ")
	if err != nil {
		return "", err
	}
	return string(b), nil
}
