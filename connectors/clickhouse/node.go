package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/schemas"
)

// Why a node has no ClickHouse, as NewNode logs and returns it for
// POST /v1/sql to answer.
const (
	offNotInstalled = "ClickHouse sink off: clickhouse-server not installed (apt-get install clickhouse-server, or set clickhouse.addr)"
	offManaged      = "ClickHouse sink off: clickhouse.managed is off and clickhouse.addr is empty (set clickhouse.addr, or managed: auto)"
	offNoOffline    = "no ClickHouse on this node: set clickhouse.addr, or run the offline role, which manages a local clickhouse-server"
)

// NodeOptions configure the ClickHouse side of a Sluice node.
type NodeOptions struct {
	// Addr is the TCP address of a ClickHouse server to use. Empty, the
	// node manages a clickhouse-server of its own, if Managed allows and
	// the node is Offline.
	Addr string
	// Database holds the stream tables.
	Database string
	// Managed is "auto" (or empty), or "off": whether a node without Addr
	// starts a clickhouse-server.
	Managed string
	// ServerDir holds the managed server's config, data and logs.
	ServerDir string
	// Offline says the node runs the offline role: it loads the Parquet
	// files of the offline store in OfflineDir, of the streams Streams
	// returns, into ClickHouse.
	Offline    bool
	OfflineDir string
	Streams    func() []*schemas.Schema
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Node is the ClickHouse side of a Sluice node: the managed server, if
// any, the client, set once connected, and on an offline node the Loader.
// It answers the queries of POST /v1/sql.
type Node struct {
	opts NodeOptions

	client atomic.Pointer[Client]
	mu     sync.Mutex
	server *Server
}

// NewNode returns a node's ClickHouse side, or nil and why there is none,
// which it logs (as a warning when clickhouse-server is missing). It
// starts nothing; Run does.
func NewNode(opts NodeOptions) (*Node, string, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	why, err := nodeOff(opts)
	switch {
	case err != nil:
		return nil, "", err
	case why != "":
		level := slog.LevelInfo
		if why == offNotInstalled {
			level = slog.LevelWarn
		}
		opts.Logger.Log(context.Background(), level, why)
		return nil, why, nil
	case opts.Addr == "" && opts.ServerDir == "":
		return nil, "", errors.New("clickhouse node: no directory for the managed server")
	case opts.Offline && (opts.OfflineDir == "" || opts.Streams == nil):
		return nil, "", errors.New("clickhouse node: offline without an offline store directory or streams")
	}
	return &Node{opts: opts}, "", nil
}

// nodeOff returns why a node has no ClickHouse, or "" when it has.
func nodeOff(opts NodeOptions) (string, error) {
	switch opts.Managed {
	case "auto", "off", "":
	default:
		return "", fmt.Errorf("clickhouse.managed: %q (use auto or off)", opts.Managed)
	}
	if opts.Addr != "" {
		return "", nil
	}
	switch {
	case opts.Managed == "off":
		return offManaged, nil
	case !opts.Offline:
		return offNoOffline, nil
	}
	if _, err := FindServer(); errors.Is(err, ErrNotInstalled) {
		return offNotInstalled, nil
	}
	return "", nil
}

// Query runs a read-only query, for POST /v1/sql; until connected, and
// after Run returns, ClickHouse is unavailable (ErrUnavailable).
func (n *Node) Query(ctx context.Context, query string, opts QueryOptions) (*Result, error) {
	cl := n.client.Load()
	if cl == nil {
		return nil, fmt.Errorf("clickhouse %s: %w (not connected yet)", n.where(), ErrUnavailable)
	}
	return cl.Query(ctx, query, opts)
}

// Server returns the managed clickhouse-server running now, or nil.
func (n *Node) Server() *Server {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.server
}

func (n *Node) where() string {
	if n.opts.Addr != "" {
		return "at " + n.opts.Addr
	}
	return "managed in " + n.opts.ServerDir
}

// Run connects, retrying until ctx is done, then loads the offline store
// on an offline node, restarting the managed server should it die.
// ClickHouse trouble never stops the node: it is logged and retried. Run
// returns when ctx is done, having closed the client and stopped the
// managed server.
func (n *Node) Run(ctx context.Context) error {
	defer func() {
		if err := n.Close(); err != nil {
			n.opts.Logger.Error("stop managed clickhouse-server", "err", err)
		}
	}()
	delay := time.Second
	for {
		cl, err := n.connect(ctx)
		if err == nil {
			n.client.Store(cl)
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		n.opts.Logger.Warn("ClickHouse sink waiting: cannot connect; retrying", "clickhouse", n.where(), "in", delay, "err", err)
		if !sleep(ctx, delay) {
			return nil
		}
		delay = min(2*delay, 30*time.Second)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	if n.opts.Addr == "" {
		wg.Go(func() { n.supervise(ctx) })
	}
	if !n.opts.Offline {
		<-ctx.Done()
		return nil
	}
	loader := NewLoader(n.client.Load(), n.opts.OfflineDir, n.opts.Streams,
		LoaderOptions{Logger: n.opts.Logger, Registerer: n.opts.Registerer})
	return loader.Run(ctx)
}

// supervise restarts the managed server, on the same ports, whenever it
// exits before ctx is done; meanwhile the loader's inserts fail and are
// retried.
func (n *Node) supervise(ctx context.Context) {
	for {
		srv := n.Server()
		select {
		case <-ctx.Done():
			return
		case <-srv.Done():
		}
		n.opts.Logger.Error("managed clickhouse-server died; restarting it", "err", srv.Err())
		delay := time.Second
		for {
			if !sleep(ctx, delay) {
				return
			}
			next, err := StartServer(ctx, ServerOptions{
				Dir: srv.Dir(), TCPAddr: srv.Addr(), HTTPAddr: srv.HTTPAddr(), Logger: n.opts.Logger,
			})
			if err == nil {
				n.mu.Lock()
				n.server = next
				n.mu.Unlock()
				n.opts.Logger.Info("managed clickhouse-server restarted", "tcp", next.Addr())
				break
			}
			n.opts.Logger.Error("restart managed clickhouse-server; retrying", "in", delay, "err", err)
			delay = min(2*delay, 30*time.Second)
		}
	}
}

// sleep waits d or until ctx is done; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// connect starts the managed server, if there is one, and opens a client.
func (n *Node) connect(ctx context.Context) (*Client, error) {
	addr := n.opts.Addr
	if addr == "" {
		srv, err := n.startServer(ctx)
		if err != nil {
			return nil, err
		}
		addr = srv.Addr()
	}
	openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return Open(openCtx, addr, n.opts.Database, n.opts.Logger)
}

// startServer starts the managed server unless it runs.
func (n *Node) startServer(ctx context.Context) (*Server, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.server != nil && n.server.Err() == nil {
		return n.server, nil
	}
	dir := n.opts.ServerDir
	srv, err := StartServer(ctx, ServerOptions{Dir: dir, Logger: n.opts.Logger})
	if err != nil {
		return nil, err
	}
	n.opts.Logger.Info("managed clickhouse-server", "tcp", srv.Addr(), "http", srv.HTTPAddr(), "dir", dir)
	n.server = srv
	return srv, nil
}

// Close closes the client and stops the managed server; it is idempotent,
// and Run calls it before it returns.
func (n *Node) Close() error {
	if cl := n.client.Swap(nil); cl != nil {
		cl.Close()
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.server == nil {
		return nil
	}
	err := n.server.Stop()
	n.server = nil
	return err
}
