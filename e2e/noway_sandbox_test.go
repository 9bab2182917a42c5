package e2e

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"codeswarm/activities"
	"codeswarm/llm/scripted"
)

const (
	nowayMatch = "[noway:confinement]"
	nowayRunID = "e2e-noway"
	// nowayToken is the credential in the user's git config: it must show
	// up nowhere.
	nowayToken = "ghp_NOWAY7c1e9a3b5d2f4e6a8c0b"
)

// nowayTurns tries what the sandbox's confinement refuses, one turn each,
// then does real work that must still be merged.
func nowayTurns(sock string) []scripted.Reply {
	bash := func(cmd string) scripted.ToolCall {
		return tc("bash", map[string]any{"command": cmd, "timeout": 60})
	}
	return []scripted.Reply{
		{Content: "Talking to a host socket.", ToolCalls: []scripted.ToolCall{
			bash(fmt.Sprintf(`ls -A /run /var/run; perl -MIO::Socket::UNIX -e '$s = IO::Socket::UNIX->new(Peer => "%s") or die "connect: $!\n"; print <$s>'; exit 0`, sock)),
		}},
		{Content: "Reading the git credentials.", ToolCalls: []scripted.ToolCall{
			bash(`git config --get remote.origin.url; git config --list; cat "$(git rev-parse --git-common-dir)/config"; git stash list; git show stash@{0}; exit 0`),
		}},
		{Content: "Reading the shadow file.", ToolCalls: []scripted.ToolCall{
			bash(`id -u; cat /etc/shadow; exit 0`),
		}},
		{Content: "Filling /tmp.", ToolCalls: []scripted.ToolCall{
			bash(`head -c 64M /dev/zero > /tmp/fill; echo "fill status $?"; du -k /tmp/fill`),
		}},
		{Content: "Allocating memory.", ToolCalls: []scripted.ToolCall{
			bash(`x=$(head -c 300M /dev/zero | tr "\0" a); echo "survived ${#x}"`),
		}},
		{Content: "Doing the work.", ToolCalls: []scripted.ToolCall{
			bash(`echo from-bash > work.txt && git status --short`),
			tc("write", map[string]any{"path": "notes/done.txt", "content": "from the write tool\n"}),
		}},
		{Content: "Done.\nSTATUS: completed"},
	}
}

