package pitpeers

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	_ "github.com/marcboeker/go-duckdb" // registers the "duckdb" driver
)

// The tables the DuckDB peers materialize, one row per spine row: "row",
// then the peer's feature columns.
const (
	asofTable   = "peer_duckdb_asof"
	windowTable = "peer_duckdb_window"
)

// openDuckDB opens an in-memory DuckDB with its default settings (threads
// included) on a single connection, so tables and settings persist from
// one statement to the next.
func openDuckDB(ctx context.Context) (*sql.DB, error) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, fmt.Errorf("open duckdb: %w", err)
	}
	db.SetMaxOpenConns(1)
	// The machines that run the benchmark reach no extension repository.
	if _, err := db.ExecContext(ctx, "SET autoinstall_known_extensions = false"); err != nil {
		db.Close()
		return nil, fmt.Errorf("configure duckdb: %w", err)
	}
	return db, nil
}

// timedExec runs one statement and returns its wall time.
func timedExec(ctx context.Context, db *sql.DB, query string) (time.Duration, error) {
	start := time.Now()
	if _, err := db.ExecContext(ctx, query); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// asofSQL is the DuckDB peer of the last-value features: one ASOF LEFT
// JOIN of the spine against the events, straight from the Parquet files,
// materialized as a table. The inequality is strict, as the time rule
// wants; ties on event time go to the higher offset because the ASOF key
// is the pair (event time, offset), which a spine row meets as
// (timestamp, -1): (t, -1) > (ts, offset) holds exactly when ts < t, and
// the greatest such pair is the latest event, the highest offset among
// equal times.
func asofSQL(s *Spec, last []Feature) string {
	cols := make([]string, len(last))
	for i, f := range last {
		cols[i] = "e." + ident(f.Field) + " AS " + ident(f.Column)
	}
	events := append([]string{"user_id", "_event_time", "_offset"}, fields(last)...)
	return fmt.Sprintf(`CREATE OR REPLACE TABLE %s AS
SELECT s."row", %s
FROM (SELECT "row", user_id, "timestamp" FROM read_parquet(%s)) s
ASOF LEFT JOIN (SELECT %s FROM read_parquet(%s)) e
  ON s.user_id = e.user_id AND (s."timestamp", -1) > (e._event_time, e._offset)`,
		asofTable, strings.Join(cols, ", "), literal(s.Spine), strings.Join(events, ", "), literal(s.Events))
}

// windowSQL is the DuckDB peer of the windowed features: a range join of
// each spine row with its user's events since the earliest window start
// any feature needs, then one GROUP BY with one filtered aggregate per
// feature. A window's start is floor(t - w, h) in µs since the epoch;
// the LEFT JOIN keeps rows whose windows are all empty, where count and
// sum give 0 and mean, min and max NULL.
func windowSQL(s *Spec, windowed []Feature) string {
	type bound struct{ w, h int64 }
	var bounds []bound
	index := func(f Feature) int {
		b := bound{f.WindowUS, f.HopUS}
		i := slices.Index(bounds, b)
		if i < 0 {
			i = len(bounds)
			bounds = append(bounds, b)
		}
		return i
	}
	aggs := make([]string, len(windowed))
	for i, f := range windowed {
		in := fmt.Sprintf("e._ts >= s.lo%d", index(f))
		x := "e." + ident(f.Field)
		var agg string
		switch f.Agg {
		case AggCount:
			agg = fmt.Sprintf("count(e._ts) FILTER (WHERE %s)", in)
		case AggSum:
			agg = fmt.Sprintf("coalesce(sum(%s) FILTER (WHERE %s), 0)", x, in)
		case AggMean:
			agg = fmt.Sprintf("avg(%s) FILTER (WHERE %s)", x, in)
		case AggMin, AggMax:
			agg = fmt.Sprintf("%s(%s) FILTER (WHERE %s)", f.Agg, x, in)
		}
		aggs[i] = agg + " AS " + ident(f.Column)
	}
	los := make([]string, len(bounds))
	names := make([]string, len(bounds))
	for i, b := range bounds {
		// floor(a, h) for any sign of a: a minus its non-negative remainder.
		a := fmt.Sprintf("(t - %d)", b.w)
		los[i] = fmt.Sprintf("%s - ((%s %% %d) + %d) %% %d AS lo%d", a, a, b.h, b.h, b.h, i)
		names[i] = fmt.Sprintf("s.lo%d", i)
	}
	earliest := names[0]
	if len(names) > 1 {
		earliest = "least(" + strings.Join(names, ", ") + ")"
	}
	events := append([]string{"user_id", "epoch_us(_event_time) AS _ts"}, fields(windowed)...)
	return fmt.Sprintf(`CREATE OR REPLACE TABLE %s AS
WITH s AS (
  SELECT "row", user_id, t, %s
  FROM (SELECT "row", user_id, epoch_us("timestamp") AS t FROM read_parquet(%s))
), e AS (
  SELECT %s FROM read_parquet(%s)
)
SELECT s."row",
  %s
FROM s LEFT JOIN e ON e.user_id = s.user_id AND e._ts < s.t AND e._ts >= %s
GROUP BY s."row"`,
		windowTable, strings.Join(los, ", "), literal(s.Spine), strings.Join(events, ", "), literal(s.Events),
		strings.Join(aggs, ",\n  "), earliest)
}

// fields returns the distinct fields the features read, quoted.
func fields(fs []Feature) []string {
	var out []string
	for _, f := range fs {
		if f.Field != "" && !slices.Contains(out, ident(f.Field)) {
			out = append(out, ident(f.Field))
		}
	}
	return out
}

// datasetGlob is the Parquet glob of Sluice's training set.
func datasetGlob(s *Spec) string { return filepath.Join(s.Dataset, "part-*.parquet") }

// ident quotes a SQL identifier.
func ident(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

// literal quotes a SQL string literal.
func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
