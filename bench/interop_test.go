package bench

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	_ "github.com/marcboeker/go-duckdb" // registers the "duckdb" driver

	"github.com/sluicehq/sluice/featurestore/offline"
	"github.com/sluicehq/sluice/testkit"
)

// The store the interop test builds: events of the fraud example's
// transactions stream, two seconds apart from 20:00 UTC, so they span
// three dates; four partitions; a flush every 2,500 events, so each date
// holds several files per partition until the first date is compacted.
const (
	interopEvents     = 50_000
	interopPartitions = 4
	interopFlushEvery = 2_500
	interopRowGroup   = 1_024
)

var interopStart = time.Date(2026, 3, 1, 20, 0, 0, 0, time.UTC)

// written is one event as the test gave it to the sink.
type written struct {
	TxnID, UserID, MerchantID string
	Amount                    float64
	Country                   *string
	IsFraud                   *bool
	TS                        time.Time
	EventID                   string
	EventTime, Arrival        time.Time
	Partition                 int32
	Offset                    int64
	Date                      string
}

// buildStore writes the events to an offline store under dir with the
// offline sink and returns them by event id.
func buildStore(t *testing.T, dir string) map[string]written {
	t.Helper()
	sink, err := offline.Open(dir, offline.Options{RowGroupRows: interopRowGroup})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	schema := testkit.FraudSchema()
	gen := testkit.NewFraudGen(7, 2_000, 300)
	want := map[string]written{}
	next := make([]int64, interopPartitions)
	for i := range interopEvents {
		ev := gen.Next(interopStart.Add(time.Duration(i) * 2 * time.Second))
		ts := ev["ts"].(time.Time)
		p := int32(i % interopPartitions)
		w := written{
			TxnID: ev["txn_id"].(string), UserID: ev["user_id"].(string), MerchantID: ev["merchant_id"].(string),
			Amount: ev["amount"].(float64), TS: ts,
			EventID: ev["txn_id"].(string), EventTime: ts, Arrival: ts.Add(1500 * time.Microsecond),
			Partition: p, Offset: next[p], Date: ts.Format(time.DateOnly),
		}
		if c, ok := ev["country"].(string); ok {
			w.Country = &c
		}
		if f, ok := ev["is_fraud"].(bool); ok {
			w.IsFraud = &f
		}
		next[p]++
		want[w.EventID] = w
		values := []any{w.TxnID, w.UserID, w.MerchantID, w.Amount, ev["country"], ev["is_fraud"], ts.UnixMicro()}
		sink.Add(schema, offline.Row{
			Values: values, Key: w.UserID, EventID: w.EventID,
			EventTime: ts.UnixMicro(), Arrival: w.Arrival.UnixMicro(), Partition: p, Offset: w.Offset,
		})
		if (i+1)%interopFlushEvery == 0 {
			if err := sink.Flush(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := sink.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Compact the first date only: DuckDB reads compacted and flushed files
	// side by side.
	stats, err := sink.Compact(t.Context(), "transactions", interopStart)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Files == 0 {
		t.Fatal("compaction of the first date merged no files")
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	return want
}

func openDuckDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	// One connection: settings and the in-memory database belong to it.
	db.SetMaxOpenConns(1)
	return db
}

// TestDuckDBReadsOfflineStore checks that DuckDB reads the offline store's
// Parquet files, Hive partitions included, with the types, nulls and values
// the sink was given.
func TestDuckDBReadsOfflineStore(t *testing.T) {
	dir := t.TempDir()
	want := buildStore(t, dir)
	db := openDuckDB(t)
	glob := filepath.ToSlash(filepath.Join(dir, "streams", "transactions", "*", "*.parquet"))
	scan := fmt.Sprintf("read_parquet('%s', hive_partitioning = true)", glob)

	t.Run("count", func(t *testing.T) {
		var n int64
		if err := db.QueryRow("SELECT count(*) FROM " + scan).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != interopEvents {
			t.Errorf("count(*) = %d, want %d", n, interopEvents)
		}
	})
	t.Run("types", func(t *testing.T) { checkTypes(t, db, scan) })
	t.Run("nulls", func(t *testing.T) { checkNulls(t, db, scan, want) })
	t.Run("values", func(t *testing.T) { checkValues(t, db, scan, want) })
	t.Run("sorted", func(t *testing.T) { checkSorted(t, db, glob) })
	t.Run("metadata", func(t *testing.T) { checkMetadata(t, db, glob) })
	t.Run("pruning", func(t *testing.T) { checkPruning(t, db, dir, scan, want) })
}

func checkTypes(t *testing.T, db *sql.DB, scan string) {
	rows, err := db.Query("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM " + scan + ")")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			t.Fatal(err)
		}
		got = append(got, name+" "+typ)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	// Timestamps are INT64 TIMESTAMP(MICROS, UTC), which DuckDB reads as
	// TIMESTAMP WITH TIME ZONE; the Hive column date reads as DATE.
	want := []string{
		"txn_id VARCHAR", "user_id VARCHAR", "merchant_id VARCHAR", "amount DOUBLE",
		"country VARCHAR", "is_fraud BOOLEAN", "ts TIMESTAMP WITH TIME ZONE",
		"_event_id VARCHAR", "_event_time TIMESTAMP WITH TIME ZONE", "_arrival_time TIMESTAMP WITH TIME ZONE",
		"_partition INTEGER", "_offset BIGINT", "date DATE",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("columns as DuckDB types them (-want +got):\n%s", diff)
	}
}

func checkNulls(t *testing.T, db *sql.DB, scan string, want map[string]written) {
	var wantCountry, wantFraud int64
	for _, w := range want {
		if w.Country == nil {
			wantCountry++
		}
		if w.IsFraud == nil {
			wantFraud++
		}
	}
	var country, fraud, others int64
	err := db.QueryRow(`SELECT count(*) FILTER (WHERE country IS NULL), count(*) FILTER (WHERE is_fraud IS NULL),
		count(*) FILTER (WHERE txn_id IS NULL OR user_id IS NULL OR merchant_id IS NULL OR amount IS NULL OR ts IS NULL
			OR _event_id IS NULL OR _event_time IS NULL OR _arrival_time IS NULL OR _partition IS NULL
			OR _offset IS NULL OR date IS NULL)
		FROM `+scan).Scan(&country, &fraud, &others)
	if err != nil {
		t.Fatal(err)
	}
	if wantCountry == 0 || wantFraud == 0 {
		t.Fatalf("the generator made no null country (%d) or is_fraud (%d): the test checks nothing", wantCountry, wantFraud)
	}
	got := [3]int64{country, fraud, others}
	if w := [3]int64{wantCountry, wantFraud, 0}; got != w {
		t.Errorf("nulls in country, is_fraud and the other columns = %v, want %v", got, w)
	}
}

// checkValues reads every row back and compares it with what was written.
func checkValues(t *testing.T, db *sql.DB, scan string, want map[string]written) {
	rows, err := db.Query(`SELECT txn_id, user_id, merchant_id, amount, country, is_fraud, ts,
		_event_id, _event_time, _arrival_time, _partition, _offset, strftime(date, '%Y-%m-%d') FROM ` + scan)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]written{}
	for rows.Next() {
		var w written
		var country sql.NullString
		var fraud sql.NullBool
		err := rows.Scan(&w.TxnID, &w.UserID, &w.MerchantID, &w.Amount, &country, &fraud, &w.TS,
			&w.EventID, &w.EventTime, &w.Arrival, &w.Partition, &w.Offset, &w.Date)
		if err != nil {
			t.Fatal(err)
		}
		if country.Valid {
			w.Country = &country.String
		}
		if fraud.Valid {
			w.IsFraud = &fraud.Bool
		}
		w.TS, w.EventTime, w.Arrival = w.TS.UTC(), w.EventTime.UTC(), w.Arrival.UTC()
		if _, dup := got[w.EventID]; dup {
			t.Errorf("event %s read twice", w.EventID)
		}
		got[w.EventID] = w
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rows as DuckDB reads them (-written +read):\n%s", diff)
	}
}

// checkSorted checks, through DuckDB, that each file's rows are sorted by
// entity key, event time and offset.
func checkSorted(t *testing.T, db *sql.DB, glob string) {
	var files, unsorted int64
	err := db.QueryRow(fmt.Sprintf(`
		WITH r AS (
			SELECT filename, user_id, _event_time, _offset,
				lag(user_id) OVER w AS pu, lag(_event_time) OVER w AS pt, lag(_offset) OVER w AS po
			FROM read_parquet('%s', filename = true, file_row_number = true)
			WINDOW w AS (PARTITION BY filename ORDER BY file_row_number))
		SELECT count(DISTINCT filename),
			count(*) FILTER (WHERE pu IS NOT NULL AND (pu, pt, po) > (user_id, _event_time, _offset))
		FROM r`, glob)).Scan(&files, &unsorted)
	if err != nil {
		t.Fatal(err)
	}
	if files < 2 || unsorted != 0 {
		t.Errorf("%d rows out of order in %d files, want 0 in several", unsorted, files)
	}
}

// checkMetadata checks, through DuckDB's view of the footers, that every
// column chunk is zstd-compressed and has min/max statistics, and that row
// groups are bounded.
func checkMetadata(t *testing.T, db *sql.DB, glob string) {
	var chunks, noStats, notZstd, bigGroups, groups int64
	err := db.QueryRow(fmt.Sprintf(`
		SELECT count(*),
			count(*) FILTER (WHERE stats_min_value IS NULL OR stats_max_value IS NULL),
			count(*) FILTER (WHERE compression <> 'ZSTD'),
			count(*) FILTER (WHERE row_group_num_rows > %d),
			count(DISTINCT (file_name, row_group_id))
		FROM parquet_metadata('%s')`, interopRowGroup, glob)).Scan(&chunks, &noStats, &notZstd, &bigGroups, &groups)
	if err != nil {
		t.Fatal(err)
	}
	if chunks == 0 || noStats != 0 || notZstd != 0 || bigGroups != 0 {
		t.Errorf("of %d column chunks in %d row groups: %d lack min/max, %d are not ZSTD, %d in groups over %d rows",
			chunks, groups, noStats, notZstd, bigGroups, interopRowGroup)
	}
	var compacted int64
	err = db.QueryRow(fmt.Sprintf(`SELECT count(DISTINCT file_name) FROM parquet_metadata('%s')
		WHERE file_name LIKE '%%date=2026-03-01%%'`, glob)).Scan(&compacted)
	if err != nil {
		t.Fatal(err)
	}
	if compacted != interopPartitions {
		t.Errorf("the compacted date has %d files, want one per partition (%d)", compacted, interopPartitions)
	}
}

// checkPruning checks that DuckDB skips the files of other dates when a
// query filters on the Hive column, that a filter on a column reaches the
// Parquet scan (where min/max statistics let DuckDB skip row groups), and
// that the filtered answers are right.
func checkPruning(t *testing.T, db *sql.DB, dir, scan string, want map[string]written) {
	all, err := filepath.Glob(filepath.Join(dir, "streams", "transactions", "*", "*.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	filesOf := func(date string) int {
		n := 0
		for _, f := range all {
			if filepath.Base(filepath.Dir(f)) == "date="+date {
				n++
			}
		}
		return n
	}
	var wantDay, wantUser int64
	for _, w := range want {
		if w.Date == "2026-03-02" {
			wantDay++
		}
		if w.UserID == "u00001" && w.Date == "2026-03-01" {
			wantUser++
		}
	}
	queries := []struct {
		name, where string
		want        int64
		files       int    // files DuckDB scans
		pushed      string // the filter the scan applies, if any
	}{
		{"date", "date = DATE '2026-03-02'", wantDay, filesOf("2026-03-02"), ""},
		{"key", "date = DATE '2026-03-01' AND user_id = 'u00001'", wantUser, filesOf("2026-03-01"), "user_id='u00001'"},
	}
	for _, q := range queries {
		var n int64
		if err := db.QueryRow("SELECT count(*) FROM " + scan + " WHERE " + q.where).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != q.want || n == 0 {
			t.Errorf("%s: count(*) WHERE %s = %d, want %d", q.name, q.where, n, q.want)
		}
		plan := explain(t, db, "SELECT count(*) FROM "+scan+" WHERE "+q.where)
		scanning := fmt.Sprintf("Scanning Files: %d/%d", q.files, len(all))
		if q.files >= len(all) || !strings.Contains(plan, scanning) {
			t.Errorf("%s: the plan does not say %q:\n%s", q.name, scanning, plan)
		}
		if q.pushed != "" && !strings.Contains(plan, q.pushed) {
			t.Errorf("%s: the filter %s did not reach the Parquet scan:\n%s", q.name, q.pushed, plan)
		}
	}
}

func explain(t *testing.T, db *sql.DB, query string) string {
	rows, err := db.Query("EXPLAIN " + query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var key, value string
		if err := rows.Scan(&key, &value); err != nil {
			t.Fatal(err)
		}
		out = append(out, value)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(out, "\n")
}
