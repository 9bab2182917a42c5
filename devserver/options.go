package devserver

import (
	"fmt"
	"net"

	enumspb "go.temporal.io/api/enums/v1"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

const (
	defaultIP        = "127.0.0.1"
	defaultNamespace = "default"
	defaultLogLevel  = zapcore.WarnLevel
	// uiDisabled is the UIPort value that turns the Web UI off.
	uiDisabled = -1
)

// Options configures Start. The zero value is an in-memory server on free
// ports with the Web UI enabled.
type Options struct {
	// DBPath is the SQLite file; "" keeps all state in memory (tests).
	DBPath string
	// DBURL, when set, replaces DBPath: a PostgreSQL URL
	// (postgres://user:password@host:port/database?sslmode=disable). The
	// server keeps workflows in that database and visibility in
	// <database>_visibility, creating both and their schema when missing.
	DBURL string
	// IP is the address every service binds to; default "127.0.0.1".
	IP string
	// Port is the frontend gRPC port; 0 picks a free port.
	Port int
	// UIPort is the Web UI HTTP port; 0 picks a free port, -1 disables the UI.
	UIPort int
	// Namespace is registered at start if missing; default "default".
	Namespace string
	// SearchAttributes are custom search attributes registered at start if missing.
	SearchAttributes map[string]enumspb.IndexedValueType
	// Logger receives the server's logs unless LogFile is set; nil discards
	// them.
	Logger *zap.Logger
	// LogFile, when set, receives the server's logs instead of Logger: a
	// file (e.g. LogFileName beside DBPath) opened for appending, first
	// moved to <LogFile>.1 when larger than 4 MiB. It also records each
	// start and stop, and why the server was taken for dead.
	LogFile string
	// LogLevel is the minimum level of server logs passed to Logger or
	// LogFile ("debug", "info", "warn", "error"); default "warn" because the
	// server is chatty.
	LogLevel string
	// DynamicConfig holds extra dynamic config overrides (key -> value),
	// applied on top of the tuned defaults. Integers must be of type int.
	DynamicConfig map[string]any
	// CodecEndpoint is a remote payload codec the Web UI calls to show
	// encrypted payloads decoded; "" for none.
	CodecEndpoint string
	// Stock skips the latency tuning and keeps only what the Temporal CLI dev
	// server sets; it exists for benchmark comparisons.
	Stock bool
}

// withDefaults validates o and fills in its defaults.
func (o Options) withDefaults() (Options, error) {
	if o.IP == "" || o.IP == "localhost" {
		// The server needs an IP, not a host name.
		o.IP = defaultIP
	}
	if net.ParseIP(o.IP) == nil {
		return o, fmt.Errorf("devserver: IP %q is not an IP address", o.IP)
	}
	if o.Port < 0 || o.Port > 65535 {
		return o, fmt.Errorf("devserver: Port %d out of range 0..65535", o.Port)
	}
	if o.UIPort < uiDisabled || o.UIPort > 65535 {
		return o, fmt.Errorf("devserver: UIPort %d out of range -1..65535", o.UIPort)
	}
	if o.Namespace == "" {
		o.Namespace = defaultNamespace
	}
	if _, err := o.serverLogLevel(); err != nil {
		return o, err
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return o, nil
}

// serverLogLevel parses LogLevel, defaulting to warn.
func (o Options) serverLogLevel() (zapcore.Level, error) {
	if o.LogLevel == "" {
		return defaultLogLevel, nil
	}
	lvl, err := zapcore.ParseLevel(o.LogLevel)
	if err != nil {
		return lvl, fmt.Errorf("devserver: LogLevel %q: %w", o.LogLevel, err)
	}
	return lvl, nil
}

// uiEnabled reports whether the Web UI should run.
func (o Options) uiEnabled() bool { return o.UIPort != uiDisabled }
