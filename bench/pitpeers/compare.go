package pitpeers

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// sluiceTable holds Sluice's training set, loaded once for the checks.
const sluiceTable = "sluice_dataset"

// RelTolerance is how far a peer's sum or mean may be from Sluice's,
// relative to the larger of the two: Sluice rounds its sums exactly, a
// peer's may differ in the last bits. Every other value must be equal.
const RelTolerance = 1e-9

// maxShown is how many mismatches a Check keeps to show.
const maxShown = 10

// Check is how one peer's values compare with Sluice's training set.
type Check struct {
	Peer       string
	Columns    []string // the feature columns compared
	Rows       int64    // spine rows in both the training set and the peer's result
	OnlySluice int64    // rows of the training set the peer has not
	OnlyPeer   int64    // rows of the peer's result the training set has not
	Mismatches int64    // values that differ beyond the rule of their column
	First      []Mismatch
}

// Values is the number of values compared.
func (c Check) Values() int64 { return c.Rows * int64(len(c.Columns)) }

// OK reports whether the peer agrees with Sluice on every row and value.
func (c Check) OK() bool { return c.Mismatches == 0 && c.OnlySluice == 0 && c.OnlyPeer == 0 }

// Mismatch is one value a peer computes differently; a null is !Valid.
type Mismatch struct {
	Row          int64
	Column       string
	Sluice, Peer sql.NullFloat64
}

func (m Mismatch) String() string {
	return fmt.Sprintf("row %d, %s: sluice %s, peer %s", m.Row, m.Column, show(m.Sluice), show(m.Peer))
}

func show(v sql.NullFloat64) string {
	if !v.Valid {
		return "null"
	}
	return strconv.FormatFloat(v.Float64, 'g', -1, 64)
}

// loadDataset copies the row and feature columns of Sluice's training set
// into a table and checks that each spine row appears once.
func loadDataset(ctx context.Context, db *sql.DB, s *Spec) (int64, error) {
	cols := []string{`"row"`}
	for _, f := range s.Features {
		cols = append(cols, ident(f.Column))
	}
	q := fmt.Sprintf("CREATE OR REPLACE TABLE %s AS SELECT %s FROM read_parquet(%s)",
		sluiceTable, strings.Join(cols, ", "), literal(datasetGlob(s)))
	if _, err := db.ExecContext(ctx, q); err != nil {
		return 0, fmt.Errorf("read Sluice's training set %s: %w", datasetGlob(s), err)
	}
	var rows, distinct int64
	q = fmt.Sprintf(`SELECT count(*), count(DISTINCT "row") FROM %s`, sluiceTable)
	if err := db.QueryRowContext(ctx, q).Scan(&rows, &distinct); err != nil {
		return 0, fmt.Errorf("count the training set's rows: %w", err)
	}
	if rows != distinct {
		return 0, fmt.Errorf("training set %s: %d rows but %d distinct values of column row", s.Dataset, rows, distinct)
	}
	return rows, nil
}

// agrees is a SQL condition, true when Sluice's value d.c and the peer's
// p.c of feature f agree.
func agrees(f Feature) string {
	d, p := "d."+ident(f.Column), "p."+ident(f.Column)
	switch f.Agg {
	case AggSum, AggMean:
		return fmt.Sprintf("coalesce((%[1]s IS NULL AND %[2]s IS NULL) OR abs(%[1]s::DOUBLE - %[2]s::DOUBLE) <= %[3]g * greatest(abs(%[1]s::DOUBLE), abs(%[2]s::DOUBLE)), false)",
			d, p, RelTolerance)
	}
	return fmt.Sprintf("%s IS NOT DISTINCT FROM %s", d, p)
}

// compare checks the peer's table against the training set, column by
// column, for features feats.
func compare(ctx context.Context, db *sql.DB, peer, table string, feats []Feature) (Check, error) {
	c := Check{Peer: peer}
	q := fmt.Sprintf(`SELECT count(*) FILTER (WHERE p."row" IS NULL), count(*) FILTER (WHERE d."row" IS NULL)
FROM %s d FULL OUTER JOIN %s p ON d."row" = p."row"`, sluiceTable, table)
	if err := db.QueryRowContext(ctx, q).Scan(&c.OnlySluice, &c.OnlyPeer); err != nil {
		return c, fmt.Errorf("%s: match rows: %w", peer, err)
	}
	counts := []string{"count(*)"}
	for _, f := range feats {
		counts = append(counts, fmt.Sprintf("count(*) FILTER (WHERE NOT (%s))", agrees(f)))
		c.Columns = append(c.Columns, f.Column)
	}
	q = fmt.Sprintf(`SELECT %s FROM %s d JOIN %s p ON d."row" = p."row"`, strings.Join(counts, ", "), sluiceTable, table)
	bad := make([]int64, len(feats))
	dest := []any{&c.Rows}
	for i := range bad {
		dest = append(dest, &bad[i])
	}
	if err := db.QueryRowContext(ctx, q).Scan(dest...); err != nil {
		return c, fmt.Errorf("%s: compare values: %w", peer, err)
	}
	for i, f := range feats {
		c.Mismatches += bad[i]
		if bad[i] == 0 || len(c.First) >= maxShown {
			continue
		}
		first, err := firstMismatches(ctx, db, table, f, maxShown-len(c.First))
		if err != nil {
			return c, fmt.Errorf("%s: %w", peer, err)
		}
		c.First = append(c.First, first...)
	}
	return c, nil
}

// firstMismatches returns up to n rows where the peer's value of f
// disagrees with Sluice's, in row order.
func firstMismatches(ctx context.Context, db *sql.DB, table string, f Feature, n int) ([]Mismatch, error) {
	col := ident(f.Column)
	q := fmt.Sprintf(`SELECT d."row", d.%[1]s::DOUBLE, p.%[1]s::DOUBLE FROM %[2]s d JOIN %[3]s p ON d."row" = p."row"
WHERE NOT (%[4]s) ORDER BY d."row" LIMIT %[5]d`, col, sluiceTable, table, agrees(f), n)
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("list mismatches of %s: %w", f.Column, err)
	}
	defer rows.Close()
	var out []Mismatch
	for rows.Next() {
		m := Mismatch{Column: f.Column}
		if err := rows.Scan(&m.Row, &m.Sluice, &m.Peer); err != nil {
			return nil, fmt.Errorf("list mismatches of %s: %w", f.Column, err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}
