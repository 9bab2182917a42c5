package e2e

import (
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"codeswarm/llm/scripted"
)

const (
	nowayGitMatch  = "[noway:git]"
	nowayGitRunID  = "e2e-noway-git"
	nowayGitSecret = "sk-test-NOWAYGIT-7d41c0e9a2b8"
)

// nowayGitTurns plant, through the sandboxed bash tool, everything that
// would make codeswarm's own git commands (which run outside the sandbox)
// run a program of the agent's: a nested repository with an fsmonitor, hooks
// under the user's relative hooks path, a .gitmodules update command and a
// .gitattributes filter. Each program would leave a marker in trap (which
// the sandbox cannot write) and dump its environment into the worktree.
func nowayGitTurns(trap string) []scripted.Reply {
	bash := func(cmd string) scripted.ToolCall {
		return tc("bash", map[string]any{"command": cmd, "timeout": 30})
	}
	prog := func(name string) string {
		return fmt.Sprintf(`#!/bin/sh\nenv > %s/%s\nenv > leak-%s.txt\ncat\n`, trap, name, name)
	}
	return []scripted.Reply{
		{Content: "A nested repository with an fsmonitor.", ToolCalls: []scripted.ToolCall{
			bash(`set -e; mkdir -p vendor/lib; cd vendor/lib; git init -q; echo 'package lib' > lib.go; git add lib.go; ` +
				`git -c user.name=a -c user.email=a@a commit -qm nested; ` +
				`printf '` + prog("fsmonitor") + `' > ../fsmon.sh; chmod +x ../fsmon.sh; git config core.fsmonitor "$PWD/../fsmon.sh"; ` +
				`git config filter.evil.clean "$PWD/../fsmon.sh"; git config diff.evil.textconv "$PWD/../fsmon.sh"; echo planted`),
		}},
		{Content: "Hooks where the user's hooks path points.", ToolCalls: []scripted.ToolCall{
			bash(`set -e; mkdir -p .husky/_; for h in pre-commit commit-msg prepare-commit-msg post-commit post-index-change ` +
				`reference-transaction post-checkout post-merge post-rewrite; do printf '` + prog("hook-'$h'") + `' > .husky/_/$h; ` +
				`chmod +x .husky/_/$h; done; echo planted`),
		}},
		{Content: "A submodule update command and a filter.", ToolCalls: []scripted.ToolCall{
			bash(fmt.Sprintf(`set -e; printf '[submodule "lib"]\n\tpath = vendor/lib\n\turl = ./vendor/lib\n\tupdate = !env > %s/update\n' > .gitmodules; `+
				`printf '* filter=evil diff=evil merge=evil\n' > .gitattributes; echo 'package main // changed' > main.go; echo planted`, trap)),
		}},
		{Content: "Done.\nSTATUS: completed"},
	}
}

