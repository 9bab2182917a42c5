// Package cluster holds codeswarm's multi-host test: PostgreSQL from the
// machine's packages, `codeswarm server` on it, and worker "hosts" that are
// separate processes, each in its own network, UTS and mount namespace with
// its own workspace.root, reaching the server and the scripted model only
// over a veth pair. It needs root, iproute2 and PostgreSQL; it skips without
// them unless CODESWARM_CLUSTER_REQUIRED=1 (CI), where it fails instead.
package cluster
