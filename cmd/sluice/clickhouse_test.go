package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/connectors/clickhouse"
	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/featurestore/offline"
	"github.com/sluicehq/sluice/serve"
	"github.com/sluicehq/sluice/testkit"
)

const streamYAML = `
kind: entity
name: user
key: user_id
type: string
---
kind: stream
name: clicks
entity: user
timestamp: ts
schema:
  - {name: user_id, type: string}
  - {name: page, type: string, nullable: true}
  - {name: ts, type: timestamp}
`

// memLog is an in-memory registry log.
type memLog struct {
	mu   sync.Mutex
	recs []featurestore.Record
}

func (l *memLog) Append(_ context.Context, recs []featurestore.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, recs...)
	return nil
}

func (l *memLog) ReadAll(context.Context) ([]featurestore.Record, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.recs), nil
}

func testRegistry(t *testing.T) *featurestore.Registry {
	t.Helper()
	ctx := context.Background()
	reg, err := featurestore.OpenRegistry(ctx, &memLog{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := featurestore.Parse(map[string][]byte{"f.yaml": []byte(streamYAML)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Apply(ctx, repo, false); err != nil {
		t.Fatal(err)
	}
	return reg
}

// writeOffline commits events from to to-1 of stream clicks to the offline
// store of a data dir, over two partitions; from is even.
func writeOffline(t *testing.T, dataDir string, reg *featurestore.Registry, from, to int) {
	t.Helper()
	sink, err := offline.Open(filepath.Join(dataDir, "offline"), offline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	schema := reg.Repo().Streams["clicks"].Schema
	ts := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	for i := from; i < to; i++ {
		user := fmt.Sprintf("u%d", i%4)
		sink.Add(schema, offline.Row{
			Values: []any{user, "/home", ts + int64(i)}, Key: user, EventID: fmt.Sprintf("c%d", i),
			EventTime: ts + int64(i), Arrival: ts + int64(i), Partition: int32(i % 2), Offset: int64(i / 2),
		})
	}
	if err := sink.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// sqlRows posts a query to a node's SQL endpoint and returns the status and
// rows.
func sqlRows(t *testing.T, url, query string) (int, [][]any) {
	t.Helper()
	body, _ := json.Marshal(serve.SQLRequest{Query: query})
	resp, err := http.Post(url+"/v1/sql", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out serve.SQLResponse
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	dec.Decode(&out)
	return resp.StatusCode, out.Rows
}

// waitRows waits until query answers want.
func waitRows(t *testing.T, url, query string, want [][]any) {
	t.Helper()
	var code int
	var got [][]any
	err := testkit.Eventually(context.Background(), 30*time.Second, func() error {
		code, got = sqlRows(t, url, query)
		if code != http.StatusOK || !cmp.Equal(want, got) {
			return fmt.Errorf("status %d, rows %v, want %v", code, got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestClickHouseSideManaged checks how a node's config maps to its
// ClickHouse side: an offline node with no clickhouse.addr runs a managed
// server under <data_dir>/clickhouse, loads the streams of the registry from
// <data_dir>/offline, and answers POST /v1/sql.
func TestClickHouseSideManaged(t *testing.T) {
	if _, err := clickhouse.FindServer(); err != nil {
		testkit.StartClickHouse(t) // skips, or fails under RequireAll
	}
	reg := testRegistry(t)
	c := defaultConfig()
	c.DataDir = t.TempDir()
	writeOffline(t, c.DataDir, reg, 0, 100)
	job, sql, closeFn, err := clickHouseSide(c, true, reg, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if job == nil {
		t.Fatal("no job on an offline node with a managed server")
	}
	mux := http.NewServeMux()
	sql.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- job(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("job: %v", err)
		}
		closeFn()
	}()
	const q = "SELECT count(), uniqExact(_event_id), countIf(page = '/home') FROM sluice.clicks"
	waitRows(t, srv.URL, q, [][]any{{json.Number("100"), json.Number("100"), json.Number("100")}})
	if _, err := os.Stat(filepath.Join(c.DataDir, "clickhouse", "config.xml")); err != nil {
		t.Errorf("managed server not under <data_dir>/clickhouse: %v", err)
	}
}

func TestClickHouseSideOff(t *testing.T) {
	for _, tc := range []struct {
		name    string
		managed string
		offline bool
		want    string
	}{
		{"managed off", "off", true, "ClickHouse sink off: clickhouse.managed is off and clickhouse.addr is empty"},
		{"not an offline node", "auto", false, "no ClickHouse on this node: set clickhouse.addr, or run the offline role"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := defaultConfig()
			c.ClickHouse.Managed = tc.managed
			var log bytes.Buffer
			job, sql, closeFn, err := clickHouseSide(c, tc.offline, nil, slog.New(slog.NewTextHandler(&log, nil)), prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			defer closeFn()
			if job != nil {
				t.Error("a job to run while the sink is off")
			}
			if !strings.Contains(log.String(), tc.want) {
				t.Errorf("log %q does not say %q", log.String(), tc.want)
			}
			mux := http.NewServeMux()
			sql.Register(mux)
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/sql", strings.NewReader(`{"query": "SELECT 1"}`)))
			if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), tc.want) {
				t.Errorf("POST /v1/sql: %d %s", rec.Code, rec.Body)
			}
		})
	}
	c := defaultConfig()
	c.ClickHouse.Managed = "sometimes"
	if _, _, _, err := clickHouseSide(c, true, nil, slog.New(slog.DiscardHandler), prometheus.NewRegistry()); err == nil || !strings.Contains(err.Error(), "use auto or off") {
		t.Errorf("managed: sometimes: %v", err)
	}
}
