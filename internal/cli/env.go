package cli

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.uber.org/zap"

	"codeswarm/config"
	"codeswarm/control"
	"codeswarm/devserver"
	"codeswarm/internal/codec"
	"codeswarm/internal/searchattr"
	"codeswarm/internal/secret"
	"codeswarm/internal/swarmworker"
	"codeswarm/internal/tlog"
	"codeswarm/workflows"
)

// visibility says which search attributes a new run keeps current: all of
// them when the namespace has them (a run upserting one it lacks would fail),
// without repository and task when payloads are encrypted, since search
// attributes never are.
func (e *env) visibility(ctx context.Context) workflows.Visibility {
	missing, err := searchattr.Missing(ctx, e.client, e.cfg.Temporal.Namespace)
	return workflows.Visibility{
		SearchAttributes: err == nil && len(missing) == 0,
		Private:          e.cfg.Codec.Key != "",
	}
}

// ensureSearchAttributes registers the run's search attributes on a cluster
// this process did not start; without permission, runs go on without them.
func (e *env) ensureSearchAttributes(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := searchattr.Ensure(sctx, e.client, e.cfg.Temporal.Namespace); err != nil {
		e.logger.Warn("runs will have no search attributes (no state, repository or cost filters in the Web UI and `codeswarm list`); "+
			"an operator can add them with: "+searchattr.Hint(e.cfg.Temporal.Namespace), zap.Error(err))
	}
}

// env is a connection to Temporal, with whatever this process had to start
// for it: the embedded server and an in-process worker.
type env struct {
	cfg     *config.Config
	logger  *zap.Logger
	client  client.Client
	server  *devserver.Server
	workers *swarmworker.Workers
	// workerQueue is the task queue this process's worker polls.
	workerQueue string
	// tracker follows the workflow tasks of the client's workers.
	tracker *swarmworker.TaskTracker
	uiURL   string
	codec   *http.Server
	// codecToken is the capability path of this process's codec endpoint.
	codecToken string
	dc         converter.DataConverter // the client's, for memos

	gate      *logGate      // the SDK's and the worker's logs pass it
	closing   chan struct{} // closed when close begins
	closeOnce sync.Once
	died      atomic.Pointer[serverDied] // set when the embedded server died
}

type connectOpts struct {
	worker      bool // start an in-process worker
	forceServer bool // always start the embedded server (server, dev)
}

// connect dials the configured Temporal; with no address configured it uses
// a server listening on the default port, or starts the embedded one.
func connect(ctx context.Context, cfg *config.Config, logger *zap.Logger, opts connectOpts) (*env, error) {
	e := &env{
		cfg:     cfg,
		logger:  logger,
		tracker: swarmworker.NewTaskTracker(),
		gate:    &logGate{},
		closing: make(chan struct{}),
	}
	addr := cfg.Temporal.Address
	if addr == "" {
		local := net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Embedded.Port))
		if !opts.forceServer && listening(local) {
			addr = local
			e.uiURL = fmt.Sprintf("http://127.0.0.1:%d", cfg.Embedded.UIPort)
		} else {
			if err := e.newCodecToken(); err != nil {
				return nil, err
			}
			srv, err := startEmbedded(ctx, cfg, logger, e.codecURL())
			if err != nil {
				return nil, err
			}
			e.server, addr, e.uiURL = srv, srv.FrontendAddress(), srv.UIURL()
			e.gate.server = srv
			e.watchServer(ctx)
			if err := e.serveCodec(); err != nil {
				e.close()
				return nil, err
			}
		}
	}
	dc, err := codec.DataConverter(cfg.Codec.Key)
	if err != nil {
		e.close()
		return nil, usageError{err}
	}
	c, err := client.DialContext(ctx, client.Options{
		HostPort:          addr,
		Namespace:         cfg.Temporal.Namespace,
		DataConverter:     dc,
		FailureConverter:  codec.FailureConverter(cfg.Codec.Key, dc),
		Logger:            tlog.New(e.gate.wrap(quiet(logger, cfg).Named("sdk"))),
		ConnectionOptions: swarmworker.ConnectionOptions(addr, e.tracker),
	})
	if err != nil {
		e.close()
		return nil, fmt.Errorf("connect to Temporal at %s: %w", addr, err)
	}
	e.client, e.dc = c, dc
	if e.server == nil {
		e.ensureSearchAttributes(ctx)
	}
	if opts.worker {
		if err := e.startWorker(cfg.Temporal.TaskQueue); err != nil {
			e.close()
			return nil, err
		}
	}
	return e, nil
}

// startWorker starts this process's worker on queue (and the LLM and
// workspace queues named after it).
func (e *env) startWorker(queue string) error {
	cfg := *e.cfg
	cfg.Temporal.TaskQueue = queue
	w, err := swarmworker.New(&cfg, e.client, e.tracker, e.gate.wrap(e.logger.Named("worker")))
	if err == nil {
		err = w.Start()
	}
	if err != nil {
		return err
	}
	e.workers, e.workerQueue = w, queue
	return nil
}

