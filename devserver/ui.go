package devserver

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uioptions "github.com/temporalio/ui-server/v2/server/server_options"
)

// pollInterval is how often start-up checks whether a service answers.
const pollInterval = 5 * time.Millisecond

// webUI is a running Temporal Web UI.
type webUI struct {
	srv  *uiserver.Server
	done chan struct{} // closed when the serving goroutine returns
}

// startUI serves the Web UI on addr for the frontend at frontendAddr and
// returns once it accepts connections.
func startUI(ctx context.Context, ip string, p *ports, frontendAddr, namespace, codecEndpoint string) (*webUI, error) {
	port := p.ui
	srv := uiserver.NewServer(uioptions.WithConfigProvider(&uiconfig.Config{
		Host:                uiHost(ip),
		Port:                port,
		TemporalGRPCAddress: frontendAddr,
		EnableUI:            true,
		DefaultNamespace:    namespace,
		// Plain http on localhost: the CSRF cookie must not require https.
		CORS:             uiconfig.CORS{CookieInsecure: true},
		HideLogs:         true,
		DisableNewsFetch: true,
		Codec:            uiconfig.Codec{Endpoint: codecEndpoint},
	}))
	ui := &webUI{srv: srv, done: make(chan struct{})}
	// Start blocks until Stop and returns nil then. On a listen error it
	// exits the process (echo's Logger.Fatal), which is why allocatePorts
	// held the port until now: it is free only for the moment between
	// this release and the UI's own listen.
	p.releaseUI()
	go func() {
		defer close(ui.done)
		_ = srv.Start()
	}()
	if err := waitListening(ctx, hostPort(ip, port)); err != nil {
		ui.stop()
		return nil, fmt.Errorf("devserver: web UI on port %d: %w", port, err)
	}
	return ui, nil
}

// stop closes the UI's listener and waits for its goroutine.
func (u *webUI) stop() {
	u.srv.Stop()
	<-u.done
}

// uiHost formats ip for the UI's "host:port" listen address.
func uiHost(ip string) string {
	if strings.Contains(ip, ":") {
		return "[" + ip + "]"
	}
	return ip
}

// waitListening polls addr until it accepts a TCP connection.
func waitListening(ctx context.Context, addr string) error {
	var d net.Dialer
	for {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return conn.Close()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w", addr, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}
