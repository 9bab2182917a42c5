package devserver

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/log"
	postgresplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql"
	pgschema "go.temporal.io/server/schema/postgresql/v12"
	schematool "go.temporal.io/server/tools/common/schema"
	sqltool "go.temporal.io/server/tools/sql"
)

const (
	// defaultPostgresPort is PostgreSQL's port when the URL names none.
	defaultPostgresPort = "5432"
	// visibilitySuffix names the visibility database after the main one,
	// as Temporal's own docs and images do (temporal, temporal_visibility).
	visibilitySuffix = "_visibility"
	// adminDatabase is where CREATE DATABASE runs; every server has it.
	adminDatabase = "postgres"
	// The embedded schema directories temporal-sql-tool update-schema reads.
	pgMainSchema       = "postgresql/v12/temporal"
	pgVisibilitySchema = "postgresql/v12/visibility"
)

// postgresStores is the main and the visibility store of a PostgreSQL URL.
type postgresStores struct{ main, visibility *config.SQL }

// ParsePostgresURL checks a postgres:// URL and returns the server's store
// config for the database it names. The error never contains the password.
func ParsePostgresURL(raw string) (*config.SQL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse quotes the whole input, password included.
		return nil, errors.New("not a URL (want postgres://user:password@host:port/database)")
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return nil, fmt.Errorf("scheme %q is not postgres:// (want postgres://user:password@host:port/database)", u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, errors.New("no host (want postgres://user:password@host:port/database)")
	}
	db := strings.TrimPrefix(u.Path, "/")
	if db == "" || strings.Contains(db, "/") {
		return nil, fmt.Errorf("database name %q: want one path element, as in postgres://user:password@host:port/temporal", db)
	}
	if u.User == nil || u.User.Username() == "" {
		return nil, errors.New("no user (want postgres://user:password@host:port/database)")
	}
	port := u.Port()
	if port == "" {
		port = defaultPostgresPort
	}
	cfg := &config.SQL{
		PluginName:      postgresplugin.PluginName,
		ConnectAddr:     net.JoinHostPort(u.Hostname(), port),
		ConnectProtocol: "tcp",
		User:            u.User.Username(),
		DatabaseName:    db,
		// sslmode and the like, passed on to the driver as given.
		ConnectAttributes: map[string]string{},
	}
	cfg.Password, _ = u.User.Password()
	for k, v := range u.Query() {
		if len(v) != 1 {
			return nil, fmt.Errorf("query parameter %q given %d times", k, len(v))
		}
		cfg.ConnectAttributes[k] = v[0]
	}
	return cfg, nil
}

// RedactPostgresURL hides the password of a postgres URL, for logs.
func RedactPostgresURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	return u.Redacted()
}

// preparePostgres creates the main and visibility databases when missing
// and brings both schemas to the versions this server needs, the way
// temporal-sql-tool's create-database, setup-schema -v 0.0 and
// update-schema do. Every step is a no-op on an up-to-date database, so a
// restart changes nothing.
func preparePostgres(dbURL string, logger log.Logger) (postgresStores, error) {
	main, err := ParsePostgresURL(dbURL)
	if err != nil {
		return postgresStores{}, fmt.Errorf("devserver: database URL %s: %w", RedactPostgresURL(dbURL), err)
	}
	vis := *main
	vis.ConnectAttributes = cloneMap(main.ConnectAttributes)
	vis.DatabaseName = main.DatabaseName + visibilitySuffix
	for _, s := range []struct {
		cfg    *config.SQL
		schema string
	}{{main, pgMainSchema}, {&vis, pgVisibilitySchema}} {
		if err := setupPostgresDB(s.cfg, s.schema, logger); err != nil {
			return postgresStores{}, fmt.Errorf("devserver: PostgreSQL database %q at %s: %w", s.cfg.DatabaseName, s.cfg.ConnectAddr, err)
		}
	}
	return postgresStores{main: main, visibility: &vis}, nil
}

// setupPostgresDB runs the schema tool's steps on one database.
func setupPostgresDB(cfg *config.SQL, schemaName string, logger log.Logger) error {
	if err := createDatabase(cfg, logger); err != nil {
		return err
	}
	conn, err := sqltool.NewConnection(cfg, logger)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	// Version tables and version 0.0 when new; later versions are kept.
	if err := schematool.NewSetupSchemaTask(conn, &schematool.SetupConfig{InitialVersion: "0.0"}, logger).Run(); err != nil {
		return fmt.Errorf("setup schema: %w", err)
	}
	// Applies only the versioned steps above the database's version.
	if err := schematool.NewUpdateSchemaTask(conn, &schematool.UpdateConfig{SchemaName: schemaName}, logger).Run(); err != nil {
		return fmt.Errorf("update schema (%s): %w", schemaName, err)
	}
	return checkSchemaVersion(conn, schemaName)
}

// createDatabase creates cfg's database unless it exists. A user without
// CREATEDB may still use a database an administrator made for it.
func createDatabase(cfg *config.SQL, logger log.Logger) error {
	admin := *cfg
	err := sqltool.DoCreateDatabase(&admin, adminDatabase, logger)
	if err == nil {
		return nil
	}
	conn, connErr := sqltool.NewConnection(cfg, logger)
	if connErr == nil {
		defer conn.Close()
		if _, verErr := conn.ListTables(); verErr == nil {
			return nil
		}
	}
	return fmt.Errorf("create database: %w", err)
}

// checkSchemaVersion refuses a database left below the version the server
// needs (e.g. a newer schema directory missing from this build).
func checkSchemaVersion(conn *sqltool.Connection, schemaName string) error {
	want := pgschema.Version
	if schemaName == pgVisibilitySchema {
		want = pgschema.VisibilityVersion
	}
	got, err := conn.ReadSchemaVersion()
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if olderVersion(got, want) {
		return fmt.Errorf("schema version %s after update, want at least %s", got, want)
	}
	return nil
}

// olderVersion compares "major.minor" schema versions.
func olderVersion(a, b string) bool {
	pa, pb := versionParts(a), versionParts(b)
	return pa[0] < pb[0] || (pa[0] == pb[0] && pa[1] < pb[1])
}

func versionParts(v string) [2]int {
	var p [2]int
	major, minor, _ := strings.Cut(v, ".")
	p[0], _ = strconv.Atoi(major)
	p[1], _ = strconv.Atoi(minor)
	return p
}

func cloneMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