// TestNoWayOutSandbox runs a sub-agent that tries a host socket, the git
// config's credentials and the stash, /etc/shadow, filling /tmp and a
// memory balloon through the real sandbox: each is refused, the token
// appears nowhere, and the subtask still completes and merges its work.
func TestNoWayOutSandbox(t *testing.T) {
	sock := ""
	if os.Geteuid() == 0 {
		sock = fmt.Sprintf("/run/codeswarm-e2e-%d.sock", rand.Uint64())
		ln, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatalf("listen on %s: %v", sock, err)
		}
		t.Cleanup(func() { ln.Close(); _ = os.Remove(sock) })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				_, _ = c.Write([]byte("HOST-SOCKET-REACHED\n"))
				c.Close()
			}
		}()
	} else {
		sock = "/run/codeswarm-e2e-absent.sock"
	}
	repo, wsRoot := varTmpDir(t, "repo"), varTmpDir(t, "ws")
	h := newHarness(t, scripted.Script{})
	model := scripted.NewHandler(scripted.Script{
		Planner: []scripted.Reply{{Content: planJSON(planEntry{Name: "confined", Instruction: nowayMatch + " Get out."})}},
		Agents:  []scripted.Agent{{Match: nowayMatch, Turns: nowayTurns(sock)}},
	})
	srv := httptest.NewServer(model)
	t.Cleanup(srv.Close)
	t.Cleanup(model.Close)
	t.Setenv("CODESWARM_LLM_BASE_URL", srv.URL+"/v1")
	t.Setenv("CODESWARM_WORKSPACE_ROOT", wsRoot)
	t.Setenv("CODESWARM_LLM_REQUESTS_PER_SECOND", "200")
	t.Setenv("CODESWARM_TOOLS_BASH_TMP_MAX_BYTES", fmt.Sprint(8<<20))
	t.Setenv("CODESWARM_TOOLS_BASH_MEMORY_MAX_BYTES", fmt.Sprint(64<<20))
	h.root = wsRoot

	writeRepo(t, repo, map[string]string{"README.md": "# user's repo\n"})
	git(t, repo, "config", "remote.origin.url", "https://x-access-token:"+nowayToken+"@github.com/o/r.git")
	git(t, repo, "config", "http.https://github.com/.extraheader", "AUTHORIZATION: bearer "+nowayToken)
	if err := os.WriteFile(filepath.Join(repo, "README.md"), []byte("wip "+nowayToken+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, repo, "stash", "push", "--quiet", "-m", "stash "+nowayToken)

	code, res := h.runJSON("run", "--repo", repo, "--task", "Get out.", "--id", nowayRunID, "--max-steps", "10")
	if code != 0 || !res.Success || res.Sandbox != "on" || len(res.SubtaskResults) != 1 {
		t.Fatalf("run failed or unsandboxed (exit %d):\n%s\nlogs:\n%s", code, fmtResult(res), tail(h.logs.String(), 6000))
	}
	results := toolResults(lastAgentRequest(t, model.Requests(), nowayMatch).Body)
	out := func(i int) string {
		if i >= len(results) {
			t.Fatalf("only %d tool results", len(results))
		}
		return results[i].Content
	}
	for i, r := range results {
		t.Logf("tool result %d: %s", i, tail(r.Content, 400))
	}
	t.Run("no host socket", func(t *testing.T) {
		if strings.Contains(out(0), "HOST-SOCKET-REACHED") || strings.Contains(out(0), filepath.Base(sock)) {
			t.Errorf("host socket reached or listed: %q", out(0))
		}
		mustContain(t, "socket", out(0), "connect: No such file")
	})
	t.Run("git config without credentials, no stash", func(t *testing.T) {
		mustContain(t, "remote url", out(1), "https://github.com/o/r.git\n")
		for _, gone := range []string{"extraheader", "x-access-token", "stash@{0}: "} {
			if strings.Contains(out(1), gone) {
				t.Errorf("git shows %q: %q", gone, out(1))
			}
		}
	})
	t.Run("shadow unreadable", func(t *testing.T) {
		if strings.Contains(out(2), "root:") {
			t.Errorf("shadow read: %q", out(2))
		}
		if os.Geteuid() == 0 {
			mustContain(t, "shadow", out(2), "65534\ncat: /etc/shadow: Permission denied")
		}
	})
	t.Run("tmp fill stops at the cap", func(t *testing.T) {
		mustContain(t, "tmp fill", out(3), "No space left on device")
		mustContain(t, "tmp fill", out(3), "8192\t/tmp/fill")
	})
	t.Run("memory balloon killed and reported", func(t *testing.T) {
		if strings.Contains(out(4), "survived 314572800") {
			t.Errorf("balloon survived: %q", out(4))
		}
		if os.Geteuid() == 0 {
			mustContain(t, "balloon", out(4), "killed: memory limit tools.bash.memory_max_bytes (64 MiB) reached")
		}
	})
	t.Run("the work is merged", func(t *testing.T) {
		s := res.SubtaskResults[0]
		if !s.Success || s.Status != "completed" || s.Merge != "merged" {
			t.Errorf("subtask outcome: %+v", s)
		}
		mustContain(t, "bash work", out(5), "?? work.txt")
		for _, f := range []string{"work.txt", "notes/done.txt"} {
			git(t, repo, "cat-file", "-e", s.Commit+":"+f)
		}
	})
	t.Run("the user's config and stash are intact", func(t *testing.T) {
		mustContain(t, "user's config", git(t, repo, "config", "--get", "remote.origin.url"), nowayToken)
		mustContain(t, "user's stash", git(t, repo, "stash", "list"), "stash "+nowayToken)
	})
	t.Run("the token appears nowhere", func(t *testing.T) {
		check := func(where, s string) {
			if strings.Contains(s, nowayToken) || strings.Contains(s, nowayToken[4:14]) {
				t.Errorf("%s contains the token", where)
			}
		}
		checkRunOutputs(check, results, model.Requests(), res, h.logs.String(), wsRoot)
	})
}

// checkRunOutputs hands check every place a run's text ends up: each tool
// result, each model request body, the result JSON, the CLI's logs and every
// regular file under the workspace root (transcripts, journals, worktrees).
func checkRunOutputs(check func(where, s string), results []toolResult, reqs []scripted.Request, res activities.SwarmResult, logs, wsRoot string) {
	for i := range results {
		check(fmt.Sprintf("tool result %d", i), results[i].Content)
	}
	for _, r := range reqs {
		check("a model request body", string(r.Body))
	}
	check("the result", fmtResult(res))
	check("the logs", logs)
	_ = filepath.WalkDir(wsRoot, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if b, err := os.ReadFile(p); err == nil {
				check(p, string(b))
			}
		}
		return nil
	})
}
