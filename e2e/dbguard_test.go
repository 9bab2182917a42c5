package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"codeswarm/internal/cli"
	"codeswarm/llm/scripted"
)

// embeddedEnv points the CLI at an embedded server of its own on free
// ports, with its database at db and its runs under root.
func embeddedEnv(t *testing.T, db, root string) {
	t.Setenv("CODESWARM_TEMPORAL_ADDRESS", "")
	t.Setenv("CODESWARM_EMBEDDED_PORT", strconv.Itoa(freePort(t)))
	t.Setenv("CODESWARM_EMBEDDED_UI_PORT", strconv.Itoa(freePort(t)))
	t.Setenv("CODESWARM_EMBEDDED_DB_PATH", db)
	t.Setenv("CODESWARM_WORKSPACE_ROOT", root)
	t.Setenv("CODESWARM_LOG_LEVEL", "error")
}

func execCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errs bytes.Buffer
	code := cli.Execute(ctx, args, cli.IO{Out: &out, Err: &errs})
	return code, out.String() + errs.String()
}

// TestMissingDBWithRunsRefused: runs are recorded under workspace.root but
// their database is gone; the CLI refuses instead of creating an empty one.
func TestMissingDBWithRunsRefused(t *testing.T) {
	state, root := t.TempDir(), t.TempDir()
	db := filepath.Join(state, "temporal.db")
	if err := os.MkdirAll(filepath.Join(root, "swarm-earlier-run-1a2b3c", ".state"), 0o755); err != nil {
		t.Fatal(err)
	}
	embeddedEnv(t, db, root)
	code, out := execCLI(t, "list")
	if code != cli.ExitRunFailed {
		t.Fatalf("list exited %d, want %d:\n%s", code, cli.ExitRunFailed, out)
	}
	for _, want := range []string{db + " is missing or empty", "swarm-earlier-run-1a2b3c", "to start fresh"} {
		mustContain(t, "list output", out, want)
	}
	if _, err := os.Stat(db); !os.IsNotExist(err) {
		t.Errorf("the refused start created %s (stat: %v)", db, err)
	}
}

// TestSecondServerOnSameDBRefusedCLI: a CLI whose embedded server would
// share a database with a running one fails at once, naming the holder.
func TestSecondServerOnSameDBRefusedCLI(t *testing.T) {
	db := filepath.Join(t.TempDir(), "temporal.db")
	startStack(t, db, scripted.Script{})
	embeddedEnv(t, db, t.TempDir())
	began := time.Now()
	code, out := execCLI(t, "list")
	if code != cli.ExitRunFailed {
		t.Fatalf("list exited %d, want %d:\n%s", code, cli.ExitRunFailed, out)
	}
	mustContain(t, "list output", out, "database in use by another Temporal server: process "+strconv.Itoa(os.Getpid()))
	if d := time.Since(began); d > 10*time.Second {
		t.Errorf("refusal took %s", d)
	}
	if strings.Contains(out, "context deadline exceeded") {
		t.Errorf("output: %s", out)
	}
}
