package devserver

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
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
	log       *logFile // nil unless Options.LogFile is set
	logPath   string
	mon       *monitor
	// monRunning is set before Start returns when the monitor runs.
	monRunning bool

	stopOnce sync.Once
	stopErr  error
	// temporalOnce stops the Temporal server once, for Stop or SimulateCrash.
	temporalOnce sync.Once
	temporalErr  error
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
	var lf *logFile
	if o.LogFile != "" {
		if lf, err = openLogFile(o.LogFile); err != nil {
			return nil, err
		}
		lf.mark("starting the embedded Temporal server (pid %d, frontend %s)", os.Getpid(), hostPort(o.IP, p.frontend))
	}
	s, err := startServices(ctx, o, &p, lf)
	if err != nil {
		lf.mark("start failed: %v", err)
		lf.close()
		return nil, err
	}
	s.lock = lock
	return s, nil
}

// startServices starts the server proper, logging to lf when it is set,
// and its health monitor.
func startServices(ctx context.Context, o Options, p *ports, lf *logFile) (*Server, error) {
	logger, err := serverLogger(o, lf)
	if err != nil {
		return nil, err
	}
	st, err := prepareDatabase(o, logger)
	if err != nil {
		return nil, err
	}
	ts, err := newTemporalServer(o, *p, st, logger)
	if err != nil {
		return nil, err
	}
	if err := ts.Start(); err != nil {
		_ = ts.Stop() // release whatever services did start
		return nil, fmt.Errorf("devserver: start server: %w", err)
	}
	s := &Server{temporal: ts, frontend: hostPort(o.IP, p.frontend), namespace: o.Namespace}
	if lf != nil {
		s.logPath = lf.f.Name()
	}
	// The monitor exists before initialize so that Stop, which waits for
	// it, works on every path; it starts checking once the server serves.
	s.mon, err = newMonitor([][2]string{
		{"frontend", s.frontend}, {"history", hostPort(o.IP, p.history)}, {"matching", hostPort(o.IP, p.matching)},
	}, func(err error) {
		if lf != nil {
			lf.mark("stopped answering: %v", err) // whatever the level
			return
		}
		logger.Error("the embedded server stopped answering", tag.Error(err))
	})
	if err != nil {
		_ = ts.Stop()
		return nil, err
	}
	if err := s.initialize(ctx, o, p, logger); err != nil {
		_ = s.Stop() // the caller releases the lock and closes the log
		return nil, err
	}
	s.log = lf
	s.monRunning = true
	go s.mon.run()
	return s, nil
}

// FrontendAddress is the frontend's gRPC address, e.g. "127.0.0.1:7233".
func (s *Server) FrontendAddress() string { return s.frontend }

// UIURL is the Web UI's base URL, e.g. "http://127.0.0.1:8233"; "" when disabled.
func (s *Server) UIURL() string { return s.uiURL }

// Namespace is the namespace registered at start.
func (s *Server) Namespace() string { return s.namespace }

// LogFile is the file the server logs to (Options.LogFile); "" when its logs
// go to Options.Logger.
func (s *Server) LogFile() string { return s.logPath }

// Done is closed once the server has stopped serving: Stop was called, or
// its services stopped answering health checks (for about a second, or
// three checks that timed out). Err says which.
func (s *Server) Done() <-chan struct{} { return s.mon.done }

// Err is nil while Done is open; then ErrStopped after Stop, or why the
// server is taken for dead, e.g. "its frontend service at 127.0.0.1:7233
// does not answer: connection refused".
func (s *Server) Err() error {
	select {
	case <-s.mon.done:
		return s.mon.err
	default:
		return nil
	}
}

// Stop stops the Web UI and the server. Later calls return the first result.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		s.stopMonitor()
		if s.ui != nil {
			s.ui.stop()
		}
		if err := s.stopTemporal(); err != nil {
			s.stopErr = fmt.Errorf("devserver: stop server: %w", err)
		}
		s.log.mark("stopped")
		s.log.close()
		s.lock.release()
	})
	return s.stopErr
}

// stopTemporal stops the Temporal server; later calls wait for the first
// and return its result.
func (s *Server) stopTemporal() error {
	s.temporalOnce.Do(func() { s.temporalErr = s.temporal.Stop() })
	return s.temporalErr
}

// SimulateCrash stops the Temporal services as if they had stopped by
// themselves: nothing tells the health monitor, which finds out as it would
// after a real failure. For tests of what a server's user does then; Stop
// is still needed to release the rest.
func (s *Server) SimulateCrash() error {
	return s.stopTemporal()
}

// stopMonitor ends the health monitor, or stands in for it when it never
// ran (a failed start).
func (s *Server) stopMonitor() {
	if s.mon == nil {
		return
	}
	close(s.mon.stop)
	if !s.monRunning {
		s.mon.closeConns()
		s.mon.err = ErrStopped
		close(s.mon.done)
		return
	}
	<-s.mon.done
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
func (s *Server) initialize(ctx context.Context, o Options, p *ports, logger log.Logger) error {
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
	ui, err := startUI(ctx, o.IP, p, s.frontend, s.namespace, o.CodecEndpoint)
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

// serverLogger routes server logs to lf when set, else to o.Logger, dropping
// those below o.LogLevel. A logger whose own level is stricter keeps it.
func serverLogger(o Options, lf *logFile) (log.Logger, error) {
	lvl, err := o.serverLogLevel()
	if err != nil {
		return nil, err
	}
	if lf != nil {
		return log.NewZapLogger(lf.logger(lvl).Named("temporal")), nil
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
