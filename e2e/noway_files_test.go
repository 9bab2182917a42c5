package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"codeswarm/activities"
	"codeswarm/llm/scripted"
)

const (
	filesRunID = "e2e-noway-files"
	// filesKey is the worker's API key in TestNoWayOutFiles.
	filesKey = "sk-test-NOWAYFILES-3e8a1c5b7d9f2a4c"
	// filesShareKeys is tools.share.max_keys for the run: below
	// MaxCallsPerReply, so that one answer hits both caps.
	filesShareKeys = 40
	// filesRSSBound is how much the worker (this test process) may grow
	// during the run: the attacks it survives would take gigabytes.
	filesRSSBound = 512 << 20
)

// filesStage names the sub-agents of TestNoWayOutFiles: each plants an
// AGENTS.md symlink that the next one's prompt must not follow.
func filesStage(name string) string { return "[noway:files:" + name + "]" }

// filesPlan chains four sub-agents: each starts from the previous one's
// merged work, so each reads the AGENTS.md the previous one committed.
func filesPlan() string {
	return planJSON(
		planEntry{Name: "environ", Instruction: filesStage("environ") + " Link AGENTS.md to the environment."},
		planEntry{Name: "zero", Instruction: filesStage("zero") + " Link AGENTS.md to /dev/zero.", Dependencies: []string{"environ"}},
		planEntry{Name: "shadow", Instruction: filesStage("shadow") + " Attack with files.", Dependencies: []string{"zero"}},
		planEntry{Name: "last", Instruction: filesStage("last") + " Read the last link.", Dependencies: []string{"shadow"}},
	)
}

// spacedKey is filesKey as a model would spell it to slip past a filter.
func spacedKey() string { return strings.Join(strings.Split(filesKey, ""), " ") }

// filesAgents are the scripted sub-agents of TestNoWayOutFiles.
func filesAgents() []scripted.Agent {
	bash := func(cmd string) scripted.ToolCall { return tc("bash", map[string]any{"command": cmd, "timeout": 60}) }
	link := func(stage, target string) scripted.Agent {
		return scripted.Agent{Match: filesStage(stage), Turns: []scripted.Reply{
			{Content: "Linking.", ToolCalls: []scripted.ToolCall{bash("rm -f AGENTS.md && ln -s " + target + " AGENTS.md && ls -l AGENTS.md")}},
			{Content: "Linked.\nSTATUS: completed"},
		}}
	}
	var shares []scripted.ToolCall
	for i := range 10000 {
		shares = append(shares, tc("swarm_share", map[string]any{"action": "publish", "key": fmt.Sprintf("k%05d", i), "value": "v"}))
	}
	return []scripted.Agent{
		link("environ", "/proc/self/environ"),
		link("zero", "/dev/zero"),
		{Match: filesStage("shadow"), Turns: []scripted.Reply{
			{Content: "A 2 GiB sparse file and a FIFO.", ToolCalls: []scripted.ToolCall{
				bash("truncate -s 2G big.bin && mkfifo pipe && ls -ls big.bin pipe"),
			}},
			{Content: "Making the worker read them.", ToolCalls: []scripted.ToolCall{
				tc("edit", map[string]any{"path": "big.bin", "old_string": "x", "new_string": "y"}),
				tc("multiedit", map[string]any{"path": "big.bin", "edits": []map[string]any{{"old_string": "x", "new_string": "y"}}}),
				tc("write", map[string]any{"path": "big.bin", "content": "small now\n"}),
				tc("read", map[string]any{"path": "big.bin"}),
				tc("write", map[string]any{"path": "pipe", "content": "into the fifo\n"}),
				tc("edit", map[string]any{"path": "pipe", "old_string": "x", "new_string": "y"}),
				tc("read", map[string]any{"path": "pipe"}),
			}},
			{Content: "Ten thousand keys.", ToolCalls: shares},
			{Content: "The key, spelled out.", ToolCalls: []scripted.ToolCall{
				tc("write", map[string]any{"path": "spelled.txt", "content": "key: " + spacedKey() + "\n"}),
				bash("rm -f AGENTS.md && ln -s /etc/shadow AGENTS.md && rm -f big.bin pipe && echo cleaned"),
			}},
			{Content: "Attacked.\nSTATUS: completed"},
		}},
		{Match: filesStage("last"), Turns: []scripted.Reply{
			{Content: "Noting.", ToolCalls: []scripted.ToolCall{tc("write", map[string]any{"path": "last.txt", "content": "last\n"})}},
			{Content: "Noted.\nSTATUS: completed"},
		}},
	}
}