func startEmbedded(ctx context.Context, cfg *config.Config, logger *zap.Logger, codecURL string) (*devserver.Server, error) {
	if err := checkRecordedDB(cfg); err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	srv, err := devserver.Start(sctx, devserver.Options{
		DBPath:           cfg.Embedded.DBPath,
		DBURL:            cfg.Embedded.DBURL,
		IP:               cfg.Embedded.IP,
		Port:             cfg.Embedded.Port,
		UIPort:           cfg.Embedded.UIPort,
		Namespace:        cfg.Temporal.Namespace,
		SearchAttributes: control.SearchAttributeTypes(),
		Logger:           logger.Named("temporal"),
		LogFile:          serverLogFile(cfg),
		LogLevel:         serverLogLevel(cfg),
		CodecEndpoint:    codecURL,
	})
	if err != nil {
		return nil, fmt.Errorf("start embedded Temporal server (%s): %w", stateKey(cfg), err)
	}
	if embeddedStarted != nil {
		embeddedStarted(srv)
	}
	return srv, nil
}

// embeddedStarted, when set (by tests), sees each embedded server started.
var embeddedStarted func(*devserver.Server)

// serverLogFile is where the embedded server logs: temporal-server.log in
// the state directory, beside the SQLite file (with embedded.db_url too,
// where db_path keeps its default), not the user's terminal.
func serverLogFile(cfg *config.Config) string {
	if cfg.Embedded.DBPath == "" {
		return ""
	}
	return filepath.Join(filepath.Dir(cfg.Embedded.DBPath), devserver.LogFileName)
}

// stateKey names the key that says where the embedded server keeps its
// state, and its value with any password masked.
func stateKey(cfg *config.Config) string {
	if cfg.Embedded.DBURL != "" {
		return "embedded.db_url " + config.RedactURL(cfg.Embedded.DBURL)
	}
	return "embedded.db_path " + cfg.Embedded.DBPath
}

func listening(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}

// workflowURL links a run in the Web UI.
func (e *env) workflowURL(id string) string {
	if e.uiURL == "" {
		return ""
	}
	return fmt.Sprintf("%s/namespaces/%s/workflows/%s", e.uiURL, e.cfg.Temporal.Namespace, id)
}

// serveCodec serves the payload codec for the Web UI when payloads are
// encrypted, so the UI can show them decoded; the key never leaves this host.
func (e *env) serveCodec() error {
	if e.cfg.Codec.Key == "" {
		return nil
	}
	h, err := codec.Handler(e.cfg.Codec.Key, e.uiURL, e.codecToken)
	if err != nil {
		return usageError{err}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(e.cfg.Codec.Port)))
	if err != nil {
		return fmt.Errorf("codec.port %d: %w", e.cfg.Codec.Port, err)
	}
	e.codec = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = e.codec.Serve(ln) }()
	return nil
}

// newCodecToken draws the codec endpoint's capability when payloads are
// encrypted: a fresh one per process, so no token outlives its server.
func (e *env) newCodecToken() error {
	if e.cfg.Codec.Key == "" {
		return nil
	}
	t, err := codec.NewToken()
	e.codecToken = t
	return err
}

// codecURL is where the embedded server's Web UI finds the codec endpoint
// this process serves, token included; "" without encryption.
func (e *env) codecURL() string {
	if e.codecToken == "" {
		return ""
	}
	return fmt.Sprintf("http://127.0.0.1:%d/%s", e.cfg.Codec.Port, e.codecToken)
}

// close stops what connect started. After the embedded server died it
// waits at most closeAfterDeath for that: the process is about to exit.
func (e *env) close() {
	e.closeOnce.Do(func() {
		close(e.closing)
		if e.died.Load() == nil {
			e.shutdown()
			return
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			e.shutdown()
		}()
		select {
		case <-done:
		case <-time.After(closeAfterDeath):
		}
	})
}

// closeAfterDeath bounds close once the embedded server has died.
const closeAfterDeath = 5 * time.Second

func (e *env) shutdown() {
	if e.codec != nil {
		_ = e.codec.Close()
	}
	if e.workers != nil {
		e.workers.Stop()
	}
	if e.client != nil {
		e.client.Close()
	}
	if e.server != nil {
		if err := e.server.Stop(); err != nil && e.died.Load() == nil {
			e.logger.Warn("stop embedded server", zap.Error(err))
		}
	}
}

// loadConfig loads config with the command's flags bound to their keys.
func loadConfig(g *globalOpts, flags flagSource, keys map[string]string) (*config.Config, *zap.Logger, error) {
	cfg, err := config.Load(config.LoadOptions{
		File:     g.configFile,
		Flags:    flags.Flags(),
		FlagKeys: keys,
	})
	if err != nil {
		return nil, nil, usageError{err}
	}
	logger, err := config.NewLogger(cfg.Log, secret.Writer(os.Stderr, secret.New(cfg.Secrets()...)))
	if err != nil {
		return nil, nil, usageError{err}
	}
	return cfg, logger, nil
}

// quiet raises the SDK's log level to warn unless debug logging was asked
// for: its info lines (workers starting and stopping) are noise in a CLI.
func quiet(logger *zap.Logger, cfg *config.Config) *zap.Logger {
	// At warn or error the logger is already quiet enough, and zap refuses
	// (noisily, on stderr) an "increase" that would lower its level.
	if cfg.Log.Level == "debug" || !logger.Core().Enabled(zap.InfoLevel) {
		return logger
	}
	return logger.WithOptions(zap.IncreaseLevel(zap.WarnLevel))
}

// serverLogLevel keeps the embedded server to errors unless debugging: its
// warnings (e.g. during shutdown) mean nothing to a user.
func serverLogLevel(cfg *config.Config) string {
	if cfg.Log.Level == "debug" {
		return "info"
	}
	return "error"
}
