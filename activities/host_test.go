package activities

import (
	"path/filepath"
	"testing"
)

// A subtask restarted after a move starts from its old branch when that
// branch holds commits the integration branch lacks, and from the
// integration head when it holds none.
func TestStartSubtaskResumesFromMovedBranch(t *testing.T) {
	f := newGitFixture(t)
	prep := f.prepare(t)
	head := f.repo.commitOn(integration, prep.BaseCommit, map[string]string{"c.txt": "merged meanwhile\n"})
	old := f.repo.commitOn("codeswarm/old-host", prep.BaseCommit, map[string]string{"d.txt": "committed on the old host\n"})
	f.repo.git("branch", "codeswarm/old-host-empty", prep.BaseCommit)

	for _, tc := range []struct {
		name, from, wantHead, wantBase string
	}{
		{"commits", "codeswarm/old-host", old, prep.BaseCommit},
		{"no commits", "codeswarm/old-host-empty", head, head},
		{"never created", "codeswarm/nowhere", head, head},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := startInput(f, "02-"+filepath.Base(tc.from), "Carry on.")
			in.ResumeFrom = tc.from
			res := mustRun[StartSubtaskResult](t, f.env, f.a.StartSubtask, in)
			if got := gitCmd(t, res.Worktree, nil, "rev-parse", "HEAD"); got != tc.wantHead {
				t.Errorf("worktree HEAD = %s, want %s", got, tc.wantHead)
			}
			if res.BaseCommit != tc.wantBase {
				t.Errorf("base = %s, want %s (what CommitSubtask diffs against)", res.BaseCommit, tc.wantBase)
			}
		})
	}
}

func TestHostOfQueue(t *testing.T) {
	for _, tc := range []struct{ queue, want string }{
		{"codeswarm-ws-hosta", "hosta"},
		{"codeswarm-ws-a-ws-b", "a-ws-b"},
		{"other-ws-hosta", "other-ws-hosta"},
	} {
		if got := HostOfQueue("codeswarm", tc.queue); got != tc.want {
			t.Errorf("HostOfQueue(%q) = %q, want %q", tc.queue, got, tc.want)
		}
	}
	if q := HostQueue("codeswarm", "hosta"); HostOfQueue("codeswarm", q) != "hosta" {
		t.Errorf("HostQueue/HostOfQueue do not round-trip: %s", q)
	}
}
