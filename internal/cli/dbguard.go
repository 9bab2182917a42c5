package cli

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"codeswarm/config"
)

// checkRecordedDB refuses to start the embedded server on a missing or
// empty SQLite file while workspace.root holds run directories: the server
// would create a new, empty database and the earlier runs would silently
// vanish from status, list and watch. Nothing to refuse on a first start
// (no runs) or with embedded.db_url.
func checkRecordedDB(cfg *config.Config) error {
	if cfg.Embedded.DBURL != "" || cfg.Embedded.DBPath == "" {
		return nil
	}
	db := config.ExpandHome(cfg.Embedded.DBPath)
	if info, err := os.Stat(db); err == nil && info.Size() > 0 {
		return nil
	}
	root := config.ExpandHome(cfg.Workspace.Root)
	runs := recordedRuns(root)
	if len(runs) == 0 {
		return nil
	}
	return fmt.Errorf("the Temporal database %s is missing or empty, but workspace.root %s holds %d earlier run(s) (%s) recorded in it; "+
		"restore the file or point embedded.db_path at it; to start fresh, move %s aside (or set workspace.root elsewhere)",
		db, root, len(runs), strings.Join(runs[:min(3, len(runs))], ", "), root)
}

// recordedRuns lists the run directories under root (sorted).
func recordedRuns(root string) []string {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil
	}
	var runs []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			runs = append(runs, e.Name())
		}
	}
	sort.Strings(runs)
	return runs
}
