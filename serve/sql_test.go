package serve_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/serve"
	"github.com/sluicehq/sluice/testkit"
)

// sqlServer serves POST /v1/sql over engine.
func sqlServer(t *testing.T, engine serve.SQLEngine, off string) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	serve.NewSQL(engine, off, serve.SQLOptions{}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// postSQL posts body and returns the status and the decoded answer.
func postSQL(t *testing.T, url, body string) (int, any) {
	t.Helper()
	resp, err := http.Post(url+"/v1/sql", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("answer %s is not JSON: %v", b, err)
	}
	return resp.StatusCode, v
}

func TestSQL(t *testing.T) {
	ch := testkit.StartClickHouse(t)
	ch.Exec(t, "CREATE DATABASE sluice")
	ch.Exec(t, "CREATE TABLE sluice.t (id UInt64, name Nullable(String), score Float64, tags Array(String), at DateTime) ENGINE = MergeTree ORDER BY id")
	ch.Exec(t, "INSERT INTO sluice.t VALUES (18446744073709551615, 'a', 1.5, ['x','y'], '2026-05-01 12:30:00'), (2, NULL, nan, [], '2026-05-02 00:00:00')")
	srv := sqlServer(t, ch.Client(t, "sluice"), "")

	code, got := postSQL(t, srv.URL, `{"query": "SELECT * FROM sluice.t ORDER BY id"}`)
	want := map[string]any{
		"columns": []any{
			map[string]any{"name": "id", "type": "UInt64"},
			map[string]any{"name": "name", "type": "Nullable(String)"},
			map[string]any{"name": "score", "type": "Float64"},
			map[string]any{"name": "tags", "type": "Array(String)"},
			map[string]any{"name": "at", "type": "DateTime"},
		},
		"rows": []any{
			[]any{json.Number("2"), nil, nil, []any{}, "2026-05-02T00:00:00Z"},
			[]any{json.Number("18446744073709551615"), "a", json.Number("1.5"), []any{"x", "y"}, "2026-05-01T12:30:00Z"},
		},
	}
	if code != http.StatusOK {
		t.Fatalf("status %d: %v", code, got)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answer (-want +got):\n%s", diff)
	}

	// An endless query is cut at max_rows.
	code, got = postSQL(t, srv.URL, `{"query": "SELECT number FROM system.numbers", "max_rows": 3}`)
	want = map[string]any{
		"columns":   []any{map[string]any{"name": "number", "type": "UInt64"}},
		"rows":      []any{[]any{json.Number("0")}, []any{json.Number("1")}, []any{json.Number("2")}},
		"truncated": true,
	}
	if diff := cmp.Diff(want, got); code != http.StatusOK || diff != "" {
		t.Errorf("truncated answer: status %d (-want +got):\n%s", code, diff)
	}

	// The client reads the same answer.
	resp, err := (&serve.Client{URL: srv.URL}).SQL(context.Background(), "SELECT count() AS n FROM sluice.t", 0)
	if err != nil {
		t.Fatal(err)
	}
	wantResp := &serve.SQLResponse{Columns: []serve.SQLColumn{{Name: "n", Type: "UInt64"}}, Rows: [][]any{{json.Number("2")}}}
	if diff := cmp.Diff(wantResp, resp); diff != "" {
		t.Errorf("client answer (-want +got):\n%s", diff)
	}
}

func TestSQLErrors(t *testing.T) {
	ch := testkit.StartClickHouse(t)
	srv := sqlServer(t, ch.Client(t, "sluice"), "")
	for _, tc := range []struct {
		name, body string
		code       int
		want       string
	}{
		{"syntax", `{"query": "SELEC 1"}`, 400, "Syntax error"},
		{"unknown table", `{"query": "SELECT * FROM sluice.nope"}`, 400, "nope"},
		{"unreadable type", `{"query": "SELECT uniqState(1)"}`, 400, "convert such a column"},
		{"writes are refused", `{"query": "CREATE TABLE sluice.x (a Int8) ENGINE = Memory"}`, 400, "readonly"},
		{"empty", `{"query": "  "}`, 400, `field "query": empty`},
		{"not JSON", `SELECT 1`, 400, "body"},
		{"max_rows", `{"query": "SELECT 1", "max_rows": -1}`, 400, `field "max_rows"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, got := postSQL(t, srv.URL, tc.body)
			msg, _ := got.(map[string]any)["error"].(string)
			if code != tc.code || !strings.Contains(msg, tc.want) {
				t.Errorf("got %d %q, want %d and an error containing %q", code, msg, tc.code, tc.want)
			}
		})
	}

	// A server that went away answers 503.
	ch.Kill()
	code, got := postSQL(t, srv.URL, `{"query": "SELECT 1"}`)
	if msg, _ := got.(map[string]any)["error"].(string); code != http.StatusServiceUnavailable || !strings.Contains(msg, "unavailable") {
		t.Errorf("server down: got %d %q, want 503 saying clickhouse is unavailable", code, msg)
	}
}

func TestSQLWithoutClickHouse(t *testing.T) {
	const off = "ClickHouse sink off: clickhouse-server not installed (apt-get install clickhouse-server, or set clickhouse.addr)"
	srv := sqlServer(t, nil, off)
	code, got := postSQL(t, srv.URL, `{"query": "SELECT 1"}`)
	if diff := cmp.Diff(map[string]any{"error": off}, got); code != http.StatusServiceUnavailable || diff != "" {
		t.Errorf("got %d (-want +got):\n%s", code, diff)
	}
}
