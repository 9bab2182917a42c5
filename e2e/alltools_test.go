package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"codeswarm/activities"
	"codeswarm/control"
	"codeswarm/llm/scripted"
)

// Markers of the two scripted agents; each is unique to its instruction.
const (
	toolsStage0Match = "[tools:stage0-every-tool]"
	toolsStage1Match = "[tools:stage1-reads-the-share]"
	toolsStage0ID    = "01-exercise-tools"
	toolsStage1ID    = "02-read-shared"
	toolsRunID       = "e2e-alltools"
	toolsTask        = "Exercise every sub-agent tool, then read the swarm store in a dependent subtask."
	sharedKey        = "tools/finding"
	sharedValue      = `{"version":"1.1.0","checked_by":"exercise-tools"}`
	stage0Final      = "All tools exercised; published tools/finding.\nSTATUS: completed"
)

// echoPlaceholder in a scripted tool call's arguments is replaced by the
// tool results of the request it answers (see echoModel).
const echoPlaceholder = "@@ECHO_PREVIOUS_TOOL_RESULTS@@"

// toolsRepo is the generated repository, path → content.
func toolsRepo() map[string]string {
	var notes strings.Builder
	for i := 1; i <= 10; i++ {
		fmt.Fprintf(&notes, "line %d\n", i)
	}
	return map[string]string{
		"README.md":            "# tools fixture\n\nTODO: write real docs.\n",
		"docs/notes.txt":       notes.String(),
		"src/app/config.go":    "package app\n\n// Version is the release.\nconst Version = \"1.0.0\"\n",
		"src/app/util.go":      "package app\n\n// TODO: tidy\nfunc Add(a, b int) int { return a + b }\n\nfunc Sub(a, b int) int { return a - b }\n",
		"src/lib/deep/strs.go": "package deep\n\n// Upper is a stub.\nfunc Upper(s string) string { return s }\n",
	}
}

// toolsFinalTree is what the integration branch must hold at the end, except
// shared/seen.txt, whose content the stage-1 agent copied from tool results.
func toolsFinalTree() map[string]string {
	tree := toolsRepo()
	tree["src/app/config.go"] = "package app\n\n// Version is the release.\nconst Version = \"1.1.0\"\n"
	tree["src/app/util.go"] = "package app\n\n// Add adds.\nfunc Add(a, b int) int { return a + b }\n\n// Sub subtracts.\nfunc Sub(a, b int) int { return a - b }\n"
	tree["out/report.txt"] = "report: version 1.1.0\n"
	tree["gen/bash.txt"] = "made by bash\n"
	return tree
}

func writeRepo(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for path, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git(t, dir, "init", "--quiet", "--initial-branch=main")
	git(t, dir, "add", "--all")
	git(t, dir, "commit", "--quiet", "--no-gpg-sign", "-m", "fixture")
}

func toolsScript() scripted.Script {
	plan := planJSON(
		planEntry{Name: "exercise-tools", Instruction: toolsStage0Match + " Use every tool once and publish the finding."},
		planEntry{Name: "read-shared", Instruction: toolsStage1Match + " Read what stage 0 shared and record it.", Dependencies: []string{"exercise-tools"}},
	)
	return scripted.Script{
		Planner: []scripted.Reply{{Content: plan}},
		Agents: []scripted.Agent{
			{Match: toolsStage0Match, Turns: stage0Turns()},
			{Match: toolsStage1Match, Turns: stage1Turns()},
		},
	}
}

// stage0Turns uses every tool, sends one malformed and one unknown call in
// between, and publishes a finding.
func stage0Turns() []scripted.Reply {
	return []scripted.Reply{
		{ToolCalls: []scripted.ToolCall{
			tc("read", map[string]any{"path": "docs/notes.txt", "offset": 3, "limit": 2}),
			tc("list", map[string]any{"path": "src"}),
		}},
		{ToolCalls: []scripted.ToolCall{
			tc("glob", map[string]any{"pattern": "**/*.go"}),
			tc("grep", map[string]any{"pattern": "TODO", "include": "*.go"}),
		}},
		{Content: "Trying two calls.", ToolCalls: []scripted.ToolCall{
			{Name: "write", Arguments: `{"path": "x.txt", "content": "unterminated`},
			tc("delete_file", map[string]any{"path": "README.md"}),
		}},
		{Content: "Recovering with valid calls.", ToolCalls: []scripted.ToolCall{
			tc("write", map[string]any{"path": "out/report.txt", "content": "report: version 1.1.0\n"}),
			tc("edit", map[string]any{"path": "src/app/config.go", "old_string": `"1.0.0"`, "new_string": `"1.1.0"`}),
			tc("multiedit", map[string]any{"path": "src/app/util.go", "edits": []map[string]any{
				{"old_string": "// TODO: tidy\n", "new_string": "// Add adds.\n"},
				{"old_string": "func Sub", "new_string": "// Sub subtracts.\nfunc Sub"},
			}}),
		}},
		{ToolCalls: []scripted.ToolCall{
			tc("bash", map[string]any{"command": "mkdir -p gen && printf 'made by bash\\n' > gen/bash.txt && wc -l < docs/notes.txt"}),
		}},
		{ToolCalls: []scripted.ToolCall{
			tc("swarm_share", map[string]any{"action": "publish", "key": sharedKey, "value": json.RawMessage(sharedValue), "tags": []string{"finding", "version"}}),
			// Bad arguments the parent would refuse come back as tool errors.
			tc("swarm_share", map[string]any{"action": "publish", "key": " ", "value": 1}),
			tc("swarm_share", map[string]any{"action": "publish", "key": "huge", "value": strings.Repeat("x", 17000)}),
		}},
		{Content: stage0Final},
	}
}

