package scripted

import (
	"fmt"
	"net"
	"net/http"
)

// Server is a Handler listening on a free loopback port.
type Server struct {
	*Handler
	srv    *http.Server
	url    string
	served chan struct{}
}

// Start serves s on 127.0.0.1 at a free port until Close.
func Start(s Script, opts ...Option) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	h := NewHandler(s, opts...)
	srv := &Server{
		Handler: h,
		srv:     &http.Server{Handler: h},
		url:     "http://" + ln.Addr().String() + "/v1",
		served:  make(chan struct{}),
	}
	go func() {
		defer close(srv.served)
		// Serve returns http.ErrServerClosed after Close; any other failure
		// shows up as failing requests on the client side, where tests look.
		_ = srv.srv.Serve(ln)
	}()
	return srv, nil
}

// URL returns the API base URL, "http://127.0.0.1:PORT/v1".
func (s *Server) URL() string { return s.url }

// Close releases held requests, closes every connection and waits for the
// server goroutine to end.
func (s *Server) Close() {
	s.Handler.Close()
	_ = s.srv.Close()
	<-s.served
}
