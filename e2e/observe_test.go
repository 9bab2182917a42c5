package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"codeswarm/control"
	"codeswarm/llm/scripted"
	"codeswarm/workflows"
)

// TestRunIsObservable: a run tells its story through the Temporal API (what
// the Web UI shows) and the CLI: child and activity summaries, the parent's
// live table, search attributes, status and watch.
func TestRunIsObservable(t *testing.T) {
	script := scripted.DemoScript()
	// rename-greet thinks for a while on its second turn, so the run can be
	// looked at while a sub-agent is in the middle of it (long enough for a
	// status call on a loaded machine to land in it).
	script.Agents[0].Turns[1].Delay = scripted.Duration(12 * time.Second)
	h := newHarness(t, script)
	repo := t.TempDir()
	if err := scripted.WriteDemoRepo(repo); err != nil {
		t.Fatal(err)
	}
	root := git(t, repo, "rev-parse", "--show-toplevel")
	startLongLivedWorker(t) // runs the detached run, and replays closed runs for queries
	const id = "obs-demo"
	if code, out := h.run("run", "--repo", repo, "--task", scripted.DemoTask, "--id", id, "--detach", "--no-worker"); code != 0 {
		t.Fatalf("run --detach: exit %d\n%s\n%s", code, out, tail(h.logs.String(), 3000))
	}

	t.Run("status of a running run prints the live table", func(t *testing.T) {
		var out string
		waitFor(t, 60*time.Second, func() bool {
			_, out = h.run("status", id)
			return strings.Contains(out, "LLM turn 2 (scripted)")
		})
		t.Logf("status while running:\n%s", out)
		for _, want := range []string{"state running", "SUBTASK", "STATUS", "STEP", "TOOL", "TOKENS", "ELAPSED", "LAST EVENT", "01-rename-greet", "running"} {
			mustContain(t, "status", out, want)
		}
	})

	code, out := h.run("watch", id, "--plain", "--verbose")
	if code != 0 {
		t.Fatalf("watch: exit %d\n%s\n%s", code, out, tail(h.logs.String(), 3000))
	}
	t.Run("watch --plain --verbose prints a line per tool call", func(t *testing.T) {
		t.Logf("watch --plain --verbose:\n%s", out)
		for _, want := range []string{
			"tool 01-rename-greet #1 (step 1): list greet", "tool 01-rename-greet #2 (step 1): read greet/greet.go",
			"edit greet/greet.go", "write greet/greet_test.go", "bash: go test ./greet/", "bash: go build ./... && go test ./...",
			"merged 03-update-main", "SUCCEEDED",
		} {
			mustContain(t, "watch", out, want)
		}
		if strings.Contains(out, "func TestGreet") {
			t.Errorf("watch printed file contents:\n%s", out)
		}
	})

	ctx := context.Background()
	dc := converter.GetDefaultDataConverter()
	text := func(p *commonpb.Payload) string {
		var s string
		if p != nil {
			_ = dc.FromPayload(p, &s)
		}
		return s
	}

	t.Run("each child carries its subtask as static summary and details", func(t *testing.T) {
		d, err := h.client.DescribeWorkflowExecution(ctx, workflows.ChildWorkflowID(id, "01-rename-greet", 1), "")
		if err != nil {
			t.Fatal(err)
		}
		md := d.GetExecutionConfig().GetUserMetadata()
		summary, details := text(md.GetSummary()), text(md.GetDetails())
		if !strings.HasPrefix(summary, "rename-greet: ") || strings.Contains(summary, "\n") {
			t.Errorf("static summary %q: want the subtask name and one line of its instruction", summary)
		}
		for _, want := range []string{"**Subtask** 01-rename-greet", "**Stage** 0", "**depends on** none", "**Instruction**"} {
			mustContain(t, "static details", details, want)
		}
	})

	t.Run("every activity carries a one-line summary", func(t *testing.T) {
		parent := activitySummaries(t, h, id, text)
		child := activitySummaries(t, h, workflows.ChildWorkflowID(id, "01-rename-greet", 1), text)
		for _, want := range []string{"prepare run", "plan (scripted)", "merge 01-rename-greet", "merge 03-update-main", "finish run"} {
			if !parent[want] {
				t.Errorf("parent activity summaries lack %q: %v", want, parent)
			}
		}
		for _, want := range []string{"LLM turn 1 (scripted)", "LLM turn 5 (scripted)", "list greet", "read greet/greet.go", "edit greet/greet.go",
			"write greet/greet_test.go", "bash: go test ./greet/", "commit 01-rename-greet"} {
			if !child[want] {
				t.Errorf("child activity summaries lack %q: %v", want, child)
			}
		}
		for s := range child {
			if strings.Contains(s, "package greet") || strings.Contains(s, "\n") {
				t.Errorf("an activity summary holds file contents or several lines: %q", s)
			}
		}
	})

	t.Run("no activity of the completed run is left pending, the host watch included", func(t *testing.T) {
		for _, wid := range []string{id, workflows.ChildWorkflowID(id, "01-rename-greet", 1)} {
			if open := openActivities(t, h, wid); len(open) > 0 {
				t.Errorf("%s ended with activities scheduled and never closed in its history (the Web UI shows them pending): %v", wid, open)
			}
		}
	})

	t.Run("the parent's current details are the live table", func(t *testing.T) {
		v, err := h.client.QueryWorkflow(ctx, id, "", "__temporal_workflow_metadata")
		if err != nil {
			t.Fatal(err)
		}
		var md sdkpb.WorkflowMetadata
		if err := v.Get(&md); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"**succeeded** (done)", "3/3 subtasks done", "| subtask | status | step | tokens | cost | merge |",
			"| 01-rename-greet | completed | 5/", "| merged |"} {
			mustContain(t, "current details", strings.ReplaceAll(md.GetCurrentDetails(), "\u00a0", ""), want)
		}
	})

	// A second run of the same repository that fails: one step is not enough.
	if code, _ := h.run("run", "--repo", repo, "--task", scripted.DemoTask, "--id", "obs-fail", "--max-steps", "1", "--no-worker"); code != 1 {
		t.Fatalf("the one-step run: exit %d, want 1\n%s", code, tail(h.logs.String(), 3000))
	}

	t.Run("search attributes find the runs of a repository by state", func(t *testing.T) {
		ids := func(query string) []string {
			var out []string
			waitFor(t, 20*time.Second, func() bool {
				resp, err := h.client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query})
				if err != nil {
					t.Fatalf("list %q: %v", query, err)
				}
				out = nil
				for _, e := range resp.GetExecutions() {
					out = append(out, e.GetExecution().GetWorkflowId())
				}
				return len(out) == 1
			})
			return out
		}
		q := fmt.Sprintf("%s = '%s' AND %s = '%s'", control.SAStatus, control.RunStateSucceeded, control.SARepo, root)
		if got := ids(q); len(got) != 1 || got[0] != id {
			t.Errorf("%s: %v, want [%s]", q, got, id)
		}
		q = fmt.Sprintf("%s = '%s' AND %s = '%s'", control.SAStatus, control.RunStateFailed, control.SARepo, root)
		if got := ids(q); len(got) != 1 || got[0] != "obs-fail" {
			t.Errorf("%s: %v, want [obs-fail]", q, got)
		}
		d, err := h.client.DescribeWorkflowExecution(ctx, id, "")
		if err != nil {
			t.Fatal(err)
		}
		fields := d.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields()
		var tokens, done, total int64
		_ = dc.FromPayload(fields[control.SATokens], &tokens)
		_ = dc.FromPayload(fields[control.SASubtasksDone], &done)
		_ = dc.FromPayload(fields[control.SASubtasksTotal], &total)
		if tokens <= 0 || done != 3 || total != 3 || !strings.Contains(text(fields[control.SATask]), "Rename greet.Hello") {
			t.Errorf("search attributes: tokens %d, done %d/%d, task %q", tokens, done, total, text(fields[control.SATask]))
		}
	})

	t.Run("list filters by state and repository", func(t *testing.T) {
		code, out := h.run("list", "--status", "failed", "--repo", repo)
		t.Logf("list --status failed --repo:\n%s", out)
		if code != 0 || !strings.Contains(out, "obs-fail") || strings.Contains(out, id+" ") {
			t.Errorf("list --status failed --repo (exit %d):\n%s", code, out)
		}
		for _, want := range []string{"STATE", "DONE", "TOKENS", "COST", "failed", "3/3"} {
			mustContain(t, "list", out, want)
		}
		code, out = h.run("list", "--query", "CodeswarmSubtasksDone = 3 AND CodeswarmStatus = 'succeeded'")
		if code != 0 || !strings.Contains(out, id) || strings.Contains(out, "obs-fail") {
			t.Errorf("list --query (exit %d):\n%s", code, out)
		}
		if code, _ := h.run("list", "--status", "sleeping"); code != 2 {
			t.Errorf("list --status sleeping: exit %d, want 2", code)
		}
	})

	t.Run("status of a finished run says its state", func(t *testing.T) {
		code, out := h.run("status", "obs-fail")
		if code != 0 {
			t.Errorf("status: exit %d", code)
		}
		mustContain(t, "status", out, "state failed")
		mustContain(t, "status", out, "FAILED")
	})
}

