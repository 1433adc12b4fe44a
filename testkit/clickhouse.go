package testkit

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/connectors/clickhouse"
)

// ClickHouse is a clickhouse-server process started for one test.
type ClickHouse struct {
	*clickhouse.Server
}

// StartClickHouse starts a clickhouse-server on free loopback ports with its
// config, data and logs in a temporary directory, waits until it answers,
// and kills it when the test ends. It skips the test when no server is
// installed (fails it under RequireAll).
func StartClickHouse(t testing.TB) *ClickHouse {
	t.Helper()
	cmd, err := clickhouse.FindServer()
	if errors.Is(err, clickhouse.ErrNotInstalled) {
		if RequireAll() {
			t.Fatal("clickhouse-server is required but not installed (make test installs it: apt-get install clickhouse-server)")
		}
		t.Skip("clickhouse-server not installed; run make test to install it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := clickhouse.StartServer(ctx, clickhouse.ServerOptions{
		Dir: t.TempDir(), Command: cmd, MaxMemoryBytes: 1 << 30,
	})
	if err != nil {
		t.Fatalf("start clickhouse-server: %v", err)
	}
	// The data dies with the test, so there is nothing to shut down cleanly.
	t.Cleanup(func() { s.Kill() })
	return &ClickHouse{Server: s}
}

// Client opens a client of the server on database, closed when the test
// ends.
func (c *ClickHouse) Client(t testing.TB, database string) *clickhouse.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := clickhouse.Open(ctx, c.Addr(), database, nil)
	if err != nil {
		t.Fatalf("open clickhouse client: %v", err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// Exec runs a statement over the server's HTTP interface, as an
// administrator would, and returns its output.
func (c *ClickHouse) Exec(t testing.TB, query string) string {
	t.Helper()
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Post("http://"+c.HTTPAddr()+"/", "text/plain", strings.NewReader(query))
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s: %s", query, resp.Status, body)
	}
	return string(body)
}
