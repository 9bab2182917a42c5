package swarmworker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.uber.org/zap"

	"codeswarm/config"
)

// Worker Versioning: with worker.deployment set, every worker of this
// process belongs to one version of that worker deployment (its build ID)
// and every run is pinned to the version that started it. A new build
// then rolls out beside the old one: new runs go to the deployment's
// current version, and a run keeps running on the build whose workflow
// code recorded its history, so no workflow change needs a GetVersion gate
// while the old build's workers stay up until their runs end.

// deploymentOptions are the workers' versioning options for cfg (none when
// worker.deployment is "").
func deploymentOptions(cfg config.WorkerConfig) (worker.DeploymentOptions, error) {
	if cfg.Deployment == "" {
		return worker.DeploymentOptions{}, nil
	}
	id := cfg.BuildID
	if id == "" {
		var err error
		if id, err = BuildID(); err != nil {
			return worker.DeploymentOptions{}, fmt.Errorf("worker.build_id is empty and none can be derived: %w", err)
		}
	}
	return worker.DeploymentOptions{
		UseVersioning: true,
		Version: worker.WorkerDeploymentVersion{
			DeploymentName: cfg.Deployment,
			BuildID:        id,
		},
		DefaultVersioningBehavior: workflow.VersioningBehaviorPinned,
	}, nil
}

// BuildID names this binary: its VCS revision when it was built from a
// clean checkout, else the first 16 hex digits of the executable's SHA-256
// (a modified tree's revision would name two different builds alike).
func BuildID() (string, error) {
	if info, ok := debug.ReadBuildInfo(); ok {
		var rev string
		modified := false
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if rev != "" && !modified {
			return rev[:min(len(rev), 12)], nil
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	f, err := os.Open(exe)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// currentVersionWait bounds how long Start waits for the server to know
// this worker's version (it learns it from the first polls).
const currentVersionWait = 30 * time.Second

// ensureCurrent makes this worker's version the deployment's current one
// when the deployment has none (its first build), so the runs started next
// reach these workers. A deployment that has a current version keeps it:
// a new build becomes current when the operator says so.
func ensureCurrent(ctx context.Context, c client.Client, v worker.WorkerDeploymentVersion, logger *zap.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, currentVersionWait)
	defer cancel()
	h := c.WorkerDeploymentClient().GetHandle(v.DeploymentName)
	var last error
	for {
		desc, err := h.Describe(ctx, client.WorkerDeploymentDescribeOptions{})
		if err == nil {
			cur := desc.Info.RoutingConfig.CurrentVersion
			if cur != nil {
				if cur.BuildID != v.BuildID {
					logger.Warn("worker deployment's current version is another build: new runs go to its workers, these serve the runs pinned to this build (make it current with `temporal worker deployment set-current-version`)",
						zap.String("deployment", v.DeploymentName), zap.String("current", cur.BuildID), zap.String("build_id", v.BuildID))
				}
				return nil
			}
			_, err = h.SetCurrentVersion(ctx, client.WorkerDeploymentSetCurrentVersionOptions{
				BuildID:       v.BuildID,
				ConflictToken: desc.ConflictToken,
			})
			if err == nil {
				logger.Info("worker deployment version made current", zap.String("deployment", v.DeploymentName), zap.String("build_id", v.BuildID))
				return nil
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("make build %s current in worker deployment %s: %w", v.BuildID, v.DeploymentName, errors.Join(last, ctx.Err()))
		case <-time.After(200 * time.Millisecond):
		}
	}
}
