package devserver

import (
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/membership/static"
	"go.temporal.io/server/common/primitives"
)

const (
	clusterName = "active"
	// The store names; with SQLite both are the same store.
	storeName           = "sqlite-default"
	visibilityStoreName = "visibility"
)

// buildServerConfig is the static config of a single-node cluster whose
// services all run in this process and share one SQLite store, or use
// PostgreSQL's main and visibility databases.
func buildServerConfig(o Options, p ports, st stores) *config.Config {
	frontend := hostPort(o.IP, p.frontend)
	var c config.Config
	c.Global.Membership.BroadcastAddress = o.IP
	c.Persistence = config.Persistence{
		DefaultStore:     storeName,
		VisibilityStore:  storeName,
		NumHistoryShards: 1,
		DataStores:       map[string]config.DataStore{storeName: {SQL: st.main}},
	}
	if st.visibility != st.main {
		c.Persistence.VisibilityStore = visibilityStoreName
		c.Persistence.DataStores[visibilityStoreName] = config.DataStore{SQL: st.visibility}
	}
	c.ClusterMetadata = &cluster.Config{
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{
			// ClusterID is left empty: the server generates one on first
			// start and keeps the persisted one afterwards.
			clusterName: {Enabled: true, InitialFailoverVersion: 1, RPCAddress: frontend},
		},
	}
	c.DCRedirectionPolicy.Policy = "noop"
	c.Services = map[string]config.Service{
		string(primitives.FrontendService): serviceConfig(o.IP, p.frontend),
		string(primitives.HistoryService):  serviceConfig(o.IP, p.history),
		string(primitives.MatchingService): serviceConfig(o.IP, p.matching),
		string(primitives.WorkerService):   serviceConfig(o.IP, p.worker),
	}
	c.Archival.History.State = "disabled"
	c.Archival.Visibility.State = "disabled"
	c.NamespaceDefaults.Archival.History.State = "disabled"
	c.NamespaceDefaults.Archival.Visibility.State = "disabled"
	// The server's own system workers dial the frontend through this.
	c.PublicClient.HostPort = frontend
	return &c
}

// serviceConfig binds one service's gRPC port. Membership ports are not
// needed: staticHosts replaces ringpop, so no membership listener starts.
func serviceConfig(ip string, grpcPort int) config.Service {
	return config.Service{RPC: config.RPC{GRPCPort: grpcPort, BindOnIP: ip}}
}

// staticHosts tells each service where the others are, skipping ringpop
// discovery, which is slow to converge and needs extra ports.
func staticHosts(ip string, p ports) map[primitives.ServiceName]static.Hosts {
	return map[primitives.ServiceName]static.Hosts{
		primitives.FrontendService: static.SingleLocalHost(hostPort(ip, p.frontend)),
		primitives.HistoryService:  static.SingleLocalHost(hostPort(ip, p.history)),
		primitives.MatchingService: static.SingleLocalHost(hostPort(ip, p.matching)),
		primitives.WorkerService:   static.SingleLocalHost(hostPort(ip, p.worker)),
	}
}
