package devserver

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/log"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives/timestamp"
	sqliteschema "go.temporal.io/server/schema/sqlite"
)

// namespaceRetention is how long closed workflows stay visible.
const namespaceRetention = 7 * 24 * time.Hour

// stores are the persistence of the server: one SQLite store for both, or
// PostgreSQL's main and visibility databases.
type stores struct {
	main, visibility *config.SQL
	name             string // names the database in errors and logs
}

// prepareDatabase returns the store configs, creating the database, its
// schema and the namespace when they are missing.
func prepareDatabase(o Options, logger log.Logger) (stores, error) {
	st, err := prepareStores(o, logger)
	if err != nil {
		return stores{}, err
	}
	ns, err := sqliteschema.NewNamespaceConfig(clusterName, o.Namespace, false, o.SearchAttributes)
	if err != nil {
		return stores{}, fmt.Errorf("devserver: namespace %q: %w", o.Namespace, err)
	}
	ns.Detail.Config.Retention = timestamp.DurationPtr(namespaceRetention)
	// A no-op when the namespace exists, so restarts keep its settings. The
	// function is the SQLite schema package's but speaks any SQL plugin.
	if err := sqliteschema.CreateNamespaces(st.main, ns); err != nil {
		return stores{}, fmt.Errorf("devserver: register namespace %q in %s: %w", o.Namespace, st.name, err)
	}
	return st, nil
}

// prepareStores picks PostgreSQL when o.DBURL is set, else SQLite.
func prepareStores(o Options, logger log.Logger) (stores, error) {
	if o.DBURL != "" {
		pg, err := preparePostgres(o.DBURL, logger)
		if err != nil {
			return stores{}, err
		}
		return stores{main: pg.main, visibility: pg.visibility, name: RedactPostgresURL(o.DBURL)}, nil
	}
	cfg, err := sqlConfig(o.DBPath)
	if err != nil {
		return stores{}, err
	}
	if o.DBPath != "" {
		if err := ensureSchema(cfg); err != nil {
			return stores{}, err
		}
	}
	return stores{main: cfg, visibility: cfg, name: dbName(o.DBPath)}, nil
}

// sqlConfig builds the store config for dbPath ("" = in memory).
func sqlConfig(dbPath string) (*config.SQL, error) {
	if dbPath == "" {
		// The plugin creates the schema itself for memory databases; a
		// random name keeps two servers in one process apart.
		return &config.SQL{
			PluginName:        sqliteplugin.PluginName,
			DatabaseName:      "devserver-" + strconv.FormatUint(rand.Uint64(), 36),
			ConnectAttributes: map[string]string{"mode": "memory", "cache": "shared"},
		}, nil
	}
	abs, err := filepath.Abs(dbPath)
	if err != nil {
		return nil, fmt.Errorf("devserver: database path %s: %w", dbPath, err)
	}
	return &config.SQL{
		PluginName:   sqliteplugin.PluginName,
		DatabaseName: abs,
		// Keys other than SQLite URI parameters become _pragma=key=value.
		// WAL with synchronous=normal syncs at checkpoints instead of on
		// every commit; a crash may lose the last commits, never corrupt.
		ConnectAttributes: map[string]string{
			"mode":         "rwc",
			"journal_mode": "wal",
			"synchronous":  "normal",
		},
	}, nil
}

// ensureSchema creates the database directory and, for a new or empty file,
// the schema. An existing database is reused as is.
func ensureSchema(cfg *config.SQL) error {
	path := cfg.DatabaseName
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("devserver: create directory for database %s: %w", path, err)
	}
	info, err := os.Stat(path)
	switch {
	case err == nil && info.Size() > 0:
		return nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("devserver: database %s: %w", path, err)
	}
	if err := sqliteschema.SetupSchema(cfg); err != nil {
		return fmt.Errorf("devserver: create schema in %s: %w", path, err)
	}
	return nil
}

// dbName names the database in errors.
func dbName(dbPath string) string {
	if dbPath == "" {
		return "in-memory database"
	}
	return dbPath
}
