package devserver

import (
	"context"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"codeswarm/internal/pgtest"
)

// TestPostgresServerSetsUpSchemaAndRestarts: against a fresh PostgreSQL the
// server creates both databases and their schema, serves a workflow
// start, and a second start on the same databases (the schema already up
// to date) keeps that workflow.
func TestPostgresServerSetsUpSchemaAndRestarts(t *testing.T) {
	pg := pgtest.Start(t)
	opts := Options{DBURL: pg.URL("cstest"), UIPort: uiDisabled,
		SearchAttributes: map[string]enumspb.IndexedValueType{"CodeswarmRepo": enumspb.INDEXED_VALUE_TYPE_KEYWORD}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	srv := startOrFatal(ctx, t, opts)
	c := dialOrFatal(t, srv)
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "pg-wf", TaskQueue: "nobody-polls"}, "SomeWorkflow")
	if err != nil {
		t.Fatalf("start workflow on PostgreSQL: %v", err)
	}
	c.Close()
	if err := srv.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}

	srv = startOrFatal(ctx, t, opts)
	defer srv.Stop()
	c = dialOrFatal(t, srv)
	defer c.Close()
	desc, err := c.DescribeWorkflowExecution(ctx, "pg-wf", run.GetRunID())
	if err != nil {
		t.Fatalf("workflow lost across a restart on PostgreSQL: %v", err)
	}
	if st := desc.GetWorkflowExecutionInfo().GetStatus(); st != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Errorf("status after restart = %s, want running", st)
	}
}

// TestPostgresBadURLNamesTheProblemNotThePassword: a URL that cannot be
// used fails start with what is wrong and never the password.
func TestPostgresBadURLNamesTheProblemNotThePassword(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"mysql://u:hunter2secret@h/db", "scheme"},
		{"postgres://u:hunter2secret@h", "database name"},
		{"postgres://:hunter2secret@h/db", "no user"},
		{"postgres://u:hunter2secret@127.0.0.1:1/db?sslmode=disable", "127.0.0.1:1"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := Start(ctx, Options{DBURL: tc.url, UIPort: uiDisabled})
		cancel()
		if err == nil {
			t.Errorf("%s: started", tc.url)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "hunter2secret") {
			t.Errorf("%s: error %q should name %q and never the password", tc.url, err, tc.want)
		}
	}
}

func startOrFatal(ctx context.Context, t *testing.T, o Options) *Server {
	t.Helper()
	srv, err := Start(ctx, o)
	if err != nil {
		t.Fatalf("start on PostgreSQL: %v", err)
	}
	return srv
}

func dialOrFatal(t *testing.T, srv *Server) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{HostPort: srv.FrontendAddress(), Namespace: srv.Namespace()})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return c
}

func TestParsePostgresURL(t *testing.T) {
	cfg, err := ParsePostgresURL("postgresql://temporal:p%40ss@db.example/temporal?sslmode=require&connect_timeout=5")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PluginName != "postgres12" || cfg.ConnectAddr != "db.example:5432" || cfg.User != "temporal" ||
		cfg.Password != "p@ss" || cfg.DatabaseName != "temporal" ||
		cfg.ConnectAttributes["sslmode"] != "require" || cfg.ConnectAttributes["connect_timeout"] != "5" {
		t.Errorf("parsed %+v", cfg)
	}
	if got := RedactPostgresURL("postgres://temporal:p%40ss@db:5433/temporal"); got != "postgres://temporal:xxxxx@db:5433/temporal" {
		t.Errorf("redacted %q", got)
	}
}
