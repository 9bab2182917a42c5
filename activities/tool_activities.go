package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	openai "github.com/sashabaranov/go-openai"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"codeswarm/control"
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
	// Repeated refuses the call instead of running it: the model made it
	// with the same arguments and got the same result too often in a row,
	// and is told so in the call's result.
	Repeated bool `json:"repeated,omitempty"`
}

// ExecToolResult is the small outcome the workflow sees.
type ExecToolResult struct {
	Name         string   `json:"name"`
	IsError      bool     `json:"is_error,omitempty"`
	OutputChars  int      `json:"output_chars"`
	NeedsSummary bool     `json:"needs_summary,omitempty"`
	FilesChanged []string `json:"files_changed,omitempty"`
	Reused       bool     `json:"reused,omitempty"`
	// ResultHash identifies the output, so the loop breaker can tell a
	// repeated call that returns something new from one that does not.
	ResultHash string `json:"result_hash,omitempty"`
}

// repeatNote is the result of a refused repeated call.
const repeatNote = "This call was not run: you made the same call with the same arguments and got the same result " +
	"several times in a row. You are repeating yourself. Change your approach: read the result you already have, " +
	"try a different command or file, or finish with a summary ending in a STATUS line."

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
		out.Reused, out.OutputChars, out.ResultHash = true, len(r.Message.Content), resultHash(r.Message.Content)
		return out, nil
	}
	if in.Repeated {
		out.IsError, out.OutputChars = true, len(repeatNote)
		return out, a.Transcripts.Append(ref, toolRecord(key, call, repeatNote))
	}
	opts := tools.Options{
		Root:           in.Worktree,
		BashTimeout:    in.Limits.BashTimeout,
		BashMaxTimeout: in.Limits.BashMaxTimeout,
		MaxOutputBytes: in.Limits.MaxOutputBytes,
		Env:            a.Environ,
		Sandbox:        a.Sandbox,
		MaxFileBytes:   a.MaxFileBytes,
		Heartbeat:      func() { activity.RecordHeartbeat(ctx) },
	}
	res, err := a.runTool(ctx, in, opts, call)
	if err != nil {
		return ExecToolResult{}, err
	}
	if err := ctx.Err(); err != nil {
		// The attempt was stopped (timed out, cancelled, or its workflow
		// task is gone): what it returns may be "context deadline
		// exceeded" from a change it never made, which the journal did not
		// record so that a retry makes it. In the transcript it would be
		// the retry's answer (Reused). A result the journal did record is
		// still there for the retry.
		return ExecToolResult{}, err
	}
	output := a.scrub(res.Output)
	out.IsError, out.FilesChanged, out.OutputChars = res.IsError, res.FilesChanged, len(output)
	if len(output) > llm.SummarizeThresholdChars {
		out.NeedsSummary, out.ResultHash = true, resultHash(output)
		return out, a.Transcripts.PutBlob(ref, key, []byte(output))
	}
	if len(output) > llm.SimpleTruncateChars {
		output = llm.TruncateResult(output, llm.SimpleTruncateChars)
	}
	rec := toolRecord(key, call, output)
	out.ResultHash = resultHash(rec.Message.Content)
	return out, a.Transcripts.Append(ref, rec)
}

// resultHash is a short digest of a tool result: enough to compare two
// results, small enough for history.
func resultHash(content string) string {
	sum := sha256.Sum256([]byte(content))
	return hex.EncodeToString(sum[:8])
}

// readOnlyTools change nothing. Their result needs no journal record: until
// the transcript holds it no one has seen it, so a retry may read again,
// and once it does the retry returns it (Reused). Skipping the journal saves
// a record write and two fsyncs per read.
var readOnlyTools = map[string]bool{tools.ToolRead: true, tools.ToolGlob: true, tools.ToolGrep: true, tools.ToolList: true}

// IsReadOnlyTool reports whether a tool changes nothing (read, glob, grep,
// list): the workflow may run such a call as a local activity on the host.
func IsReadOnlyTool(name string) bool { return readOnlyTools[name] }

// fileChangeTools change files in the worktree and nothing else, in a time
// bounded by the file's size (no process runs): write, edit, multiedit.
var fileChangeTools = map[string]bool{tools.ToolWrite: true, tools.ToolEdit: true, tools.ToolMultiEdit: true}

// IsFileChangeTool reports whether a tool only changes files of the
// worktree (write, edit, multiedit). Such a call goes through the journal,
// so a retry never applies it twice, and the workflow may run it as a local
// activity on the host like a read.
func IsFileChangeTool(name string) bool { return fileChangeTools[name] }

// runTool runs a call: read-only tools directly, every other one through
// the worktree's journal so that a retry never applies it twice.
func (a *Activities) runTool(ctx context.Context, in ExecToolInput, opts tools.Options, call openai.ToolCall) (tools.Result, error) {
	if readOnlyTools[call.Function.Name] {
		return untilDone(ctx, func() tools.Result { return tools.Run(ctx, opts, call.Function.Name, call.Function.Arguments) })
	}
	journal, err := tools.OpenJournal(a.journalDir(in.Ref.RunID, in.Ref.SubtaskID, in.Ref.Attempt))
	if err != nil {
		return tools.Result{}, err
	}
	journal.Scrub = a.scrub
	return journal.Run(ctx, fmt.Sprintf("t%04d-%02d", in.Turn, in.Index), opts, call.Function.Name, call.Function.Arguments)
}

