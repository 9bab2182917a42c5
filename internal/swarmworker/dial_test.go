package swarmworker

import (
	"testing"

	"go.temporal.io/sdk/client"
)

func TestConnectionOptionsCompressOnlyRemote(t *testing.T) {
	for addr, local := range map[string]bool{
		"127.0.0.1:7233":           true,
		"127.0.0.53:7233":          true,
		"localhost:7233":           true,
		"LOCALHOST:7233":           true,
		"[::1]:7233":               true,
		"temporal:7233":            false,
		"10.0.0.5:7233":            false,
		"[2001:db8::1]:7233":       false,
		"temporal.example.com:443": false,
		"":                         false,
	} {
		_, none := ConnectionOptions(addr, nil).GrpcCompression.(*client.GrpcCompressionNone)
		if none != local {
			t.Errorf("%q: compression off %v, want %v", addr, none, local)
		}
	}
	if n := len(ConnectionOptions("127.0.0.1:7233", NewTaskTracker()).DialOptions); n != 1 {
		t.Errorf("with a tracker: %d dial options, want its interceptor", n)
	}
	if n := len(ConnectionOptions("127.0.0.1:7233", nil).DialOptions); n != 0 {
		t.Errorf("without a tracker: %d dial options, want none", n)
	}
}