// TestNoWayOutGit runs a sub-agent that plants every known way to make
// codeswarm's own git commands run its programs, with --apply, and checks
// that none ran, the run still committed, merged and applied its work, the
// worker's secret is in no branch, and the user's config and other refs are
// byte-identical.
func TestNoWayOutGit(t *testing.T) {
	trap := varTmpDir(t, "trap")
	repo := varTmpDir(t, "repo")
	h := newHarness(t, scripted.Script{})
	model := scripted.NewHandler(scripted.Script{
		Planner: []scripted.Reply{{Content: planJSON(planEntry{Name: "plant", Instruction: nowayGitMatch + " Plant."})}},
		Agents:  []scripted.Agent{{Match: nowayGitMatch, Turns: nowayGitTurns(trap)}},
	}, scripted.WithAPIKey(testAPIKey))
	srv := httptest.NewServer(model)
	t.Cleanup(srv.Close)
	t.Cleanup(model.Close)
	t.Setenv("CODESWARM_LLM_BASE_URL", srv.URL+"/v1")
	t.Setenv("CODESWARM_LLM_REQUESTS_PER_SECOND", "200")

	writeRepo(t, repo, map[string]string{"README.md": "# user's repo\n", "main.go": "package main\n"})
	git(t, repo, "config", "core.hooksPath", ".husky/_") // husky's setup
	git(t, repo, "branch", "user-topic")
	git(t, repo, "tag", "v1")
	configBefore := readFileE2E(t, filepath.Join(repo, ".git", "config"))
	refsBefore := userRefs(t, repo)

	// The worker's environment: a secret, and a global config defining the
	// drivers the agent's .gitattributes names (as a user's might).
	global := filepath.Join(varTmpDir(t, "home"), "gitconfig")
	if err := os.WriteFile(global, []byte(fmt.Sprintf("[filter \"evil\"]\n\tclean = env > %[1]s/global-clean; cat\n\tsmudge = env > %[1]s/global-smudge; cat\n"+
		"[diff \"evil\"]\n\ttextconv = env > %[1]s/global-textconv; cat\n[merge \"evil\"]\n\tdriver = env > %[1]s/global-merge; false\n", trap)), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("OPENAI_API_KEY", nowayGitSecret)
	t.Setenv("GIT_CONFIG_GLOBAL", global)

	code, res := h.runJSON("run", "--repo", repo, "--task", "Plant things.", "--id", nowayGitRunID, "--max-steps", "8", "--apply")
	// The checks below run plain git in a repository that now holds the
	// agent's hooks under the user's hooks path: plain git would run them.
	t.Setenv("GIT_CONFIG_GLOBAL", os.DevNull)
	t.Setenv("GIT_CONFIG_COUNT", "1")
	t.Setenv("GIT_CONFIG_KEY_0", "core.hooksPath")
	t.Setenv("GIT_CONFIG_VALUE_0", os.DevNull)
	if code != 0 || !res.Success {
		t.Fatalf("run failed (exit %d):\n%s\nlogs:\n%s", code, fmtResult(res), tail(h.logs.String(), 6000))
	}
	results := toolResults(lastAgentRequest(t, model.Requests(), nowayGitMatch).Body)
	for i, r := range results {
		if !strings.Contains(r.Content, "planted") {
			t.Fatalf("planting step %d failed: %q", i, r.Content)
		}
	}

	t.Run("no planted program ran", func(t *testing.T) {
		entries, err := os.ReadDir(trap)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			t.Errorf("planted program ran: %s", e.Name())
		}
	})
	t.Run("the work was committed, merged and applied", func(t *testing.T) {
		if res.ApplyError != "" {
			t.Fatalf("apply: %s", res.ApplyError)
		}
		if got, want := git(t, repo, "rev-parse", "refs/heads/main"), git(t, repo, "rev-parse", "refs/heads/"+res.Branch); got != want {
			t.Errorf("main at %s, want the integration head %s", got, want)
		}
		mustContain(t, "main.go", readFileE2E(t, filepath.Join(repo, "main.go")), "changed")
		if _, err := os.Stat(filepath.Join(repo, ".husky", "_", "post-merge")); err != nil {
			t.Errorf("the hooks did not reach the user's tree, so apply proved nothing: %v", err)
		}
		tree := git(t, repo, "ls-tree", "-r", "refs/heads/main", "vendor/lib")
		if !strings.Contains(tree, "100644 blob") || strings.Contains(tree, "160000") {
			t.Errorf("vendor/lib is not plain files in the result: %q", tree)
		}
		mustContain(t, "the subtask's commit message", git(t, repo, "log", "--format=%B", "refs/heads/main"), "vendor/lib committed as plain files")
		if st := git(t, repo, "status", "--porcelain", "--ignored"); st != "" {
			t.Errorf("the user's working tree differs from the applied result:\n%s", st)
		}
	})
	t.Run("the secret is in no branch", func(t *testing.T) {
		for _, ref := range strings.Fields(git(t, repo, "for-each-ref", "--format=%(refname)")) {
			for _, s := range []string{nowayGitSecret, testAPIKey} {
				if _, err := gitMaybe(repo, "grep", "-q", "-F", s, ref); err == nil {
					t.Errorf("%s holds a secret", ref)
				}
			}
		}
		for _, p := range []string{repo, h.root} {
			_ = filepath.Walk(p, func(path string, info os.FileInfo, err error) error {
				if err == nil && info.Mode().IsRegular() && strings.HasPrefix(info.Name(), "leak-") {
					t.Errorf("a planted program wrote %s", path)
				}
				return nil
			})
		}
	})
	t.Run("the user's config and other refs are byte-identical", func(t *testing.T) {
		if got := readFileE2E(t, filepath.Join(repo, ".git", "config")); got != configBefore {
			t.Errorf("config changed:\n%s\nwant:\n%s", got, configBefore)
		}
		if got := userRefs(t, repo); got != refsBefore {
			t.Errorf("refs changed:\n%s\nwant:\n%s", got, refsBefore)
		}
	})
}

// userRefs lists the refs other than main (which --apply moves) and the
// run's own branches.
func userRefs(t *testing.T, repo string) string {
	t.Helper()
	var keep []string
	for _, line := range strings.Split(git(t, repo, "for-each-ref", "--format=%(objectname) %(refname)"), "\n") {
		if !strings.HasSuffix(line, " refs/heads/main") && !strings.Contains(line, " refs/heads/codeswarm/") {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}

func readFileE2E(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
