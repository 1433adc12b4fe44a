package clickhouse_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluicehq/sluice/connectors/clickhouse"
	"github.com/sluicehq/sluice/featurestore/offline"
	"github.com/sluicehq/sluice/schemas"
	"github.com/sluicehq/sluice/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// txnSchema is the test stream's first version.
func txnSchema() *schemas.Schema {
	return &schemas.Schema{
		Stream:  "transactions",
		Version: 1,
		Fields: []schemas.Field{
			{Name: "user_id", Type: schemas.String},
			{Name: "amount", Type: schemas.Float64},
			{Name: "qty", Type: schemas.Int64},
			{Name: "is_fraud", Type: schemas.Bool, Nullable: true},
			{Name: "seen", Type: schemas.Timestamp, Nullable: true},
			{Name: "ts", Type: schemas.Timestamp},
		},
		TimeField: "ts",
		KeyFields: []string{"user_id"},
	}
}

// day0 is the first event time of generated events: four hours before a
// month ends, so the events span two months.
var day0 = time.Date(2026, 1, 31, 20, 0, 0, 0, time.UTC)

// event is one generated event: its field values for txnSchema and time.
func event(i int) ([]any, int64) {
	ts := day0.Add(time.Duration(i) * 10 * time.Second).UnixMicro()
	var fraud, seen any
	if i%5 != 0 {
		fraud = i%2 == 0
	}
	if i%7 != 0 {
		seen = ts - 1000
	}
	return []any{fmt.Sprintf("u%03d", i%50), float64(i) / 4, int64(i), fraud, seen, ts}, ts
}

// store is an offline store that tests write events to, one commit (and so
// one file per partition and day) at a time.
type store struct {
	t    testing.TB
	dir  string
	sink *offline.Sink
	next map[int32]int64 // next offset per partition
	n    int             // events written
}

func newStore(t testing.TB) *store {
	t.Helper()
	dir := t.TempDir()
	sink, err := offline.Open(dir, offline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	return &store{t: t, dir: dir, sink: sink, next: map[int32]int64{}}
}

// commit writes n events over partitions 0-2, built by values, and
// flushes them.
func (s *store) commit(schema *schemas.Schema, n int, values func(i int) ([]any, int64)) {
	s.t.Helper()
	for range n {
		i := s.n
		s.n++
		p := int32(i % 3)
		vals, ts := values(i)
		row := offline.Row{
			Values: vals, Key: vals[0].(string), EventID: fmt.Sprintf("e%06d", i),
			EventTime: ts, Arrival: ts + 5_000_000, Partition: p, Offset: s.next[p],
		}
		s.next[p]++
		if !s.sink.Add(schema, row) {
			s.t.Fatalf("event %d dropped as a duplicate", i)
		}
	}
	if err := s.sink.Flush(context.Background()); err != nil {
		s.t.Fatal(err)
	}
}

// query runs a query and returns its rows.
func query(t *testing.T, c *clickhouse.Client, q string) [][]any {
	t.Helper()
	res, err := c.Query(context.Background(), q, clickhouse.QueryOptions{MaxRows: 1 << 20})
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return res.Rows
}

// count runs a query of one UInt64 value.
func count(t *testing.T, c *clickhouse.Client, q string) uint64 {
	t.Helper()
	rows := query(t, c, q)
	if len(rows) != 1 || len(rows[0]) != 1 {
		t.Fatalf("%s: got %v, want one value", q, rows)
	}
	n, ok := rows[0][0].(uint64)
	if !ok {
		t.Fatalf("%s: got %T, want uint64", q, rows[0][0])
	}
	return n
}

// open starts a server and opens a client on database sluice.
func open(t *testing.T) *clickhouse.Client {
	t.Helper()
	return testkit.StartClickHouse(t).Client(t, "sluice")
}

func streamsOf(s ...*schemas.Schema) func() []*schemas.Schema {
	return func() []*schemas.Schema { return s }
}