// untilDone runs a read-only tool but returns as soon as ctx is done: a
// timed-out attempt must end when Temporal gives up on it, not when a walk
// of a huge tree finishes (the tool itself stops at its next ctx check;
// having changed nothing, it needs no waiting for).
func untilDone(ctx context.Context, run func() tools.Result) (tools.Result, error) {
	done := make(chan tools.Result, 1)
	go func() { done <- run() }()
	select {
	case res := <-done:
		return res, nil
	case <-ctx.Done():
		return tools.Result{}, ctx.Err()
	}
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
	return transcript.Record{
		Key: key,
		Message: openai.ChatCompletionMessage{
			Role:       openai.ChatMessageRoleTool,
			Content:    output,
			ToolCallID: call.ID,
			Name:       call.Function.Name,
		},
	}
}

// SwarmShareInput names a swarm_share call of a turn.
type SwarmShareInput struct {
	Ref              ConvRef `json:"ref"`
	Turn             int     `json:"turn"`
	Index            int     `json:"index"`
	ParentWorkflowID string  `json:"parent_workflow_id"`
	// MaxValueBytes caps a published value (0: tools.DefaultShareMaxValueBytes).
	MaxValueBytes int `json:"max_value_bytes,omitempty"`
}

// SwarmShareResult is the small outcome the workflow sees.
type SwarmShareResult struct {
	Action  string `json:"action"`
	IsError bool   `json:"is_error,omitempty"`
	Reused  bool   `json:"reused,omitempty"`
	// ResultHash identifies the result text, as ExecToolResult.ResultHash.
	ResultHash string `json:"result_hash,omitempty"`
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
	if r, ok := transcript.Find(recs, key); ok {
		return SwarmShareResult{Reused: true, ResultHash: resultHash(r.Message.Content)}, nil
	}
	args, perr := tools.ParseShareArgs(call.Function.Arguments, in.MaxValueBytes)
	out := SwarmShareResult{Action: args.Action}
	var text string
	if perr == nil {
		text, err = a.share(ctx, in, args)
		if perr = rejection(err); perr == nil && err != nil {
			return SwarmShareResult{}, err
		}
	}
	if perr != nil {
		out.IsError, text = true, "swarm_share error: "+perr.Error()
	}
	rec := toolRecord(key, call, text)
	out.ResultHash = resultHash(rec.Message.Content)
	return out, a.Transcripts.Append(ref, rec)
}

// shareUpdateID names a publish so that a retried activity publishes once,
// and every other publish is new: it names the sub-agent's workflow (a
// sub-agent restarted on another host by a move is a new workflow whose
// turns count from where its branch was, so subtask, attempt and turn
// alone would repeat, and the run would answer the earlier publish's
// outcome without storing the new value).
func shareUpdateID(workflowID string, in SwarmShareInput) string {
	id := fmt.Sprintf("share-%s-a%d-t%04d-%02d", in.Ref.SubtaskID, in.Ref.Attempt, in.Turn, in.Index)
	if workflowID != "" {
		id += "-" + workflowID
	}
	return id
}

// callerWorkflowID is the ID of the workflow whose activity ctx runs ("" outside one).
func callerWorkflowID(ctx context.Context) string {
	if !activity.IsActivity(ctx) {
		return ""
	}
	return activity.GetInfo(ctx).WorkflowExecution.ID
}

// rejection returns the parent's own refusal of a publish (its validator's
// error, an application error), which is the model's to fix, not a retry's;
// nil for transport errors, which are retried.
func rejection(err error) error {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return errors.New(appErr.Message())
	}
	return nil
}

func (a *Activities) share(ctx context.Context, in SwarmShareInput, args tools.ShareArgs) (string, error) {
	req := a.scrubShare(control.ShareRequest{
		Action:    args.Action,
		Key:       args.Key,
		Value:     string(args.Value),
		Tags:      args.Tags,
		Prefix:    args.Prefix,
		Publisher: in.Ref.SubtaskID,
	})
	if args.Action == "publish" {
		h, err := a.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
			WorkflowID:   in.ParentWorkflowID,
			UpdateName:   control.SharePublishUpdateName,
			UpdateID:     shareUpdateID(callerWorkflowID(ctx), in),
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
	req.MaxBytes = shareReadBytes(in.MaxValueBytes)
	v, err := a.Temporal.QueryWorkflow(ctx, in.ParentWorkflowID, "", control.ShareQueryName, req)
	if err != nil {
		return "", fmt.Errorf("query swarm store: %w", err)
	}
	var ans control.ShareAnswer
	if err := v.Get(&ans); err != nil {
		return "", fmt.Errorf("decode swarm store answer: %w", err)
	}
	if len(ans.Results) == 0 {
		return "No shared results match.", nil
	}
	b, err := json.MarshalIndent(ans.Results, "", "  ")
	if err != nil {
		return "", err
	}
	if ans.More > 0 {
		return fmt.Sprintf("%s\n[%d more shared results match, not shown: the answer is capped at %d bytes; narrow the read with get, query_prefix or query_tags]",
			b, ans.More, req.MaxBytes), nil
	}
	return string(b), nil
}

// ShareReadBytes bounds the entries one swarm_share read puts into the
// conversation: a run shares every finished subtask's result, so a "list"
// of a large run would otherwise fill the model's context.
const ShareReadBytes = 32 << 10

// shareReadBytes is a read's cap: ShareReadBytes, or more when the largest
// value a publish may carry (maxValueBytes, 0: the default) would not fit.
func shareReadBytes(maxValueBytes int) int {
	if maxValueBytes <= 0 {
		maxValueBytes = tools.DefaultShareMaxValueBytes
	}
	return max(ShareReadBytes, maxValueBytes+1<<10)
}