// stage1Turns reads the swarm store every way it can, then writes what it
// read into shared/seen.txt (echoModel fills the content in).
func stage1Turns() []scripted.Reply {
	return []scripted.Reply{
		{ToolCalls: []scripted.ToolCall{
			tc("swarm_share", map[string]any{"action": "get", "key": sharedKey}),
			tc("swarm_share", map[string]any{"action": "query_tags", "tags": []string{"stage:0", "subtask:" + toolsStage0ID}}),
			tc("swarm_share", map[string]any{"action": "query_prefix", "prefix": "01-"}),
			tc("swarm_share", map[string]any{"action": "list"}),
			tc("read", map[string]any{"path": "out/report.txt"}),
		}},
		{ToolCalls: []scripted.ToolCall{
			tc("write", map[string]any{"path": "shared/seen.txt", "content": echoPlaceholder}),
		}},
		{Content: "Recorded what stage 0 shared.\nSTATUS: completed"},
	}
}

func tc(name string, args any) scripted.ToolCall {
	return scripted.ToolCall{Name: name, Arguments: mustMarshal(args)}
}

func mustMarshal(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // literals of this file always encode
	}
	return string(b)
}

// planEntry is one subtask of a planner answer.
type planEntry struct {
	Name         string   `json:"name"`
	Instruction  string   `json:"instruction"`
	Specialty    string   `json:"specialty"`
	Dependencies []string `json:"dependencies"`
	Priority     int      `json:"priority"`
	NeedsWT      bool     `json:"needs_worktree"`
}

func planJSON(entries ...planEntry) string {
	for i := range entries {
		entries[i].NeedsWT = true
		if entries[i].Dependencies == nil {
			entries[i].Dependencies = []string{}
		}
	}
	return mustMarshal(map[string]any{"subtasks": entries})
}

// echoModel wraps the scripted handler: in an answer carrying
// echoPlaceholder, it puts the tool results of the request, as a JSON array
// of {name, content}. A fixed script cannot know what the swarm store will
// return, so this is how the stage-1 agent writes down what it really read.
type echoModel struct{ inner *scripted.Handler }

func (e echoModel) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := readAllBody(r)
	rec := httptest.NewRecorder()
	e.inner.ServeHTTP(rec, r)
	out := rec.Body.Bytes()
	if bytes.Contains(out, []byte(echoPlaceholder)) {
		out = bytes.ReplaceAll(out, []byte(echoPlaceholder), []byte(doubleEscape(lastToolResults(body))))
	}
	for k, v := range rec.Header() {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(out)
}

// readAllBody reads the request body and puts it back for the inner handler.
func readAllBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	return body, err
}

// doubleEscape escapes s for a JSON string (the tool call's arguments) that
// is itself inside a JSON string (the response body).
func doubleEscape(s string) string {
	once, _ := json.Marshal(s)
	twice, _ := json.Marshal(string(once[1 : len(once)-1]))
	return string(twice[1 : len(twice)-1])
}

// chatBody is the part of a chat request the tests read.
type chatBody struct {
	Messages []struct {
		Role       string `json:"role"`
		Content    string `json:"content"`
		ToolCallID string `json:"tool_call_id"`
		ToolCalls  []struct {
			ID       string `json:"id"`
			Function struct {
				Name      string `json:"name"`
				Arguments string `json:"arguments"`
			} `json:"function"`
		} `json:"tool_calls"`
	} `json:"messages"`
}

// toolResult is one tool message as the model saw it.
type toolResult struct {
	Name    string `json:"name"`
	Content string `json:"content"`
}

// toolResults returns every tool result of a chat request, in order, named
// by the function of the tool call each answers.
func toolResults(body []byte) []toolResult {
	var req chatBody
	if err := json.Unmarshal(body, &req); err != nil {
		return nil
	}
	names := map[string]string{}
	var out []toolResult
	for _, m := range req.Messages {
		for _, c := range m.ToolCalls {
			names[c.ID] = c.Function.Name
		}
		if m.Role == "tool" {
			out = append(out, toolResult{Name: names[m.ToolCallID], Content: m.Content})
		}
	}
	return out
}