// activitySummaries are the one-line summaries of a workflow's scheduled
// activities, as the Web UI shows them.
func activitySummaries(t *testing.T, h *harness, id string, text func(*commonpb.Payload) string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, ev := range history(t, h.client, id, "").GetEvents() {
		// Read-only tools run as local activities: their summary is on
		// the marker that records them.
		if t := ev.GetEventType(); t == enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED || t == enumspb.EVENT_TYPE_MARKER_RECORDED {
			if sum := ev.GetUserMetadata().GetSummary(); sum != nil {
				out[text(sum)] = true
			}
		}
	}
	return out
}

// openActivities lists the activities of a workflow's history that were
// scheduled and never completed, failed, timed out or cancelled.
func openActivities(t *testing.T, h *harness, wid string) []string {
	t.Helper()
	scheduled := map[int64]string{}
	it := h.client.GetWorkflowHistory(context.Background(), wid, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatalf("history of %s: %v", wid, err)
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			scheduled[ev.GetEventId()] = a.GetActivityType().GetName() + "#" + a.GetActivityId()
		}
		for _, id := range []int64{ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId(), ev.GetActivityTaskFailedEventAttributes().GetScheduledEventId(),
			ev.GetActivityTaskTimedOutEventAttributes().GetScheduledEventId(), ev.GetActivityTaskCanceledEventAttributes().GetScheduledEventId()} {
			delete(scheduled, id)
		}
	}
	var open []string
	for _, name := range scheduled {
		open = append(open, name)
	}
	return open
}
