package clickhouse_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/connectors/clickhouse"
	"github.com/sluicehq/sluice/testkit"
)

// logBuffer is a log that tests read while goroutines write it.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runningNode is a node whose Run goroutine a test stops.
type runningNode struct {
	*clickhouse.Node
	stop func()
}

// startNode runs the ClickHouse side of an offline node that keeps its
// managed server in serverDir and loads the store st.
func startNode(t *testing.T, serverDir string, st *store, log *logBuffer) *runningNode {
	t.Helper()
	n, why, err := clickhouse.NewNode(clickhouse.NodeOptions{
		Database: clickhouse.DefaultDatabase, Managed: "auto", ServerDir: serverDir,
		Offline: true, OfflineDir: st.dir, Streams: streamsOf(txnSchema()),
		Logger: slog.New(slog.NewTextHandler(log, nil)), Registerer: prometheus.NewRegistry(),
	})
	if err != nil || n == nil {
		t.Fatalf("NewNode: %v %s", err, why)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		if err := n.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}
	t.Cleanup(func() {
		if ctx.Err() == nil {
			stop()
		}
	})
	return &runningNode{Node: n, stop: stop}
}

// waitRows waits until the node answers query with want.
func waitRows(t *testing.T, n *clickhouse.Node, query string, want [][]any) {
	t.Helper()
	var got [][]any
	err := testkit.Eventually(context.Background(), 30*time.Second, func() error {
		res, err := n.Query(context.Background(), query, clickhouse.QueryOptions{})
		if err != nil {
			return err
		}
		if got = res.Rows; !cmp.Equal(want, got) {
			return fmt.Errorf("rows %v, want %v", got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestManagedNode runs the ClickHouse side of an offline node on its
// managed server: it loads the offline store, survives the server's death
// and a node restart, and never loads a row twice.
func TestManagedNode(t *testing.T) {
	if _, err := clickhouse.FindServer(); err != nil {
		testkit.StartClickHouse(t) // skips, or fails under RequireAll
	}
	st := newStore(t)
	st.commit(txnSchema(), 100, event)
	serverDir := filepath.Join(t.TempDir(), "clickhouse")
	var log logBuffer
	n := startNode(t, serverDir, st, &log)
	// sum(qty) is the sum of 0..n-1, as event i has qty i.
	const q = "SELECT count(), uniqExact(_event_id), sum(qty) FROM sluice.transactions"
	waitRows(t, n.Node, q, [][]any{{uint64(100), uint64(100), int64(4950)}})
	if !strings.Contains(log.String(), "managed clickhouse-server") || !strings.Contains(log.String(), serverDir) {
		t.Errorf("managed server start not logged with its dir %s:\n%s", serverDir, log.String())
	}

	// The managed server dies: it is restarted, and new files are loaded.
	srv := n.Server()
	if srv == nil {
		t.Fatal("no managed server while the node runs")
	}
	srv.Kill()
	st.commit(txnSchema(), 50, event)
	waitRows(t, n.Node, q, [][]any{{uint64(150), uint64(150), int64(11175)}})
	if !strings.Contains(log.String(), "managed clickhouse-server restarted") {
		t.Errorf("no restart logged:\n%s", log.String())
	}

	// The node stops: so does the server. Started again on the same dirs,
	// it finds the rows there and loads nothing twice.
	n.stop()
	if _, err := n.Query(context.Background(), q, clickhouse.QueryOptions{}); !errors.Is(err, clickhouse.ErrUnavailable) {
		t.Errorf("query after the node stopped: %v, want ErrUnavailable", err)
	}
	if n.Server() != nil {
		t.Error("a managed server after the node stopped")
	}
	n = startNode(t, serverDir, st, &log)
	waitRows(t, n.Node, q, [][]any{{uint64(150), uint64(150), int64(11175)}})
	if _, err := http.Get("http://" + srv.HTTPAddr() + "/ping"); err == nil {
		t.Error("the first managed server still runs")
	}
}

// TestNodeOff checks the nodes without ClickHouse: why, as logged and
// returned, and the options NewNode rejects.
func TestNodeOff(t *testing.T) {
	streams := streamsOf(txnSchema())
	for _, tc := range []struct {
		name    string
		opts    clickhouse.NodeOptions
		why     string // in the reason returned and logged at INFO
		wantErr string
	}{
		{
			name: "managed off",
			opts: clickhouse.NodeOptions{Managed: "off", ServerDir: "x", Offline: true, OfflineDir: "y", Streams: streams},
			why:  "ClickHouse sink off: clickhouse.managed is off and clickhouse.addr is empty",
		},
		{
			name: "not an offline node",
			opts: clickhouse.NodeOptions{Managed: "auto", ServerDir: "x"},
			why:  "no ClickHouse on this node: set clickhouse.addr, or run the offline role",
		},
		{
			name:    "managed sometimes",
			opts:    clickhouse.NodeOptions{Managed: "sometimes", Addr: "127.0.0.1:9000"},
			wantErr: `clickhouse.managed: "sometimes" (use auto or off)`,
		},
		{
			name:    "managed without a dir",
			opts:    clickhouse.NodeOptions{Managed: "auto", Offline: true, OfflineDir: "y", Streams: streams},
			wantErr: "no directory for the managed server",
		},
		{
			name:    "offline without streams",
			opts:    clickhouse.NodeOptions{Addr: "127.0.0.1:9000", Offline: true, OfflineDir: "y"},
			wantErr: "offline without an offline store directory or streams",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "managed without a dir" {
				if _, err := clickhouse.FindServer(); err != nil {
					if testkit.RequireAll() {
						t.Fatal("clickhouse-server is required but not installed (make test installs it)")
					}
					t.Skip("clickhouse-server not installed: the node is off before its dir matters")
				}
			}
			var log bytes.Buffer
			tc.opts.Logger = slog.New(slog.NewTextHandler(&log, nil))
			n, why, err := clickhouse.NewNode(tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || n != nil {
				t.Fatalf("NewNode: %v, %v; want no node and no error", n, err)
			}
			if !strings.Contains(why, tc.why) {
				t.Errorf("why %q does not say %q", why, tc.why)
			}
			if !strings.Contains(log.String(), "level=INFO msg="+fmt.Sprintf("%q", why)) {
				t.Errorf("log %q does not say %q at INFO", log.String(), why)
			}
		})
	}
}