// lastToolResults encodes the tool results after the last assistant message.
func lastToolResults(body []byte) string {
	var req chatBody
	if err := json.Unmarshal(body, &req); err != nil {
		return "unreadable request: " + err.Error()
	}
	last := -1
	for i, m := range req.Messages {
		if m.Role == "assistant" {
			last = i
		}
	}
	all := toolResults(body)
	return mustMarshal(all[max(len(all)-(len(req.Messages)-1-last), 0):])
}

// lastAgentRequest is the latest answered request of an agent: it carries
// the agent's whole conversation.
func lastAgentRequest(t *testing.T, reqs []scripted.Request, match string) scripted.Request {
	t.Helper()
	var best *scripted.Request
	for i := range reqs {
		r := &reqs[i]
		if r.Agent == match && r.Status == http.StatusOK && (best == nil || r.Turn > best.Turn) {
			best = r
		}
	}
	if best == nil {
		t.Fatalf("no answered request of agent %s", match)
	}
	return *best
}

// TestEveryToolEndToEnd runs a two-stage plan whose first agent uses every
// tool (and recovers from a malformed and an unknown call) and whose second
// agent reads the swarm store, through the CLI on a real repository.
func TestEveryToolEndToEnd(t *testing.T) {
	script := toolsScript()
	h := newHarness(t, scripted.Script{}) // its own model stays idle; echoModel answers
	model := scripted.NewHandler(script, scripted.WithAPIKey(testAPIKey))
	srv := httptest.NewServer(echoModel{inner: model})
	t.Cleanup(srv.Close)
	t.Cleanup(model.Close)
	t.Setenv("CODESWARM_LLM_BASE_URL", srv.URL+"/v1")
	t.Setenv("CODESWARM_LLM_REQUESTS_PER_SECOND", "200")

	repo := t.TempDir()
	writeRepo(t, repo, toolsRepo())
	code, res := h.runJSON("run", "--repo", repo, "--task", toolsTask, "--id", toolsRunID, "--max-steps", "20")
	if code != 0 || !res.Success {
		t.Fatalf("run failed (exit %d):\n%s\nlogs:\n%s", code, fmtResult(res), tail(h.logs.String(), 6000))
	}
	t.Run("result", func(t *testing.T) { checkToolsResult(t, res) })
	t.Run("stage-0 tool results seen by the model", func(t *testing.T) {
		checkStage0Results(t, toolResults(lastAgentRequest(t, model.Requests(), toolsStage0Match).Body))
	})
	t.Run("final tree on the integration branch", func(t *testing.T) { checkFinalTree(t, repo, res.Branch) })
	t.Run("stage 1 read what stage 0 shared", func(t *testing.T) {
		checkSeen(t, git(t, repo, "show", res.Branch+":shared/seen.txt"))
	})
}

func checkToolsResult(t *testing.T, res activities.SwarmResult) {
	subs := byID(res)
	s0, s1 := subs[toolsStage0ID], subs[toolsStage1ID]
	if len(subs) != 2 || s0.Stage != 0 || s1.Stage != 1 || !slices.Equal(s1.Dependencies, []string{toolsStage0ID}) {
		t.Fatalf("want %s (stage 0) and %s (stage 1, depends on it):\n%s", toolsStage0ID, toolsStage1ID, fmtResult(res))
	}
	// 2+2+2+3+1+3 calls in six tool turns, then the final answer.
	if s0.Steps != 7 || s0.ToolCalls != 13 || s0.Merge != activities.MergeMerged {
		t.Errorf("stage 0: steps %d, tool calls %d, merge %s; want 7, 13, merged", s0.Steps, s0.ToolCalls, s0.Merge)
	}
	if s1.Steps != 3 || s1.ToolCalls != 6 || s1.Merge != activities.MergeMerged {
		t.Errorf("stage 1: steps %d, tool calls %d, merge %s; want 3, 6, merged", s1.Steps, s1.ToolCalls, s1.Merge)
	}
}

