package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// DefaultDatabase is the database Sluice's tables live in unless configured
// otherwise.
const DefaultDatabase = "sluice"

// ErrUnavailable is wrapped by errors that mean ClickHouse could not be asked:
// it is down, unreachable, or not connected yet.
var ErrUnavailable = errors.New("clickhouse unavailable")

// QueryError is ClickHouse's refusal of a query: a syntax error, an unknown
// table, a write in a read-only query, ... Code is ClickHouse's error code.
type QueryError struct {
	Code    int32
	Message string
}

func (e *QueryError) Error() string {
	return fmt.Sprintf("clickhouse: %s (code %d)", e.Message, e.Code)
}

// Client talks to one ClickHouse server over its native protocol and keeps
// the tables of Sluice's streams in one database.
type Client struct {
	conn     driver.Conn
	addr     string
	database string
	version  Version
	log      *slog.Logger

	mu     sync.Mutex
	tables map[string]*table // by stream
}

// Open connects to the ClickHouse server at addr (host:port of its native
// protocol, 9000 by default), detects its version and creates database if it
// is missing. An empty database means DefaultDatabase.
func Open(ctx context.Context, addr, database string, logger *slog.Logger) (*Client, error) {
	if database == "" {
		database = DefaultDatabase
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	conn, err := ch.Open(&ch.Options{
		Addr:            []string{addr},
		Auth:            ch.Auth{Database: "default"},
		DialTimeout:     5 * time.Second,
		MaxOpenConns:    8,
		MaxIdleConns:    4,
		ConnMaxLifetime: time.Hour,
	})
	if err != nil {
		return nil, fmt.Errorf("clickhouse at %s: %w", addr, err)
	}
	c := &Client{
		conn: conn, addr: addr, database: database,
		log:    logger.With("component", "clickhouse"),
		tables: map[string]*table{},
	}
	var raw string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&raw); err != nil {
		conn.Close()
		return nil, c.wrap(ctx, "detect version", err)
	}
	if c.version, err = ParseVersion(raw); err != nil {
		conn.Close()
		return nil, err
	}
	if err := c.exec(ctx, "CREATE DATABASE IF NOT EXISTS "+quote(database)); err != nil {
		conn.Close()
		return nil, fmt.Errorf("create database %s: %w", database, err)
	}
	c.log.Info("connected to clickhouse", "addr", addr, "version", raw, "database", database,
		"timestamps", c.timeType(!c.version.DateTime64()))
	return c, nil
}

// Close closes the client's connections.
func (c *Client) Close() error { return c.conn.Close() }

// Version returns the server's version.
func (c *Client) Version() Version { return c.version }

// Addr returns the server's native address.
func (c *Client) Addr() string { return c.addr }

// Database returns the database of Sluice's tables.
func (c *Client) Database() string { return c.database }

func (c *Client) exec(ctx context.Context, query string) error {
	if err := c.conn.Exec(ctx, query); err != nil {
		return c.wrap(ctx, "", err)
	}
	return nil
}

// wrap turns a driver error into a *QueryError when ClickHouse answered, and
// into one wrapping ErrUnavailable when it could not be asked. An error of
// ctx itself is returned as it is.
func (c *Client) wrap(ctx context.Context, what string, err error) error {
	if err == nil {
		return nil
	}
	if what != "" {
		what += ": "
	}
	var ex *ch.Exception
	switch {
	case errors.As(err, &ex):
		qe := &QueryError{Code: ex.Code, Message: strings.TrimSpace(ex.Message)}
		if what == "" {
			return qe
		}
		return fmt.Errorf("%s%w", what, qe)
	case ctx.Err() != nil:
		return err
	case unreachable(err):
		return fmt.Errorf("%sclickhouse at %s: %w: %w", what, c.addr, ErrUnavailable, err)
	}
	return fmt.Errorf("%sclickhouse at %s: %w", what, c.addr, err)
}

// unreachable reports whether a driver error means the server could not be
// reached or went away.
func unreachable(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ch.ErrAcquireConnTimeout)
}

// Column is one column of a query's result.
type Column struct {
	Name string
	Type string // as ClickHouse names it, for example Nullable(Int64)
}

// Result is what a query returned.
type Result struct {
	Columns []Column
	// Rows hold one value per column: nil for NULL, else the driver's Go
	// value (string, integers of the column's width, float32/64, bool,
	// time.Time, slices for arrays, maps, ...).
	Rows [][]any
	// Truncated says the query returned more than the rows asked for.
	Truncated bool
}

// QueryOptions bound a query.
type QueryOptions struct {
	MaxRows int           // most rows returned; more set Result.Truncated (0: 10,000)
	Timeout time.Duration // ClickHouse's max_execution_time (0: 60s)
}

// Query runs query read-only (ClickHouse's readonly=2: SELECT, SHOW,
// DESCRIBE, EXISTS and settings, but no writes or DDL), so the tables Sluice
// fills stay exactly as it wrote them.
func (c *Client) Query(ctx context.Context, query string, opts QueryOptions) (*Result, error) {
	if opts.MaxRows <= 0 {
		opts.MaxRows = 10_000
	}
	if opts.Timeout <= 0 {
		opts.Timeout = time.Minute
	}
	// Settings of type string cannot be sent to servers before 19.x, so
	// the row limit is kept here: the query is cancelled past it.
	ctx, cancel := context.WithCancel(ch.Context(ctx, ch.WithSettings(ch.Settings{
		"readonly":           2,
		"max_execution_time": int(max(opts.Timeout.Seconds(), 1)),
	})))
	defer cancel()
	rows, err := c.conn.Query(ctx, query)
	if err != nil {
		return nil, c.resultError(ctx, err)
	}
	defer rows.Close()
	types := rows.ColumnTypes()
	res := &Result{Columns: make([]Column, len(types)), Rows: [][]any{}}
	dest := make([]any, len(types))
	for i, t := range types {
		res.Columns[i] = Column{Name: t.Name(), Type: t.DatabaseTypeName()}
		dest[i] = reflect.New(t.ScanType()).Interface()
	}
	for rows.Next() {
		if len(res.Rows) == opts.MaxRows {
			res.Truncated = true
			cancel()
			return res, nil
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("read result: %w", err)
		}
		row := make([]any, len(dest))
		for i, d := range dest {
			row[i] = deref(reflect.ValueOf(d).Elem())
		}
		res.Rows = append(res.Rows, row)
	}
	if err := rows.Err(); err != nil {
		return nil, c.resultError(ctx, err)
	}
	return res, nil
}

// resultError is wrap for a query's answer: a column type the driver cannot
// read is the query's problem, with a way around it.
func (c *Client) resultError(ctx context.Context, err error) error {
	err = c.wrap(ctx, "", err)
	var qe *QueryError
	if !errors.As(err, &qe) && !errors.Is(err, ErrUnavailable) && strings.Contains(err.Error(), "unsupported column type") {
		return &QueryError{Message: err.Error() + " (convert such a column, for example with toString, to read it)"}
	}
	return err
}

// deref follows pointers (how the driver scans Nullable columns) to the value.
func deref(v reflect.Value) any {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	return v.Interface()
}

// quote quotes an identifier for ClickHouse.
func quote(name string) string {
	return "`" + strings.NewReplacer(`\`, `\\`, "`", "\\`").Replace(name) + "`"
}

// quoteString quotes a string literal for ClickHouse.
func quoteString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