// TestNoWayOutFiles runs sub-agents that attack the files codeswarm's own
// code reads: AGENTS.md linked to /proc/self/environ, /dev/zero and
// /etc/shadow, a 2 GiB sparse file and a FIFO handed to write, edit,
// multiedit and read, one answer of 10,000 swarm_share calls, and the key
// spelled out with spaces. Each is refused or capped, the worker stays
// small, the key is nowhere, and every subtask ends completed and merged.
func TestNoWayOutFiles(t *testing.T) {
	repo, wsRoot := varTmpDir(t, "repo"), varTmpDir(t, "ws")
	h := newHarness(t, scripted.Script{})
	model := scripted.NewHandler(scripted.Script{
		Planner: []scripted.Reply{{Content: filesPlan()}},
		Agents:  filesAgents(),
	}, scripted.WithAPIKey(filesKey))
	srv := httptest.NewServer(model)
	t.Cleanup(srv.Close)
	t.Cleanup(model.Close)
	t.Setenv("CODESWARM_LLM_BASE_URL", srv.URL+"/v1")
	t.Setenv("CODESWARM_LLM_API_KEY", filesKey)
	t.Setenv("CODESWARM_WORKSPACE_ROOT", wsRoot)
	t.Setenv("CODESWARM_LLM_REQUESTS_PER_SECOND", "200")
	t.Setenv("CODESWARM_TOOLS_SHARE_MAX_KEYS", strconv.Itoa(filesShareKeys))
	h.root = wsRoot

	writeRepo(t, repo, map[string]string{"README.md": "# user's repo\n"})
	before, refsBefore := snapshot(t, repo), userRefs(t, repo)
	configBefore := readFileE2E(t, filepath.Join(repo, ".git", "config"))
	mainBefore := git(t, repo, "rev-parse", "refs/heads/main")

	peak := watchRSS(t)
	base := rss()
	code, res := h.runJSON("run", "--repo", repo, "--task", "Attack with files.", "--id", filesRunID, "--max-steps", "10")
	grown := peak() - base
	if code != 0 || !res.Success || res.Sandbox != "on" || len(res.SubtaskResults) != 4 {
		t.Fatalf("run failed or unsandboxed (exit %d):\n%s\nlogs:\n%s", code, fmtResult(res), tail(h.logs.String(), 6000))
	}
	results := toolResults(lastAgentRequest(t, model.Requests(), filesStage("shadow")).Body)
	out := func(i int) string {
		t.Helper()
		if i >= len(results) {
			t.Fatalf("only %d tool results", len(results))
		}
		return results[i].Content
	}
	for i, r := range results {
		if i < 9 || i == len(results)-1 {
			t.Logf("tool result %d (%s): %s", i, r.Name, tail(r.Content, 300))
		}
	}

	t.Run("AGENTS.md links are not followed", func(t *testing.T) {
		for _, stage := range []string{"zero", "shadow", "last"} {
			prompt := systemPrompt(t, model.Requests(), filesStage(stage))
			for _, bad := range []string{"PATH=", "HOME=", "root:", "\x00", "CODESWARM_"} {
				if strings.Contains(prompt, bad) {
					t.Errorf("%s's system prompt holds %q from the linked file", stage, bad)
				}
			}
			if len(prompt) > 64<<10 {
				t.Errorf("%s's system prompt is %d bytes", stage, len(prompt))
			}
		}
	})
	t.Run("the sparse file and the FIFO are refused", func(t *testing.T) {
		mustContain(t, "planting", out(0), "big.bin")
		for i := 1; i <= 3; i++ {
			mustContain(t, results[i].Name+" of the 2 GiB file", out(i), "tools.max_file_bytes")
		}
		// read looks at the first 8 KiB only, and refuses a binary file.
		mustContain(t, "read of the 2 GiB file", out(4), "looks binary")
		for i := 5; i <= 7; i++ {
			mustContain(t, results[i].Name+" of the FIFO", out(i), "not a regular file")
		}
	})
	t.Run("one answer runs at most MaxCallsPerReply calls and the run at most max_keys keys", func(t *testing.T) {
		shares := results[8 : 8+activities.MaxCallsPerReply]
		published, refused := 0, 0
		for _, r := range shares {
			switch {
			case r.Name != "swarm_share":
				t.Fatalf("tool result %q among the shares", r.Name)
			case strings.Contains(r.Content, "tools.share.max_keys"):
				refused++
			default:
				published++
			}
		}
		if published != filesShareKeys || refused != activities.MaxCallsPerReply-filesShareKeys {
			t.Errorf("%d shares published and %d refused, want %d and %d", published, refused, filesShareKeys, activities.MaxCallsPerReply-filesShareKeys)
		}
		if got := results[8+activities.MaxCallsPerReply].Name; got != "write" {
			t.Errorf("the result after the shares is %s's, want the next answer's write: the dropped calls ran", got)
		}
		mustContain(t, "the capped answer", string(lastAgentRequest(t, model.Requests(), filesStage("shadow")).Body), "only the first 64 were run, the other 9936 were dropped")
	})
	t.Run("the worker stays small", func(t *testing.T) {
		t.Logf("worker RSS grew by %d MiB during the run (bound %d MiB)", grown>>20, filesRSSBound>>20)
		if grown > filesRSSBound {
			t.Errorf("worker RSS grew by %d MiB, bound %d MiB", grown>>20, filesRSSBound>>20)
		}
	})
	t.Run("every subtask completed and merged", func(t *testing.T) {
		for _, s := range res.SubtaskResults {
			if !s.Success || s.Status != "completed" || s.Merge != "merged" {
				t.Errorf("subtask %s: %+v", s.ID, s)
			}
		}
		mustContain(t, "the spelled-out key's file", git(t, repo, "show", res.Branch+":spelled.txt"), "key: ")
	})
	t.Run("the key is nowhere", func(t *testing.T) {
		forms := []string{filesKey, spacedKey(), "NOWAYFILES", "N O W A Y F I L E S"}
		check := func(where, s string) {
			for _, f := range forms {
				if strings.Contains(s, f) {
					t.Errorf("%s contains the key (as %q)", where, f)
					return
				}
			}
		}
		checkRunOutputs(check, results, model.Requests(), res, h.logs.String(), wsRoot)
		for _, ref := range strings.Fields(git(t, repo, "for-each-ref", "--format=%(refname)")) {
			check("branch "+ref, git(t, repo, "log", "-p", "--format=%B", ref))
		}
		for _, id := range workflowIDs(t, h) {
			check("history of "+id, historyJSON(t, h.client, id, ""))
		}
	})
	t.Run("the user's refs, config and working tree are byte-identical", func(t *testing.T) {
		if got := git(t, repo, "rev-parse", "refs/heads/main"); got != mainBefore {
			t.Errorf("main moved: %s -> %s", mainBefore, got)
		}
		if got := userRefs(t, repo); got != refsBefore {
			t.Errorf("refs changed:\n%s\nwant:\n%s", got, refsBefore)
		}
		if got := readFileE2E(t, filepath.Join(repo, ".git", "config")); got != configBefore {
			t.Errorf("config changed:\n%s\nwant:\n%s", got, configBefore)
		}
		if after := snapshot(t, repo); after != before {
			t.Errorf("working tree changed")
		}
	})
}

// systemPrompt is the system message of a sub-agent's first request.
func systemPrompt(t *testing.T, reqs []scripted.Request, match string) string {
	t.Helper()
	for _, r := range reqs {
		if r.Agent == match && r.Status == http.StatusOK && r.Turn == 0 {
			var body chatBody
			if err := json.Unmarshal(r.Body, &body); err != nil || len(body.Messages) == 0 {
				t.Fatalf("unreadable first request of %s: %v", match, err)
			}
			return body.Messages[0].Content
		}
	}
	t.Fatalf("no first request of %s", match)
	return ""
}

// rss is this process's resident set size in bytes.
func rss() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// watchRSS samples rss every 20 ms until the test ends; the returned
// function gives the highest sample so far.
func watchRSS(t *testing.T) func() int64 {
	var peak atomic.Int64
	peak.Store(rss())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if r := rss(); r > peak.Load() {
					peak.Store(r)
				}
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return peak.Load
}
