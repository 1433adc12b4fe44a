package clickhouse

import (
	"bytes"
	"cmp"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"text/template"
	"time"
)

// ErrNotInstalled is returned when no ClickHouse server program is found.
var ErrNotInstalled = errors.New("clickhouse-server not installed")

// FindServer returns the command line that runs a ClickHouse server:
// clickhouse-server (Debian installs it in /usr/sbin, which a user's PATH
// may lack), or the single clickhouse binary of current releases with its
// server subcommand.
func FindServer() ([]string, error) {
	for _, name := range []string{"clickhouse-server", "/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"} {
		if p, err := exec.LookPath(name); err == nil {
			return []string{p}, nil
		}
	}
	for _, name := range []string{"clickhouse", "/usr/bin/clickhouse"} {
		if p, err := exec.LookPath(name); err == nil {
			return []string{p, "server"}, nil
		}
	}
	return nil, ErrNotInstalled
}

// ServerOptions configure a managed ClickHouse server.
type ServerOptions struct {
	// Dir holds the server's config, data, temporary files and logs.
	Dir string
	// Command runs the server (default: FindServer).
	Command []string
	// TCPAddr and HTTPAddr are the loopback addresses of the native and
	// HTTP interfaces (default: free ports on 127.0.0.1).
	TCPAddr, HTTPAddr string
	// MaxMemoryBytes bounds the memory of one query (default 2 GiB).
	MaxMemoryBytes int64
	// StartTimeout bounds how long StartServer waits for the server to
	// answer (default 60s).
	StartTimeout time.Duration
	Logger       *slog.Logger
}

// Server is a clickhouse-server process this process started and stops.
type Server struct {
	cmd     *exec.Cmd
	dir     string
	tcp     string
	http    string
	log     *slog.Logger
	exited  chan struct{} // closed when the process has exited
	exitErr error         // its exit status, once exited is closed
	stopped atomic.Bool   // Stop or Kill was called
}

// StartServer writes a config for a server bound to loopback under
// opts.Dir, starts it, and returns once it answers. The server runs until
// Stop or Kill; should this process die first, Linux stops it too.
func StartServer(ctx context.Context, opts ServerOptions) (*Server, error) {
	if opts.Dir == "" {
		return nil, errors.New("clickhouse server: no directory given")
	}
	if opts.Command == nil {
		var err error
		if opts.Command, err = FindServer(); err != nil {
			return nil, err
		}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	opts.MaxMemoryBytes = cmp.Or(opts.MaxMemoryBytes, 2<<30)
	opts.StartTimeout = cmp.Or(opts.StartTimeout, time.Minute)
	freePorts := opts.TCPAddr == "" && opts.HTTPAddr == ""
	for attempt := 1; ; attempt++ {
		o := opts
		if o.TCPAddr == "" {
			o.TCPAddr = freeAddr()
		}
		if o.HTTPAddr == "" {
			o.HTTPAddr = freeAddr()
		}
		s, err := startServer(ctx, o)
		// Another process may take a free port before the server binds it.
		if err != nil && freePorts && attempt < 3 && strings.Contains(err.Error(), "Address already in use") {
			continue
		}
		return s, err
	}
}

func startServer(ctx context.Context, opts ServerOptions) (*Server, error) {
	config, err := writeConfig(opts)
	if err != nil {
		return nil, fmt.Errorf("clickhouse server in %s: %w", opts.Dir, err)
	}
	out, err := os.OpenFile(filepath.Join(opts.Dir, "log", "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("clickhouse server in %s: %w", opts.Dir, err)
	}
	defer out.Close()
	args := append(opts.Command[1:len(opts.Command):len(opts.Command)], "--config-file="+config)
	cmd := exec.Command(opts.Command[0], args...)
	cmd.Dir = opts.Dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", opts.Command[0], err)
	}
	s := &Server{
		cmd: cmd, dir: opts.Dir, tcp: opts.TCPAddr, http: opts.HTTPAddr,
		log: opts.Logger.With("component", "clickhouse-server"), exited: make(chan struct{}),
	}
	go func() {
		s.exitErr = cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(ctx, opts.StartTimeout); err != nil {
		s.Kill()
		return nil, err
	}
	return s, nil
}

// waitReady polls the server's /ping until it answers Ok.
func (s *Server) waitReady(ctx context.Context, timeout time.Duration) error {
	// Without keep-alive: an idle connection would delay a shutdown.
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := hc.Get("http://" + s.http + "/ping")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.HasPrefix(string(body), "Ok.") {
				return nil
			}
		}
		select {
		case <-s.exited:
			return fmt.Errorf("clickhouse-server exited while starting (%v): %s", s.exitErr, s.logTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("clickhouse-server did not answer on %s within %s: %s", s.http, timeout, s.logTail())
		}
	}
}

// logTail returns the end of the server's error log and output.
func (s *Server) logTail() string {
	var b strings.Builder
	for _, name := range []string{"clickhouse-server.err.log", "stdout.log"} {
		data, err := os.ReadFile(filepath.Join(s.dir, "log", name))
		if err != nil || len(bytes.TrimSpace(data)) == 0 {
			continue
		}
		if len(data) > 2000 {
			data = data[len(data)-2000:]
		}
		fmt.Fprintf(&b, "\n--- %s ---\n%s", name, bytes.TrimSpace(data))
	}
	if b.Len() == 0 {
		return "no log"
	}
	return b.String()
}

// Addr returns the address of the server's native protocol.
func (s *Server) Addr() string { return s.tcp }

// HTTPAddr returns the address of the server's HTTP interface.
func (s *Server) HTTPAddr() string { return s.http }

// Dir returns the server's directory.
func (s *Server) Dir() string { return s.dir }

// Done is closed when the server process has exited, for whatever reason.
func (s *Server) Done() <-chan struct{} { return s.exited }

// Err describes how the server exited, with the end of its logs; nil while
// it runs or after Stop or Kill.
func (s *Server) Err() error {
	select {
	case <-s.exited:
	default:
		return nil
	}
	if s.stopped.Load() {
		return nil
	}
	return fmt.Errorf("clickhouse-server exited (%v): %s", s.exitErr, s.logTail())
}

// Stop asks the server to shut down (SIGTERM) and waits for it, killing it
// after 30s.
func (s *Server) Stop() error {
	s.stopped.Store(true)
	select {
	case <-s.exited:
		return nil
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop clickhouse-server: %w", err)
	}
	select {
	case <-s.exited:
		return nil
	case <-time.After(30 * time.Second):
		s.log.Warn("clickhouse-server did not stop within 30s of SIGTERM; killing it")
		return s.Kill()
	}
}

// Kill stops the server at once (SIGKILL), as a crash would.
func (s *Server) Kill() error {
	s.stopped.Store(true)
	select {
	case <-s.exited:
		return nil
	default:
	}
	if err := s.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill clickhouse-server: %w", err)
	}
	<-s.exited
	return nil
}

