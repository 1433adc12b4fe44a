package clickhouse_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sluicehq/sluice/connectors/clickhouse"
	"github.com/sluicehq/sluice/testkit"
)

// BenchmarkInsert measures Insert of blocks of 64k rows of the test stream
// (11 columns).
func BenchmarkInsert(b *testing.B) {
	c := testkit.StartClickHouse(b).Client(b, "sluice")
	ctx := context.Background()
	if err := c.EnsureTable(ctx, txnSchema()); err != nil {
		b.Fatal(err)
	}
	const n = 64 << 10
	rows := make([]map[string]any, n)
	for i := range rows {
		vals, ts := event(i)
		rows[i] = map[string]any{
			"user_id": vals[0], "amount": vals[1], "qty": vals[2], "is_fraud": vals[3],
			"seen": micros(vals[4]), "ts": time.UnixMicro(ts).UTC(),
			"_event_id": "e" + vals[0].(string), "_event_time": time.UnixMicro(ts).UTC(),
			"_arrival_time": time.UnixMicro(ts).UTC(), "_partition": int32(i % 3), "_offset": int64(i),
		}
	}
	start := time.Now()
	inserted := 0
	for b.Loop() {
		if err := c.Insert(ctx, "transactions", rows); err != nil {
			b.Fatal(err)
		}
		inserted += n
	}
	b.ReportMetric(float64(inserted)/time.Since(start).Seconds(), "rows/s")
}

func micros(v any) any {
	if us, ok := v.(int64); ok {
		return time.UnixMicro(us).UTC()
	}
	return nil
}

// BenchmarkLoader measures the loader end to end: reading 120k rows from
// 40 Parquet files and inserting them, into a new database each time.
func BenchmarkLoader(b *testing.B) {
	ch := testkit.StartClickHouse(b)
	st := newStore(b)
	for range 4 {
		st.commit(txnSchema(), 30_000, event)
	}
	start := time.Now()
	inserted, db := 0, 0
	for b.Loop() {
		db++
		c := ch.Client(b, fmt.Sprintf("bench%d", db))
		n, err := clickhouse.NewLoader(c, st.dir, streamsOf(txnSchema()), clickhouse.LoaderOptions{}).Sync(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		inserted += n
	}
	b.ReportMetric(float64(inserted)/time.Since(start).Seconds(), "rows/s")
}
