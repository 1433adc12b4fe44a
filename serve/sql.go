package serve

import (
	"cmp"
	"context"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/sluicehq/sluice/connectors/clickhouse"
)

// SQLEngine runs the queries of POST /v1/sql; *clickhouse.Client is one.
// A *clickhouse.QueryError is the query's fault (400); an error wrapping
// clickhouse.ErrUnavailable means the engine could not be asked (503).
type SQLEngine interface {
	Query(ctx context.Context, query string, opts clickhouse.QueryOptions) (*clickhouse.Result, error)
}

// Defaults and bounds of the SQL endpoint.
const (
	DefaultSQLMaxRows = 10_000
	MaxSQLRows        = 1_000_000
	maxSQLBody        = 1 << 20
)

// SQLOptions configure the SQL endpoint. The zero value is usable.
type SQLOptions struct {
	Logger *slog.Logger
	// MaxRows is how many rows an answer holds unless the request asks for
	// another number (default DefaultSQLMaxRows).
	MaxRows int
	// Timeout bounds one query (default 60s).
	Timeout time.Duration
}

// SQL serves POST /v1/sql: SQL over the offline store's ClickHouse tables.
type SQL struct {
	engine SQLEngine
	off    string
	opts   SQLOptions
}

// NewSQL returns the SQL endpoint over engine. With a nil engine it answers
// every query 503 with off, which says why there is no ClickHouse and how to
// get one.
func NewSQL(engine SQLEngine, off string, opts SQLOptions) *SQL {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	opts.MaxRows = cmp.Or(opts.MaxRows, DefaultSQLMaxRows)
	opts.Timeout = cmp.Or(opts.Timeout, time.Minute)
	return &SQL{engine: engine, off: off, opts: opts}
}

// Register adds POST /v1/sql to mux.
func (s *SQL) Register(mux *http.ServeMux) { mux.HandleFunc("POST /v1/sql", s.handle) }

// SQLRequest is the body of POST /v1/sql.
type SQLRequest struct {
	Query string `json:"query"`
	// MaxRows bounds the rows answered (default 10,000, at most 1,000,000).
	MaxRows int `json:"max_rows,omitempty"`
}

// SQLColumn is one column of a SQL answer, with its ClickHouse type.
type SQLColumn struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// SQLResponse is the answer of POST /v1/sql. Values are JSON: strings,
// numbers (64-bit integers exact), booleans, null, times as RFC 3339
// strings, arrays as lists, maps and tuples as objects or lists; NaN and
// infinities are null.
type SQLResponse struct {
	Columns []SQLColumn `json:"columns"`
	Rows    [][]any     `json:"rows"`
	// Truncated says the query returned more rows than MaxRows.
	Truncated bool `json:"truncated,omitempty"`
}

func (s *SQL) handle(w http.ResponseWriter, r *http.Request) {
	var req SQLRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxSQLBody)).Decode(&req); err != nil {
		writeBodyError(w, err)
		return
	}
	if strings.TrimSpace(req.Query) == "" {
		writeError(w, http.StatusBadRequest, errors.New(`field "query": empty (send {"query": "SELECT ..."})`))
		return
	}
	if req.MaxRows < 0 || req.MaxRows > MaxSQLRows {
		writeError(w, http.StatusBadRequest, fmt.Errorf(`field "max_rows": %d is out of range (use 1 to %d)`, req.MaxRows, MaxSQLRows))
		return
	}
	if s.engine == nil {
		writeError(w, http.StatusServiceUnavailable, errors.New(s.off))
		return
	}
	res, err := s.engine.Query(r.Context(), req.Query, clickhouse.QueryOptions{
		MaxRows: cmp.Or(req.MaxRows, s.opts.MaxRows), Timeout: s.opts.Timeout,
	})
	var qe *clickhouse.QueryError
	switch {
	case errors.As(err, &qe):
		writeError(w, http.StatusBadRequest, qe)
		return
	case err != nil && r.Context().Err() != nil:
		return // the client left
	case errors.Is(err, clickhouse.ErrUnavailable):
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, err)
		return
	case err != nil:
		s.opts.Logger.Error("sql query failed", "err", err)
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	resp := SQLResponse{Columns: make([]SQLColumn, len(res.Columns)), Rows: make([][]any, len(res.Rows)), Truncated: res.Truncated}
	for i, c := range res.Columns {
		resp.Columns[i] = SQLColumn{Name: c.Name, Type: c.Type}
	}
	for i, row := range res.Rows {
		out := make([]any, len(row))
		for j, v := range row {
			out[j] = sqlValue(v)
		}
		resp.Rows[i] = out
	}
	writeJSON(w, http.StatusOK, resp)
}

// sqlValue maps a value of a query's result to JSON.
func sqlValue(v any) any {
	switch x := v.(type) {
	case nil, string, bool, int8, int16, int32, int64, int, uint8, uint16, uint32, uint64, uint:
		return x
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
		return x
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return nil
		}
		return x
	case time.Time:
		return x.Format(time.RFC3339Nano)
	case []byte:
		return string(x)
	case json.Marshaler, encoding.TextMarshaler:
		return x // UUIDs, IPs, decimals, big integers
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return nil
		}
		return sqlValue(rv.Elem().Interface())
	case reflect.Slice, reflect.Array:
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = sqlValue(rv.Index(i).Interface())
		}
		return out
	case reflect.Map:
		out := make(map[string]any, rv.Len())
		for it := rv.MapRange(); it.Next(); {
			out[fmt.Sprint(it.Key().Interface())] = sqlValue(it.Value().Interface())
		}
		return out
	}
	if _, err := json.Marshal(v); err != nil {
		return fmt.Sprint(v)
	}
	return v
}

// SQL calls POST /v1/sql; maxRows 0 takes the node's default.
func (c *Client) SQL(ctx context.Context, query string, maxRows int) (*SQLResponse, error) {
	var resp SQLResponse
	if err := c.post(ctx, "/v1/sql", SQLRequest{Query: query, MaxRows: maxRows}, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}
