// Package pgtest starts a throwaway PostgreSQL server from the machine's
// Debian packages (initdb, pg_ctl) for tests: its own data directory, a free
// loopback port, password authentication over TCP, stopped when the test
// ends. As root it runs the server as the postgres user, which PostgreSQL
// requires.
package pgtest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"
)

// RequiredEnv, when "1", turns a missing PostgreSQL into a test failure
// instead of a skip; CI sets it, so the tests that need it always run there.
const RequiredEnv = "CODESWARM_CLUSTER_REQUIRED"

// Server is a running PostgreSQL.
type Server struct {
	Addr     string // 127.0.0.1:port
	User     string
	Password string
	dir      string
	bin      string
	runAs    string // "" = this user
}

// Start starts PostgreSQL for t and stops it (deleting its data) when t
// ends. Without PostgreSQL on the machine it skips t, or fails it when
// RequiredEnv is set.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := findBin()
	if err != nil {
		Unavailable(t, err.Error())
	}
	s := &Server{User: "postgres", Password: randomHex(12), bin: bin}
	if os.Geteuid() == 0 {
		if _, err := user.Lookup("postgres"); err != nil {
			Unavailable(t, "running as root without a postgres user: "+err.Error())
		}
		s.runAs = "postgres"
	}
	if err := s.start(); err != nil {
		s.stop()
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(s.stop)
	return s
}

// Unavailable skips t because something the test needs is missing, or
// fails it when RequiredEnv says it must run.
func Unavailable(t testing.TB, why string) {
	t.Helper()
	if os.Getenv(RequiredEnv) == "1" {
		t.Fatalf("%s, and %s=1 says this test must run", why, RequiredEnv)
	}
	t.Skip(why)
}

// URL is the postgres:// URL of database db, password included.
func (s *Server) URL(db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(s.User, s.Password),
		Host:     s.Addr,
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Log returns the server's log, for failure messages.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "postgres.log"))
	return string(b)
}

func (s *Server) start() error {
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return err
	}
	s.dir = dir
	// The postgres user must reach its files inside our directory.
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	pwfile := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(s.Password+"\n"), 0o644); err != nil {
		return err
	}
	data := filepath.Join(dir, "data")
	if err := s.mkdirOwned(data); err != nil {
		return err
	}
	if out, err := s.cmd("initdb", "-D", data, "-U", s.User, "--pwfile", pwfile, "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %v\n%s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	// Durability is not what the tests measure: no fsync keeps CI fast.
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200", port, dir)
	if out, err := s.cmd("pg_ctl", "start", "-w", "-t", "60", "-D", data, "-l", filepath.Join(dir, "postgres.log"), "-o", opts).CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctl start: %v\n%s\n%s", err, out, s.Log())
	}
	return nil
}

// mkdirOwned creates dir owned by the user the server runs as.
func (s *Server) mkdirOwned(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	if s.runAs == "" {
		return nil
	}
	u, err := user.Lookup(s.runAs)
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return err
	}
	return os.Chown(filepath.Dir(dir), uid, gid)
}

func (s *Server) stop() {
	if s.dir == "" {
		return
	}
	data := filepath.Join(s.dir, "data")
	if _, err := os.Stat(filepath.Join(data, "postmaster.pid")); err == nil {
		_ = s.cmd("pg_ctl", "stop", "-w", "-m", "immediate", "-D", data).Run()
	}
	_ = os.RemoveAll(s.dir)
}

// cmd runs a PostgreSQL program, as the postgres user when root.
func (s *Server) cmd(name string, args ...string) *exec.Cmd {
	path := filepath.Join(s.bin, name)
	if s.runAs != "" {
		return exec.Command("runuser", append([]string{"-u", s.runAs, "--", path}, args...)...)
	}
	return exec.Command(path, args...)
}

// findBin finds the directory of initdb and pg_ctl: Debian keeps them out
// of PATH, under /usr/lib/postgresql/<version>/bin.
func findBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Sort(sort.Reverse(sort.StringSlice(dirs))) // the newest version first
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("PostgreSQL server programs (initdb, pg_ctl) not found: install Debian's postgresql package")
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// WaitTCP waits until addr accepts connections or d passes.
func WaitTCP(addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not accepting connections after %s: %w", addr, d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
