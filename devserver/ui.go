package devserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"strings"
	"time"
	"unsafe"

	"github.com/labstack/echo/v4"
	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uioptions "github.com/temporalio/ui-server/v2/server/server_options"
)

// pollInterval is how often start-up checks whether a service answers.
const pollInterval = 5 * time.Millisecond

// webUI is a running Temporal Web UI.
type webUI struct {
	srv  *http.Server
	done chan struct{} // closed when the serving goroutine returns
}

// startUI serves the Web UI for the frontend at frontendAddr on the
// listener allocatePorts holds for it, and returns once it accepts
// connections.
//
// The UI server's own Start listens on its configured port and, when that
// fails, exits the whole process (echo's Logger.Fatal). Releasing the held
// port for it to bind left a window in which any other listener or
// outgoing connection on the machine could take the port — CI saw a test
// binary exit with status 1 and no output. So the UI never listens itself:
// its router serves on the listener we hold from allocation on.
func startUI(ctx context.Context, ip string, p *ports, frontendAddr, namespace, codecEndpoint string) (*webUI, error) {
	ln := p.takeUI()
	if ln == nil {
		return nil, errors.New("devserver: web UI: no port held for it")
	}
	srv := uiserver.NewServer(uioptions.WithConfigProvider(&uiconfig.Config{
		Host:                uiHost(ip),
		Port:                p.ui,
		TemporalGRPCAddress: frontendAddr,
		EnableUI:            true,
		DefaultNamespace:    namespace,
		// Plain http on localhost: the CSRF cookie must not require https.
		CORS:             uiconfig.CORS{CookieInsecure: true},
		HideLogs:         true,
		DisableNewsFetch: true,
		Codec:            uiconfig.Codec{Endpoint: codecEndpoint},
	}))
	router, err := uiRouter(srv)
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	ui := &webUI{
		srv:  &http.Server{Handler: router, ReadHeaderTimeout: 30 * time.Second},
		done: make(chan struct{}),
	}
	go func() {
		defer close(ui.done)
		_ = ui.srv.Serve(ln) // returns http.ErrServerClosed after stop; closes ln
	}()
	if err := waitListening(ctx, hostPort(ip, p.ui)); err != nil {
		ui.stop()
		return nil, fmt.Errorf("devserver: web UI on port %d: %w", p.ui, err)
	}
	return ui, nil
}

// uiRouter returns the UI server's router, the *echo.Echo its Start would
// serve. The field is unexported; the ui-server version is pinned in go.mod
// and TestUIRouterFound fails if a new version renames or retypes it.
func uiRouter(srv *uiserver.Server) (*echo.Echo, error) {
	f := reflect.ValueOf(srv).Elem().FieldByName("httpServer")
	if !f.IsValid() || f.Type() != reflect.TypeFor[*echo.Echo]() {
		return nil, errors.New("devserver: web UI: ui-server has no httpServer *echo.Echo field; this ui-server version is not supported")
	}
	e := *(**echo.Echo)(unsafe.Pointer(f.UnsafeAddr()))
	if e == nil {
		return nil, errors.New("devserver: web UI: ui-server built no router")
	}
	return e, nil
}

// stop closes the UI's listener and connections and waits for its goroutine.
func (u *webUI) stop() {
	_ = u.srv.Close()
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
