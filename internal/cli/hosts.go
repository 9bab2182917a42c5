package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"codeswarm/activities"
	"codeswarm/control"
	"codeswarm/workflows"
)

func newMoveCmd(g *globalOpts, stdio IO) *cobra.Command {
	var to string
	cmd := clientCmd(g, "move ID --to HOST", "Re-home a run on another worker host: unfinished subtasks restart there, merged work stays", cobra.ExactArgs(1), false,
		func(ctx context.Context, e *env, args []string) error {
			if strings.TrimSpace(to) == "" {
				return badInput("move: --to HOST is required (a workspace.host; `codeswarm workers` lists them)")
			}
			reply, err := moveRun(ctx, e.client, args[0], to)
			if err != nil {
				return err
			}
			fmt.Fprintln(stdio.Out, reply.Message)
			return nil
		})
	cmd.Flags().StringVar(&to, "to", "", "the workspace host to move the run to")
	return cmd
}

// moveRun sends the move update and waits for the run's answer.
func moveRun(ctx context.Context, c client.Client, id, host string) (control.ControlReply, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   id,
		UpdateName:   control.MoveUpdateName,
		WaitForStage: client.WorkflowUpdateStageCompleted,
		Args:         []any{control.MoveRequest{Host: host}},
	})
	var reply control.ControlReply
	if err == nil {
		err = h.Get(ctx, &reply)
	}
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		return reply, fmt.Errorf("move %s: no running run with that ID (it may have finished): %v", id, err)
	case err != nil:
		return reply, fmt.Errorf("move %s: %w", id, err)
	}
	return reply, nil
}

// workerRow is one poller of one codeswarm task queue.
type workerRow struct {
	Queue    string    `json:"queue"`
	Kind     string    `json:"kind"` // main, llm or workspace
	Host     string    `json:"host,omitempty"`
	Identity string    `json:"identity"`
	LastPoll time.Time `json:"last_poll"`
	Live     bool      `json:"live"`
}

func newWorkersCmd(g *globalOpts, stdio IO) *cobra.Command {
	var asJSON bool
	cmd := clientCmd(g, "workers", "List worker hosts and their queues from the server's poller information", cobra.NoArgs, false,
		func(ctx context.Context, e *env, _ []string) error {
			rows, err := listWorkers(ctx, e)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(stdio.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(rows)
			}
			return printWorkers(stdio, rows)
		})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// listWorkers reads the pollers of the main queue, the LLM queue and every
// workspace queue named by a poller's identity or by a running run's host.
func listWorkers(ctx context.Context, e *env) ([]workerRow, error) {
	main := e.cfg.Temporal.TaskQueue
	rows, err := describeQueue(ctx, e, main, "main")
	if err != nil {
		return nil, err
	}
	llm, err := describeQueue(ctx, e, workflows.LLMQueue(main), "llm")
	if err != nil {
		return nil, err
	}
	rows = append(rows, llm...)
	for _, q := range workspaceQueues(ctx, e, rows) {
		ws, err := describeQueue(ctx, e, q, "workspace")
		if err != nil {
			return nil, err
		}
		rows = append(rows, ws...)
	}
	return rows, nil
}

// workspaceQueues are the host queues the pollers' identities name, plus
// those of running runs (a lost host has no live poller to name it).
func workspaceQueues(ctx context.Context, e *env, rows []workerRow) []string {
	var qs []string
	for _, r := range rows {
		if q := activities.QueueOfIdentity(r.Identity); q != "" {
			qs = append(qs, q)
		}
	}
	resp, err := e.client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Query:    fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Running'", workflows.SwarmWorkflowName),
		PageSize: 100,
	})
	if err == nil {
		for _, info := range resp.GetExecutions() {
			if h := e.runHost(info); h != "" {
				qs = append(qs, activities.HostQueue(e.cfg.Temporal.TaskQueue, h))
			}
		}
	}
	sort.Strings(qs)
	return slices.Compact(qs)
}

// describeQueue lists queue's workflow and activity pollers, one row per
// identity with its latest poll.
func describeQueue(ctx context.Context, e *env, queue, kind string) ([]workerRow, error) {
	byID := map[string]*workerRow{}
	var order []string
	for _, typ := range []enumspb.TaskQueueType{enumspb.TASK_QUEUE_TYPE_WORKFLOW, enumspb.TASK_QUEUE_TYPE_ACTIVITY} {
		if kind != "main" && typ == enumspb.TASK_QUEUE_TYPE_WORKFLOW {
			continue
		}
		resp, err := e.client.DescribeTaskQueue(ctx, queue, typ)
		if err != nil {
			return nil, fmt.Errorf("describe task queue %s: %w", queue, err)
		}
		for _, p := range resp.GetPollers() {
			r, ok := byID[p.GetIdentity()]
			if !ok {
				r = &workerRow{Queue: queue, Kind: kind, Identity: p.GetIdentity()}
				byID[p.GetIdentity()] = r
				order = append(order, p.GetIdentity())
			}
			if t := p.GetLastAccessTime().AsTime(); t.After(r.LastPoll) {
				r.LastPoll = t
			}
		}
	}
	out := make([]workerRow, 0, len(order))
	for _, id := range order {
		r := byID[id]
		r.Live = time.Since(r.LastPoll) <= e.cfg.Workspace.HostLostAfter
		if kind == "workspace" {
			r.Host = activities.HostOfQueue(e.cfg.Temporal.TaskQueue, queue)
		} else if q := activities.QueueOfIdentity(id); q != "" {
			r.Host = activities.HostOfQueue(e.cfg.Temporal.TaskQueue, q)
		}
		out = append(out, *r)
	}
	if len(out) == 0 && kind == "workspace" {
		// A host a run waits for, of which the server remembers no poller.
		out = append(out, workerRow{
			Queue: queue,
			Kind:  kind,
			Host:  activities.HostOfQueue(e.cfg.Temporal.TaskQueue, queue),
		})
	}
	return out, nil
}

func printWorkers(stdio IO, rows []workerRow) error {
	tw := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tQUEUE\tKIND\tLAST POLL\tSTATE\tIDENTITY")
	for _, r := range rows {
		state, last := "lost", "never"
		if r.Live {
			state = "live"
		}
		if !r.LastPoll.IsZero() {
			last = time.Since(r.LastPoll).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", cmp.Or(r.Host, "-"), r.Queue, r.Kind, last, state, r.Identity)
	}
	return tw.Flush()
}

// runHost is a run's workspace host: its CodeswarmHost search attribute, or
// the host its memo records.
func (e *env) runHost(info *workflowpb.WorkflowExecutionInfo) string {
	if p, ok := info.GetSearchAttributes().GetIndexedFields()[control.SAHost]; ok {
		var h string
		if e.dc.FromPayload(p, &h) == nil && h != "" {
			return h
		}
	}
	return e.memoString(info, "host")
}
