package devserver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// Health checking: the server has no signal of its own when its services
// stop (Temporal's Server offers only Start and Stop), so a monitor asks each
// service's gRPC health endpoint, and a server that stops answering is
// reported on Done within seconds instead of as a minute of client retries.
const (
	healthInterval = time.Second
	// After a failed check the next comes sooner; this many failures in a
	// row mean the server is gone.
	healthRetryInterval = 250 * time.Millisecond
	healthFailures      = 3
	healthTimeout       = 3 * time.Second
)

// ErrStopped is Err's answer for a server that stopped because Stop was
// called.
var ErrStopped = errors.New("devserver: stopped")

// service is one gRPC service of the server that the monitor checks.
type service struct {
	name string
	conn *grpc.ClientConn
}

// monitor watches the services until stop is closed or one of them stops
// answering, then records why and closes done.
type monitor struct {
	services []service
	stop     chan struct{} // closed by Server.Stop
	done     chan struct{} // closed when the monitor returns
	err      error         // why; set before done is closed
	onDeath  func(error)
}

// newMonitor dials the services at addrs (name -> host:port); the
// connections are lazy, so dialing cannot fail on a server that is down.
func newMonitor(addrs [][2]string, onDeath func(error)) (*monitor, error) {
	m := &monitor{stop: make(chan struct{}), done: make(chan struct{}), onDeath: onDeath}
	for _, a := range addrs {
		conn, err := grpc.NewClient(a[1], grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			m.closeConns()
			return nil, fmt.Errorf("devserver: health client for %s: %w", a[1], err)
		}
		m.services = append(m.services, service{name: a[0], conn: conn})
	}
	return m, nil
}

func (m *monitor) closeConns() {
	for _, s := range m.services {
		_ = s.conn.Close()
	}
}

// run checks the services until stopped or one of them fails
// healthFailures checks in a row.
func (m *monitor) run() {
	defer close(m.done)
	defer m.closeConns()
	failures := 0
	wait := healthInterval
	for {
		select {
		case <-m.stop:
			m.err = ErrStopped
			return
		case <-time.After(wait):
		}
		err := m.check()
		select {
		case <-m.stop: // a check that failed because Stop began is no death
			m.err = ErrStopped
			return
		default:
		}
		if err == nil {
			failures, wait = 0, healthInterval
			continue
		}
		failures++
		wait = healthRetryInterval
		if failures >= healthFailures {
			m.err = err
			if m.onDeath != nil {
				m.onDeath(err)
			}
			return
		}
	}
}

// check asks every service once; the first failure is the answer.
func (m *monitor) check() error { return m.checkCtx(context.Background()) }

func (m *monitor) checkCtx(parent context.Context) error {
	for _, s := range m.services {
		ctx, cancel := context.WithTimeout(parent, healthTimeout)
		resp, err := healthpb.NewHealthClient(s.conn).Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		switch {
		case err != nil:
			return fmt.Errorf("its %s service at %s does not answer: %s", s.name, s.conn.Target(), reason(err))
		case resp.GetStatus() != healthpb.HealthCheckResponse_SERVING:
			return fmt.Errorf("its %s service at %s is %s", s.name, s.conn.Target(), resp.GetStatus())
		}
	}
	return nil
}

// reason shortens a failed check's error: "connection refused" rather than
// gRPC's "connection error: desc = \"transport: Error while dialing: dial
// tcp …: connect: connection refused\"".
func reason(err error) string {
	st := status.Convert(err)
	if st.Code() == codes.DeadlineExceeded {
		return fmt.Sprintf("no answer within %v", healthTimeout)
	}
	msg := st.Message()
	if i := strings.LastIndex(msg, "connect: "); i >= 0 {
		return strings.TrimRight(msg[i+len("connect: "):], `"`)
	}
	return msg
}

// Check asks the server's services once whether they serve; after Done it
// returns Err. It is cheap: a health RPC to each service in this process.
func (s *Server) Check(ctx context.Context) error {
	if err := s.Err(); err != nil {
		return err
	}
	return s.mon.checkCtx(ctx)
}
