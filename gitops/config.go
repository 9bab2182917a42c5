package gitops

import (
	"context"
	"fmt"
)

// backupSection holds the value a key had before SetConfig changed it, in
// the repository's own config, so that a retried SetConfig still reports the
// user's original value instead of the one it set itself.
const backupSection = "codeswarm-saved"

// SetConfig sets a repository-local config key and returns the value it had
// before (had is false if it was unset). Retrying after a crash returns the
// original value, not the one the first attempt wrote. Pass the result to
// UnsetOrRestoreConfig when the run ends.
func (r *Repo) SetConfig(ctx context.Context, key, value string) (prev string, had bool, err error) {
	prev, had, saved, err := r.savedConfig(ctx, key)
	if err != nil {
		return "", false, err
	}
	if !saved {
		if prev, had, err = r.getConfig(ctx, key); err != nil {
			return "", false, err
		}
		if err := r.saveConfig(ctx, key, prev, had); err != nil {
			return "", false, err
		}
	}
	if _, err := git(ctx, r.Root, runOpts{}, "config", "--local", "--", key, value); err != nil {
		return "", false, fmt.Errorf("set config %q: %w", key, err)
	}
	return prev, had, nil
}

// UnsetOrRestoreConfig undoes SetConfig: it restores prev if had, unsets the
// key otherwise, and drops the saved original. Safe to repeat.
func (r *Repo) UnsetOrRestoreConfig(ctx context.Context, key, prev string, had bool) error {
	if had {
		if _, err := git(ctx, r.Root, runOpts{}, "config", "--local", "--", key, prev); err != nil {
			return fmt.Errorf("restore config %q: %w", key, err)
		}
	} else if _, err := git(ctx, r.Root, runOpts{}, "config", "--local", "--unset-all", "--", key); err != nil && exitCode(err) != 5 {
		// 5 = the key was not set: already unset by an earlier attempt.
		return fmt.Errorf("unset config %q: %w", key, err)
	}
	return r.dropSavedConfig(ctx, key)
}

// RestoreSavedConfig undoes a SetConfig of key if one is still in effect
// (its saved original is in the config), and does nothing otherwise. It
// needs no value from the caller, so a run that never set the key, or whose
// earlier attempt already restored it, leaves the user's value alone.
func (r *Repo) RestoreSavedConfig(ctx context.Context, key string) error {
	prev, had, saved, err := r.savedConfig(ctx, key)
	if err != nil || !saved {
		return err
	}
	return r.UnsetOrRestoreConfig(ctx, key, prev, had)
}

// dropSavedConfig removes the original value SetConfig saved. It removes
// first and asks only if that fails (git exits 128 alike for a section an
// earlier attempt removed and for a real failure), so a run's end costs one
// process less.
func (r *Repo) dropSavedConfig(ctx context.Context, key string) error {
	_, err := git(ctx, r.Root, runOpts{}, "config", "--local", "--remove-section", backupSection+"."+key)
	if err == nil {
		return nil
	}
	if _, _, saved, rerr := r.savedConfig(ctx, key); rerr != nil || saved {
		return fmt.Errorf("drop saved config %q: %w", key, err)
	}
	return nil
}

// getConfig reads a key; had is false when it is not set.
func (r *Repo) getConfig(ctx context.Context, key string) (value string, had bool, err error) {
	out, err := git(ctx, r.Root, runOpts{}, "config", "--local", "--get", "--", key)
	if exitCode(err) == 1 {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read config %q: %w", key, err)
	}
	return trimNewline(string(out)), true, nil
}

// savedConfig reads the original value saved by an earlier SetConfig.
func (r *Repo) savedConfig(ctx context.Context, key string) (prev string, had, saved bool, err error) {
	hadStr, saved, err := r.getConfig(ctx, backupKey(key, "had"))
	if err != nil || !saved {
		return "", false, false, err
	}
	if hadStr != "true" {
		return "", false, true, nil
	}
	prev, _, err = r.getConfig(ctx, backupKey(key, "value"))
	return prev, true, true, err
}

// saveConfig records the original value; "had" is written last, so a crash
// in between leaves no half-written backup that would be trusted.
func (r *Repo) saveConfig(ctx context.Context, key, prev string, had bool) error {
	if had {
		if _, err := git(ctx, r.Root, runOpts{}, "config", "--local", "--", backupKey(key, "value"), prev); err != nil {
			return fmt.Errorf("save config %q: %w", key, err)
		}
	}
	if _, err := git(ctx, r.Root, runOpts{}, "config", "--local", "--", backupKey(key, "had"), fmt.Sprint(had)); err != nil {
		return fmt.Errorf("save config %q: %w", key, err)
	}
	return nil
}

// backupKey is "codeswarm-saved.<key>.<name>": the key becomes a subsection.
func backupKey(key, name string) string {
	return backupSection + "." + key + "." + name
}

func trimNewline(s string) string {
	if n := len(s); n > 0 && s[n-1] == '\n' {
		return s[:n-1]
	}
	return s
}