// freeAddr returns a loopback address whose port was free just now.
func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:0"
	}
	defer ln.Close()
	return ln.Addr().String()
}

// writeConfig writes config.xml and users.xml under opts.Dir and creates
// the server's directories; it returns the path of config.xml.
func writeConfig(opts ServerOptions) (string, error) {
	host, tcpPort, err := net.SplitHostPort(opts.TCPAddr)
	if err != nil {
		return "", fmt.Errorf("tcp address %q: %w", opts.TCPAddr, err)
	}
	httpHost, httpPort, err := net.SplitHostPort(opts.HTTPAddr)
	if err != nil {
		return "", fmt.Errorf("http address %q: %w", opts.HTTPAddr, err)
	}
	if host != httpHost {
		return "", fmt.Errorf("tcp address %q and http address %q: use one host", opts.TCPAddr, opts.HTTPAddr)
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return "", err
	}
	for _, d := range []string{"data", "tmp", "user_files", "format_schemas", "log"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return "", err
		}
	}
	esc := func(s string) string {
		var b strings.Builder
		xml.EscapeText(&b, []byte(s))
		return b.String()
	}
	vars := map[string]any{
		"Dir": esc(dir), "Host": esc(host), "TCPPort": tcpPort, "HTTPPort": httpPort,
		"MaxMemory": opts.MaxMemoryBytes,
	}
	for name, tmpl := range map[string]*template.Template{"config.xml": configXML, "users.xml": usersXML} {
		var b bytes.Buffer
		if err := tmpl.Execute(&b, vars); err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
			return "", err
		}
	}
	return filepath.Join(dir, "config.xml"), nil
}

// The config of a managed server: loopback only, its own directories, UTC,
// small caches. The root element <yandex> is read by old and new servers.
var configXML = template.Must(template.New("config").Parse(`<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>{{.Dir}}/log/clickhouse-server.log</log>
        <errorlog>{{.Dir}}/log/clickhouse-server.err.log</errorlog>
        <size>10M</size>
        <count>2</count>
        <console>0</console>
    </logger>
    <listen_host>{{.Host}}</listen_host>
    <tcp_port>{{.TCPPort}}</tcp_port>
    <http_port>{{.HTTPPort}}</http_port>
    <path>{{.Dir}}/data/</path>
    <tmp_path>{{.Dir}}/tmp/</tmp_path>
    <user_files_path>{{.Dir}}/user_files/</user_files_path>
    <format_schema_path>{{.Dir}}/format_schemas/</format_schema_path>
    <users_config>{{.Dir}}/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <max_concurrent_queries>32</max_concurrent_queries>
    <keep_alive_timeout>3</keep_alive_timeout>
    <mark_cache_size>67108864</mark_cache_size>
    <uncompressed_cache_size>67108864</uncompressed_cache_size>
    <mlock_executable>false</mlock_executable>
</yandex>
`))

var usersXML = template.Must(template.New("users").Parse(`<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>{{.MaxMemory}}</max_memory_usage>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
`))
