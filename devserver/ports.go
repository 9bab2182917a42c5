package devserver

import (
	"fmt"
	"net"
	"strconv"
)

// ports holds every TCP port the server and UI listen on.
type ports struct {
	frontend, history, matching, worker int
	ui                                  int // 0 when the UI is disabled
	// uiHold is the UI's listener, open from allocation on: the server
	// starts in between, for up to a second, while other processes open
	// listeners and outgoing connections on ephemeral ports. startUI
	// serves on it (takeUI); releaseUI closes it when the UI never starts.
	uiHold net.Listener
}

// takeUI hands the UI's held listener to the caller, who then owns it.
func (p *ports) takeUI() net.Listener {
	l := p.uiHold
	p.uiHold = nil
	return l
}

// releaseUI frees the UI's port for the UI to bind; safe to call twice.
func (p *ports) releaseUI() {
	if p.uiHold != nil {
		_ = p.uiHold.Close()
		p.uiHold = nil
	}
}

// allocatePorts picks free ports for everything the caller left at 0 and
// checks that the ports the caller chose are free, so a clash is reported
// here with the port number rather than deep inside server start-up.
func allocatePorts(o Options) (ports, error) {
	var p ports
	// All probe listeners stay open until every port is chosen, so one
	// allocation never hands out the same port twice.
	var held []net.Listener
	defer func() {
		for _, l := range held {
			_ = l.Close()
		}
	}()
	pick := func(dst *int, fixed int, what string) error {
		l, err := net.Listen("tcp", net.JoinHostPort(o.IP, strconv.Itoa(fixed)))
		if err != nil {
			return fmt.Errorf("devserver: %s port %d on %s: %w", what, fixed, o.IP, err)
		}
		held = append(held, l)
		*dst = l.Addr().(*net.TCPAddr).Port
		return nil
	}
	if err := pick(&p.frontend, o.Port, "frontend"); err != nil {
		return p, err
	}
	for _, internal := range []*int{&p.history, &p.matching, &p.worker} {
		if err := pick(internal, 0, "internal"); err != nil {
			return p, err
		}
	}
	if o.uiEnabled() {
		if err := pick(&p.ui, o.UIPort, "UI"); err != nil {
			return p, err
		}
		p.uiHold = held[len(held)-1]
		held = held[:len(held)-1]
	}
	return p, nil
}

// hostPort joins ip and port into an address.
func hostPort(ip string, port int) string {
	return net.JoinHostPort(ip, strconv.Itoa(port))
}
