package gitops

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// Minimum git version: `merge-tree --write-tree` arrived in 2.38.
const (
	minGitMajor = 2
	minGitMinor = 38
)

// CheckGitVersion returns the installed git's version, or an error if git is
// missing or older than 2.38 (naming both the found and minimum versions).
func CheckGitVersion(ctx context.Context) (string, error) {
	out, err := gitOut(ctx, "", "version")
	if errors.Is(err, exec.ErrNotFound) {
		return "", fmt.Errorf("git not found in PATH (need git >= %d.%d): %w", minGitMajor, minGitMinor, err)
	}
	if err != nil {
		return "", fmt.Errorf("run git version: %w", err)
	}
	return checkVersionOutput(out)
}

// checkVersionOutput parses `git version` output and enforces the minimum.
func checkVersionOutput(out string) (string, error) {
	version, major, minor, err := parseGitVersion(out)
	if err != nil {
		return "", err
	}
	if major < minGitMajor || (major == minGitMajor && minor < minGitMinor) {
		return version, fmt.Errorf("git %s is too old: codeswarm needs git >= %d.%d (for merge-tree --write-tree)",
			version, minGitMajor, minGitMinor)
	}
	return version, nil
}

// parseGitVersion reads output such as "git version 2.39.5" or
// "git version 2.37.1 (Apple Git-1)" and returns the version word
// ("2.37.1") with its major and minor numbers.
func parseGitVersion(out string) (version string, major, minor int, err error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(out), "git version ")
	fields := strings.Fields(rest)
	if !ok || len(fields) == 0 {
		return "", 0, 0, fmt.Errorf("unrecognised git version output %q", out)
	}
	version = fields[0]
	parts := strings.Split(version, ".")
	if len(parts) < 2 {
		return "", 0, 0, fmt.Errorf("unrecognised git version %q", version)
	}
	if major, err = strconv.Atoi(parts[0]); err != nil {
		return "", 0, 0, fmt.Errorf("unrecognised git version %q: %w", version, err)
	}
	if minor, err = strconv.Atoi(parts[1]); err != nil {
		return "", 0, 0, fmt.Errorf("unrecognised git version %q: %w", version, err)
	}
	return version, major, minor, nil
}
