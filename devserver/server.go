package devserver

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/temporal"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// startTimeout bounds start-up when the caller's context has no deadline.
const startTimeout = 30 * time.Second

// Server is a running embedded Temporal server and, optionally, its Web UI.
type Server struct {
	temporal  temporal.Server
	ui        *webUI
	frontend  string
	uiURL     string
	namespace string
	lock      *dbLock

	stopOnce sync.Once
	stopErr  error
}

// Start starts the server and the Web UI and returns once the frontend
// serves the namespace, the search attributes exist and the UI accepts
// connections. ctx bounds start-up only; use Stop to shut down.
func Start(ctx context.Context, opts Options) (*Server, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	var lock *dbLock
	if o.DBURL == "" && o.DBPath != "" {
		if lock, err = lockDB(o.DBPath); err != nil {
			return nil, err
		}
	}
	s, err := start(ctx, o, lock)
	if err != nil {
		lock.release()
		return nil, err
	}
	return s, nil
}

func start(ctx context.Context, o Options, lock *dbLock) (*Server, error) {
	p, err := allocatePorts(o)
	if err != nil {
		return nil, err
	}
	defer p.releaseUI()
	logger, err := serverLogger(o)
	if err != nil {
		return nil, err
	}
	st, err := prepareDatabase(o, logger)
	if err != nil {
		return nil, err
	}
	ts, err := newTemporalServer(o, p, st, logger)
	if err != nil {
		return nil, err
	}
	if err := ts.Start(); err != nil {
		_ = ts.Stop() // release whatever services did start
		return nil, fmt.Errorf("devserver: start server: %w", err)
	}
	s := &Server{temporal: ts, frontend: hostPort(o.IP, p.frontend), namespace: o.Namespace}
	if err := s.initialize(ctx, o, p, logger); err != nil {
		_ = s.Stop() // the caller releases the lock
		return nil, err
	}
	s.lock = lock
	return s, nil
}

// FrontendAddress is the frontend's gRPC address, e.g. "127.0.0.1:7233".
func (s *Server) FrontendAddress() string { return s.frontend }

// UIURL is the Web UI's base URL, e.g. "http://127.0.0.1:8233"; "" when disabled.
func (s *Server) UIURL() string { return s.uiURL }

// Namespace is the namespace registered at start.
func (s *Server) Namespace() string { return s.namespace }

// Stop stops the Web UI and the server. Later calls return the first result.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		if s.ui != nil {
			s.ui.stop()
		}
		if err := s.temporal.Stop(); err != nil {
			s.stopErr = fmt.Errorf("devserver: stop server: %w", err)
		}
		s.lock.release()
	})
	return s.stopErr
}

// newTemporalServer assembles the server from its config.
func newTemporalServer(o Options, p ports, st stores, logger log.Logger) (temporal.Server, error) {
	cfg := buildServerConfig(o, p, st)
	authorizer, err := authorization.GetAuthorizerFromConfig(&cfg.Global.Authorization)
	if err != nil {
		return nil, fmt.Errorf("devserver: authorizer: %w", err)
	}
	claimMapper, err := authorization.GetClaimMapperFromConfig(&cfg.Global.Authorization, logger)
	if err != nil {
		return nil, fmt.Errorf("devserver: claim mapper: %w", err)
	}
	ts, err := temporal.NewServer(
		temporal.WithConfig(cfg),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(staticHosts(o.IP, p)),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return claimMapper }),
		temporal.WithDynamicConfigClient(buildDynamicConfig(o)),
	)
	if err != nil {
		return nil, fmt.Errorf("devserver: create server: %w", err)
	}
	return ts, nil
}

// initialize waits for the frontend, registers search attributes and starts
// the UI.
func (s *Server) initialize(ctx context.Context, o Options, p ports, logger log.Logger) error {
	ctx, cancel := withDefaultTimeout(ctx, startTimeout)
	defer cancel()
	c, err := client.NewLazyClient(client.Options{
		HostPort:  s.frontend,
		Namespace: s.namespace,
		Logger:    log.NewSdkLogger(logger),
	})
	if err != nil {
		return fmt.Errorf("devserver: client for %s: %w", s.frontend, err)
	}
	defer c.Close()
	if err := waitReady(ctx, c, s.namespace); err != nil {
		return err
	}
	if err := ensureSearchAttributes(ctx, c, s.namespace, o.SearchAttributes); err != nil {
		return err
	}
	if !o.uiEnabled() {
		return nil
	}
	ui, err := startUI(ctx, o.IP, &p, s.frontend, s.namespace, o.CodecEndpoint)
	if err != nil {
		return err
	}
	s.ui = ui
	s.uiURL = "http://" + hostPort(o.IP, p.ui)
	return nil
}

// waitReady polls until the frontend serves namespace, which also means the
// namespace registry has loaded.
func waitReady(ctx context.Context, c client.Client, namespace string) error {
	req := &workflowservice.DescribeNamespaceRequest{Namespace: namespace}
	for {
		_, err := c.WorkflowService().DescribeNamespace(ctx, req)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("devserver: wait for namespace %q: %w (last error: %w)", namespace, ctx.Err(), err)
		case <-time.After(pollInterval):
		}
	}
}

// serverLogger routes server logs to o.Logger, dropping those below
// o.LogLevel. A logger whose own level is stricter keeps it.
func serverLogger(o Options) (log.Logger, error) {
	lvl, err := o.serverLogLevel()
	if err != nil {
		return nil, err
	}
	zl := o.Logger.Named("temporal").WithOptions(zap.WrapCore(func(core zapcore.Core) zapcore.Core {
		filtered, err := zapcore.NewIncreaseLevelCore(core, lvl)
		if err != nil {
			return core // core is already stricter than lvl
		}
		return filtered
	}))
	return log.NewZapLogger(zl), nil
}

// withDefaultTimeout applies d unless ctx already has a deadline.
func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}
