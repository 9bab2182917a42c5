package swarmworker

import (
	"regexp"
	"testing"

	"go.temporal.io/sdk/workflow"

	"codeswarm/config"
)

func TestDeploymentOptions(t *testing.T) {
	off, err := deploymentOptions(config.WorkerConfig{})
	if err != nil || off.UseVersioning {
		t.Fatalf("no deployment: %+v, %v; want unversioned", off, err)
	}
	on, err := deploymentOptions(config.WorkerConfig{Deployment: "cs", BuildID: "b7"})
	if err != nil || !on.UseVersioning || on.Version.DeploymentName != "cs" || on.Version.BuildID != "b7" ||
		on.DefaultVersioningBehavior != workflow.VersioningBehaviorPinned {
		t.Fatalf("deployment cs build b7: %+v, %v", on, err)
	}
	derived, err := deploymentOptions(config.WorkerConfig{Deployment: "cs"})
	if err != nil || !regexp.MustCompile(`^[0-9a-f]{12,16}$`).MatchString(derived.Version.BuildID) {
		t.Fatalf("derived build ID %q, %v; want the revision's or the executable hash's hex prefix", derived.Version.BuildID, err)
	}
	if again, _ := BuildID(); again != derived.Version.BuildID {
		t.Errorf("BuildID is not stable: %q then %q", derived.Version.BuildID, again)
	}
}
