package swarmworker

import (
	"net"
	"strings"

	"go.temporal.io/sdk/client"
	"google.golang.org/grpc"
)

// ConnectionOptions are the gRPC options of a client of the Temporal
// frontend at hostPort. The SDK gzips every request and response by
// default; on a loopback address (the embedded server, a local dev server)
// that only burns CPU on both sides of a connection that copies memory:
// about 4 % of all CPU in the B1 and B2 benchmarks, where the worker, the
// server and the model share the machine. Remote frontends keep gzip.
// With a tracker, the connection follows the workflow tasks its workers
// are handed, so a restarted worker can fail the one a killed predecessor
// was running a local activity in (give the same tracker to New).
func ConnectionOptions(hostPort string, tracker *TaskTracker) client.ConnectionOptions {
	var opts client.ConnectionOptions
	if tracker != nil {
		opts.DialOptions = []grpc.DialOption{grpc.WithChainUnaryInterceptor(tracker.intercept)}
	}
	if isLoopback(hostPort) {
		opts.GrpcCompression = &client.GrpcCompressionNone{}
	}
	return opts
}

// isLoopback reports whether hostPort names this machine's loopback
// interface (localhost, 127.0.0.0/8, ::1); host names are not resolved.
func isLoopback(hostPort string) bool {
	host, _, err := net.SplitHostPort(hostPort)
	if err != nil {
		host = hostPort
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
