package clickhouse_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/connectors/clickhouse"
	"github.com/sluicehq/sluice/featurestore/offline"
	"github.com/sluicehq/sluice/schemas"
)

func syncAll(t *testing.T, l *clickhouse.Loader) int {
	t.Helper()
	n, err := l.Sync(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestLoaderValues checks every value of every column against the Parquet
// files, nulls and timestamps included.
func TestLoaderValues(t *testing.T) {
	c := open(t)
	st := newStore(t)
	schema := txnSchema()
	st.commit(schema, 40, event)
	// An event before the Unix epoch, whose day rounds down.
	st.commit(schema, 1, func(i int) ([]any, int64) {
		ts := time.Date(1969, 12, 31, 23, 59, 59, 999_999_000, time.UTC).UnixMicro()
		return []any{"u-old", 1.5, int64(-3), true, nil, ts}, ts
	})
	l := clickhouse.NewLoader(c, st.dir, streamsOf(schema), clickhouse.LoaderOptions{})
	if n := syncAll(t, l); n != 41 {
		t.Fatalf("first sync inserted %d rows, want 41", n)
	}

	files, err := offline.ReadStream(st.dir, "transactions")
	if err != nil {
		t.Fatal(err)
	}
	micros := !c.Version().DateTime64()
	cols := []string{"user_id", "amount", "qty", "is_fraud", "seen", "ts", "_event_id", "_event_time", "_arrival_time", "_partition", "_offset"}
	want := map[string][]any{}
	for _, r := range files {
		row := make([]any, len(cols))
		for i, col := range cols {
			row[i] = expected(r[col], micros, c.Version().Bool())
		}
		want[r["_event_id"].(string)] = row
	}
	got := map[string][]any{}
	for _, r := range query(t, c, "SELECT user_id, amount, qty, is_fraud, seen, ts, _event_id, _event_time, _arrival_time, _partition, _offset FROM sluice.transactions") {
		got[r[6].(string)] = r
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rows in ClickHouse differ from the Parquet files (-parquet +clickhouse):\n%s", diff)
	}
	// The pre-1970 event is in its own day and did not move others.
	if n := syncAll(t, l); n != 0 {
		t.Errorf("second sync inserted %d rows, want 0", n)
	}
}

// expected returns the value ClickHouse should hold for a Parquet value.
func expected(v any, micros, boolType bool) any {
	switch x := v.(type) {
	case time.Time:
		if micros {
			return x.UnixMicro()
		}
		return x
	case bool:
		if boolType {
			return x
		}
		if x {
			return uint8(1)
		}
		return uint8(0)
	}
	return v
}

// TestLoaderCrash stops the loader half-way through, as a crash would,
// adds files, and starts a new loader: every row ends up in the table exactly
// once, counted without FINAL.
func TestLoaderCrash(t *testing.T) {
	c := open(t)
	st := newStore(t)
	schema := txnSchema()
	for range 10 {
		st.commit(schema, 1500, event) // 10 files per commit: 3 partitions, up to 2 days
	}
	opts := clickhouse.LoaderOptions{BatchRows: 100, Interval: 10 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- clickhouse.NewLoader(c, st.dir, streamsOf(schema), opts).Run(ctx) }()
	var mid uint64
	for mid < 2000 {
		time.Sleep(2 * time.Millisecond)
		res, err := c.Query(context.Background(), "SELECT count() FROM sluice.transactions", clickhouse.QueryOptions{})
		if err == nil {
			mid = res.Rows[0][0].(uint64)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	after := count(t, c, "SELECT count() FROM sluice.transactions")
	if after >= 15000 {
		t.Fatalf("the loader finished (%d rows) before it was stopped; the test stopped nothing", after)
	}
	t.Logf("stopped the loader at %d of 15000 rows", after)

	for range 3 {
		st.commit(schema, 1000, event)
	}
	l := clickhouse.NewLoader(c, st.dir, streamsOf(schema), clickhouse.LoaderOptions{BatchRows: 1000})
	syncAll(t, l)
	if n := syncAll(t, clickhouse.NewLoader(c, st.dir, streamsOf(schema), opts)); n != 0 {
		t.Errorf("a loader started on a complete table inserted %d rows, want 0", n)
	}

	const total = 18000
	if n := count(t, c, "SELECT count() FROM sluice.transactions"); n != total {
		t.Errorf("count() = %d, want %d", n, total)
	}
	if n := count(t, c, "SELECT uniqExact(_event_id) FROM sluice.transactions"); n != total {
		t.Errorf("distinct event ids = %d, want %d", n, total)
	}
	// Every offset of every partition, once: count, min, max and sum.
	got := query(t, c, "SELECT _partition, count(), min(_offset), max(_offset), sum(_offset) FROM sluice.transactions GROUP BY _partition ORDER BY _partition")
	var want [][]any
	for p := range int32(3) {
		n := st.next[p]
		want = append(want, []any{p, uint64(n), int64(0), n - 1, n * (n - 1) / 2})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("offsets per partition (-want +got):\n%s", diff)
	}
}

// TestLoaderSchemaEvolution loads files of two schema versions: the table
// gains the new columns, and older rows read the new fields' defaults.
func TestLoaderSchemaEvolution(t *testing.T) {
	c := open(t)
	st := newStore(t)
	v1 := txnSchema()
	st.commit(v1, 6, event)
	syncAll(t, clickhouse.NewLoader(c, st.dir, streamsOf(v1), clickhouse.LoaderOptions{}))

	v2 := txnSchema()
	v2.Version = 2
	v2.Fields = append(v2.Fields,
		schemas.Field{Name: "country", Type: schemas.String, Nullable: true},
		schemas.Field{Name: "channel", Type: schemas.String, Default: "web"})
	st.commit(v2, 6, func(i int) ([]any, int64) {
		vals, ts := event(i)
		return append(vals, "DE", "app"), ts
	})
	if n := syncAll(t, clickhouse.NewLoader(c, st.dir, streamsOf(v2), clickhouse.LoaderOptions{})); n != 6 {
		t.Errorf("loaded %d rows of version 2, want 6", n)
	}
	got := query(t, c, "SELECT _event_id, country, channel FROM sluice.transactions ORDER BY _event_id")
	var want [][]any
	for i := range 12 {
		if i < 6 {
			want = append(want, []any{fmt.Sprintf("e%06d", i), nil, "web"})
		} else {
			want = append(want, []any{fmt.Sprintf("e%06d", i), "DE", "app"})
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
}

// TestLoaderAcrossCompaction loads part of a day, lets the offline store
// compact it (merged files span loaded and unloaded rows), and loads the
// rest: every row once.
func TestLoaderAcrossCompaction(t *testing.T) {
	c := open(t)
	st := newStore(t)
	schema := txnSchema()
	for range 3 {
		st.commit(schema, 300, event)
	}
	l := clickhouse.NewLoader(c, st.dir, streamsOf(schema), clickhouse.LoaderOptions{})
	if n := syncAll(t, l); n != 900 {
		t.Fatalf("loaded %d rows, want 900", n)
	}
	for range 2 {
		st.commit(schema, 300, event)
	}
	before, _ := offline.Files(st.dir, "transactions")
	stats, err := st.sink.CompactClosedDays(context.Background(), day0.Add(72*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	after, _ := offline.Files(st.dir, "transactions")
	if stats.Files == 0 || len(after) >= len(before) {
		t.Fatalf("compaction merged nothing: %+v, %d files before, %d after", stats, len(before), len(after))
	}
	if n := syncAll(t, l); n != 600 {
		t.Errorf("after compaction loaded %d rows, want 600", n)
	}
	if n := syncAll(t, clickhouse.NewLoader(c, st.dir, streamsOf(schema), clickhouse.LoaderOptions{})); n != 0 {
		t.Errorf("a new loader loaded %d rows of compacted files, want 0", n)
	}
	if n := count(t, c, "SELECT count() FROM sluice.transactions"); n != 1500 {
		t.Errorf("count() = %d, want 1500", n)
	}
	if n := count(t, c, "SELECT uniqExact(_event_id) FROM sluice.transactions"); n != 1500 {
		t.Errorf("distinct event ids = %d, want 1500", n)
	}
}
