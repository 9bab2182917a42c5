package config

import (
	"os"
	"path/filepath"
	"strings"
)

// appName names the directories codeswarm owns under the XDG base dirs.
const appName = "codeswarm"

// ExpandHome turns "~" and "~/x" into paths under $HOME. Other paths,
// including "~user/x", are returned unchanged, as is everything when the
// home directory is unknown.
func ExpandHome(p string) string {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return p
	}
	return filepath.Join(home, p[1:])
}

// stateDir is $XDG_STATE_HOME/codeswarm, else ~/.local/state/codeswarm.
func stateDir() string {
	return filepath.Join(xdgDir("XDG_STATE_HOME", ".local", "state"), appName)
}

// userConfigFile is $XDG_CONFIG_HOME/codeswarm/codeswarm.yaml, with the XDG
// fallback ~/.config when the variable is unset.
func userConfigFile() string {
	return filepath.Join(xdgDir("XDG_CONFIG_HOME", ".config"), appName, defaultFileName)
}

// xdgDir reads an XDG base-dir variable; the spec says relative values are
// invalid and must be ignored in favour of the fallback under $HOME.
func xdgDir(env string, fallback ...string) string {
	if dir := os.Getenv(env); filepath.IsAbs(dir) {
		return dir
	}
	return ExpandHome(filepath.Join(append([]string{"~"}, fallback...)...))
}
