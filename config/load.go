package config

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// defaultFileName is looked for in the working directory, then in the user's
// config directory.
const defaultFileName = "codeswarm.yaml"

// LoadOptions says where Load finds values beyond defaults and environment.
type LoadOptions struct {
	// File is an explicit config file, which must exist. "" looks for
	// ./codeswarm.yaml, then $XDG_CONFIG_HOME/codeswarm/codeswarm.yaml;
	// finding neither is fine.
	File string
	// Flags may be nil.
	Flags *pflag.FlagSet
	// FlagKeys maps flag names to config keys, e.g. "max-subagents" ->
	// "swarm.max_subagents". Only flags the user set override.
	FlagKeys map[string]string
}

// Load builds the Config with precedence flags > env > file > defaults and
// validates it. Environment variables are CODESWARM_<SECTION>_<KEY>; the
// ecosystem's TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, OPENAI_API_KEY and
// OPENAI_BASE_URL are honoured below their CODESWARM_* equivalents.
func Load(opts LoadOptions) (*Config, error) {
	v, err := newViper()
	if err != nil {
		return nil, err
	}
	file, err := readFile(v, opts.File)
	if err != nil {
		return nil, err
	}
	if err := applyFlags(v, opts.Flags, opts.FlagKeys); err != nil {
		return nil, err
	}
	cfg, err := decode(v)
	if err != nil {
		return nil, err
	}
	cfg.File = file
	cfg.normalize()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid config: %w", err)
	}
	return cfg, nil
}

// newViper returns a viper with every default set and every env var bound;
// viper only consults the environment for keys it knows.
func newViper() (*viper.Viper, error) {
	v := viper.New()
	// Names are bound explicitly rather than through SetEnvPrefix and
	// AutomaticEnv so that CODESWARM_* is consulted before the aliases.
	for _, s := range keySpecs(stateDir()) {
		v.SetDefault(s.key, s.def)
		if err := v.BindEnv(append([]string{s.key}, s.envNames()...)...); err != nil {
			return nil, fmt.Errorf("bind env for %s: %w", s.key, err)
		}
	}
	return v, nil
}

// readFile merges the config file into v after checking it for unknown keys
// and returns its path ("" when there is none).
func readFile(v *viper.Viper, explicit string) (string, error) {
	path, err := findFile(explicit)
	if path == "" || err != nil {
		return "", err
	}
	fv := viper.New()
	fv.SetConfigFile(path)
	if filepath.Ext(path) == "" {
		fv.SetConfigType("yaml")
	}
	if err := fv.ReadInConfig(); err != nil {
		return "", fmt.Errorf("config file %s: %w", path, err)
	}
	settings := setValues(fv)
	if err := checkKeys(slices.Collect(maps.Keys(settings))); err != nil {
		return "", fmt.Errorf("config file %s: %w", path, err)
	}
	if err := v.MergeConfigMap(nest(settings)); err != nil {
		return "", fmt.Errorf("config file %s: %w", path, err)
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return path, nil
}

// setValues flattens the file to dotted keys, dropping nulls and empty
// maps: an empty section or "key:" with no value leaves the default in place
// rather than shadowing it.
func setValues(fv *viper.Viper) map[string]any {
	out := map[string]any{}
	for _, k := range fv.AllKeys() {
		val := fv.Get(k)
		if m, isMap := val.(map[string]any); val == nil || (isMap && len(m) == 0) {
			continue
		}
		out[k] = val
	}
	return out
}

// nest turns dotted keys back into the nested maps viper merges.
func nest(flat map[string]any) map[string]any {
	out := map[string]any{}
	for key, val := range flat {
		parts := strings.Split(key, ".")
		m := out
		for _, p := range parts[:len(parts)-1] {
			child, ok := m[p].(map[string]any)
			if !ok {
				child = map[string]any{}
				m[p] = child
			}
			m = child
		}
		m[parts[len(parts)-1]] = val
	}
	return out
}

// findFile returns the config file to read, or "" when there is none.
func findFile(explicit string) (string, error) {
	if explicit != "" {
		path := ExpandHome(explicit)
		if _, err := os.Stat(path); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return "", fmt.Errorf("config file %s: %w", path, fs.ErrNotExist)
			}
			return "", fmt.Errorf("config file: %w", err)
		}
		return path, nil
	}
	for _, path := range []string{defaultFileName, userConfigFile()} {
		if _, err := os.Stat(path); err == nil {
			return path, nil
		}
	}
	return "", nil
}

// checkKeys rejects keys Config has no field for, so typos fail loudly
// instead of silently keeping the default.
func checkKeys(keys []string) error {
	known := Keys()
	slices.Sort(keys)
	var errs []error
	for _, k := range keys {
		if slices.Contains(known, k) {
			continue
		}
		if isSection(known, k) {
			errs = append(errs, fmt.Errorf("%q is a section; set its keys, not a value", k))
			continue
		}
		msg := fmt.Sprintf("unknown key %q", k)
		if near := closest(known, k); near != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", near)
		}
		errs = append(errs, errors.New(msg))
	}
	return errors.Join(errs...)
}

func isSection(known []string, key string) bool {
	for _, k := range known {
		if strings.HasPrefix(k, key+".") {
			return true
		}
	}
	return false
}

// applyFlags copies the flags the user set onto v, above every other source.
func applyFlags(v *viper.Viper, flags *pflag.FlagSet, flagKeys map[string]string) error {
	if flags == nil {
		return nil
	}
	known := Keys()
	for name, key := range flagKeys {
		if !slices.Contains(known, key) {
			return fmt.Errorf("flag --%s maps to unknown key %q", name, key)
		}
		f := flags.Lookup(name)
		if f == nil {
			return fmt.Errorf("flag --%s (for %s) is not defined", name, key)
		}
		if f.Changed {
			v.Set(key, f.Value.String())
		}
	}
	return nil
}

// normalize fills values whose default depends on other keys and expands "~".
func (c *Config) normalize() {
	if c.LLM.PlannerModel == "" {
		c.LLM.PlannerModel = c.LLM.Model
	}
	c.Embedded.DBPath = ExpandHome(c.Embedded.DBPath)
	c.Workspace.Root = ExpandHome(c.Workspace.Root)
	c.Tools.Sandbox = strings.ToLower(strings.TrimSpace(c.Tools.Sandbox))
	c.Tools.Bash.Network = strings.ToLower(strings.TrimSpace(c.Tools.Bash.Network))
}