func checkStage0Results(t *testing.T, got []toolResult) {
	want := []struct {
		name, check string
		exact       bool
	}{
		{"read", "     3\tline 3\n     4\tline 4\n... 6 more lines; use offset=5 to read on\n", true},
		{"list", "src/\napp/\nlib/\n", true},
		{"glob", "src/app/config.go\nsrc/app/util.go\nsrc/lib/deep/strs.go\n", true},
		{"grep", "src/app/util.go:3:", false},
		{"write", "invalid JSON arguments for write", false},
		{"delete_file", `unknown tool "delete_file"`, false},
		{"write", "out/report.txt", false},
		{"edit", "Edited src/app/config.go: replaced 1 occurrence(s)", false},
		{"multiedit", "Edited src/app/util.go: applied 2 edit(s)", false},
		{"bash", "10\n", false},
		{"swarm_share", `Published "` + sharedKey + `"`, false},
		{"swarm_share", `swarm_share error: swarm_share: action "publish" requires "key" (not blank)`, true},
		{"swarm_share", "swarm_share error: swarm_share: the value is 17002 bytes, over the limit of 16384 (tools.share.max_value_bytes)", false},
	}
	if len(got) != len(want) {
		t.Fatalf("the model saw %d tool results, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		ok := g.Content == w.check || (!w.exact && strings.Contains(g.Content, w.check))
		if g.Name != w.name || !ok {
			t.Errorf("tool result %d (%s): want %s with %q, got:\n%s", i, g.Name, w.name, w.check, g.Content)
		}
	}
	if g := got[3].Content; strings.Contains(g, "README.md") {
		t.Errorf("grep with include *.go matched README.md:\n%s", g)
	}
	if g := got[9].Content; !strings.HasSuffix(g, "exit code: 0") {
		t.Errorf("bash result does not end with exit code: 0:\n%s", g)
	}
}

func checkFinalTree(t *testing.T, repo, branch string) {
	want := toolsFinalTree()
	files := strings.Split(git(t, repo, "ls-tree", "-r", "--name-only", branch), "\n")
	wantFiles := append(mapKeys(want), "shared/seen.txt")
	slices.Sort(wantFiles)
	if !slices.Equal(files, wantFiles) {
		t.Errorf("files on %s:\n%v\nwant\n%v", branch, files, wantFiles)
	}
	for path, content := range want {
		got := catFile(t, repo, branch+":"+path)
		if got != content {
			t.Errorf("%s on %s:\n%q\nwant\n%q", path, branch, got, content)
		}
	}
}

func mapKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

// catFile returns a blob byte for byte (git() trims the output).
func catFile(t *testing.T, repo, object string) string {
	t.Helper()
	out, err := execGit(repo, "cat-file", "blob", object)
	if err != nil {
		t.Fatalf("git cat-file %s: %v", object, err)
	}
	return out
}

// checkSeen decodes what the stage-1 agent wrote and checks each read of the
// swarm store: the published finding and the executor's own publication of
// the stage-0 result.
func checkSeen(t *testing.T, seen string) {
	var results []toolResult
	if err := json.Unmarshal([]byte(seen), &results); err != nil {
		t.Fatalf("shared/seen.txt is not the echoed tool results: %v\n%s", err, seen)
	}
	if len(results) != 5 {
		t.Fatalf("shared/seen.txt holds %d tool results, want 5:\n%s", len(results), seen)
	}
	get, byTags, byPrefix, all := shared(t, results[0]), shared(t, results[1]), shared(t, results[2]), shared(t, results[3])
	if len(get) != 1 || get[0].Key != sharedKey || !jsonEqual(get[0].Value, sharedValue) ||
		!slices.Equal(get[0].Tags, []string{"finding", "version"}) || get[0].Publisher != toolsStage0ID {
		t.Errorf("get %s: %+v", sharedKey, get)
	}
	auto := control.SharedResult{Key: toolsStage0ID, Value: mustMarshal(stage0Final), Publisher: toolsStage0ID,
		Tags: []string{"stage:0", "subtask:" + toolsStage0ID}}
	for name, got := range map[string][]control.SharedResult{"query_tags": byTags, "query_prefix": byPrefix} {
		if len(got) != 1 || got[0].Key != auto.Key || !jsonEqual(got[0].Value, auto.Value) ||
			!slices.Equal(got[0].Tags, auto.Tags) || got[0].Publisher != auto.Publisher {
			t.Errorf("%s: %+v, want the stage-0 result %+v", name, got, auto)
		}
	}
	keys := []string{}
	for _, r := range all {
		keys = append(keys, r.Key)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{toolsStage0ID, sharedKey}) {
		t.Errorf("list: keys %v", keys)
	}
	if r := results[4]; r.Name != "read" || !strings.Contains(r.Content, "report: version 1.1.0") {
		t.Errorf("stage 1 did not start from stage 0's merge: read out/report.txt gave %+v", r)
	}
}

// shared decodes a swarm_share read result.
func shared(t *testing.T, r toolResult) []control.SharedResult {
	t.Helper()
	var out []control.SharedResult
	if r.Name != "swarm_share" || json.Unmarshal([]byte(r.Content), &out) != nil {
		t.Errorf("not a swarm_share read result: %+v", r)
	}
	return out
}

func jsonEqual(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	return mustMarshal(x) == mustMarshal(y)
}
