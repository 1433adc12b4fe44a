package clickhouse_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/connectors/clickhouse"
	"github.com/sluicehq/sluice/schemas"
	"github.com/sluicehq/sluice/testkit"
)

// columns returns "name type [default]" of a table's columns, in order.
func columns(t *testing.T, c *clickhouse.Client, table string) []string {
	t.Helper()
	var out []string
	for _, r := range query(t, c, "SELECT name, type, default_expression FROM system.columns WHERE database = 'sluice' AND table = '"+table+"'") {
		s := fmt.Sprintf("%s %s", r[0], r[1])
		if r[2] != "" {
			s += " DEFAULT " + r[2].(string)
		}
		out = append(out, s)
	}
	return out
}

// typesOf returns what the server under test stores timestamps and bools as.
func typesOf(c *clickhouse.Client) (ts, boolean string) {
	ts, boolean = "Int64", "UInt8"
	if c.Version().DateTime64() {
		ts = "DateTime64(6, 'UTC')"
	}
	if c.Version().Bool() {
		boolean = "Bool"
	}
	return ts, boolean
}

func TestEnsureTableCreates(t *testing.T) {
	c := open(t)
	ctx := context.Background()
	s := txnSchema()
	s.Fields = append(s.Fields, schemas.Field{Name: "channel", Type: schemas.String, Default: "web"})
	for range 2 { // the second call finds the table as it should be
		if err := c.EnsureTable(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	ts, boolean := typesOf(c)
	want := []string{
		"user_id String",
		"amount Float64",
		"qty Int64",
		"is_fraud Nullable(" + boolean + ")",
		"seen Nullable(" + ts + ")",
		"ts " + ts,
		"channel String DEFAULT 'web'",
		"_event_id String",
		"_event_time " + ts,
		"_arrival_time " + ts,
		"_partition Int32",
		"_offset Int64",
	}
	if diff := cmp.Diff(want, columns(t, c, "transactions")); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}
	rows := query(t, c, "SELECT engine, sorting_key, partition_key FROM system.tables WHERE database = 'sluice' AND name = 'transactions'")
	if len(rows) != 1 {
		t.Fatalf("system.tables: %v", rows)
	}
	engine, sorting, partition := rows[0][0].(string), rows[0][1].(string), rows[0][2].(string)
	if engine != "ReplacingMergeTree" {
		t.Errorf("engine %s, want ReplacingMergeTree", engine)
	}
	if got, want := strings.ReplaceAll(sorting, " ", ""), "user_id,_event_time,_event_id"; got != want {
		t.Errorf("sorting key %s, want %s", sorting, want)
	}
	if !strings.HasPrefix(partition, "toYYYYMM(") {
		t.Errorf("partition key %s, want months", partition)
	}
}

func TestEnsureTableEvolves(t *testing.T) {
	c := open(t)
	ctx := context.Background()
	v1 := txnSchema()
	if err := c.EnsureTable(ctx, v1); err != nil {
		t.Fatal(err)
	}
	// Version 2 adds a nullable field and one with a default, widens qty to
	// float64 and makes amount nullable.
	v2 := txnSchema()
	v2.Version = 2
	v2.Fields[1].Nullable = true
	v2.Fields[2].Type = schemas.Float64
	v2.Fields = append(v2.Fields,
		schemas.Field{Name: "country", Type: schemas.String, Nullable: true},
		schemas.Field{Name: "score", Type: schemas.Int64, Default: int64(-1)})
	if err := c.EnsureTable(ctx, v2); err != nil {
		t.Fatal(err)
	}
	// Version 3 drops seen and score: their columns stay, nullable, for
	// the rows that have them.
	v3 := *v2
	v3.Version = 3
	v3.Fields = slices.DeleteFunc(slices.Clone(v2.Fields), func(f schemas.Field) bool { return f.Name == "seen" || f.Name == "score" })
	if err := c.EnsureTable(ctx, &v3); err != nil {
		t.Fatal(err)
	}
	ts, boolean := typesOf(c)
	want := []string{
		"user_id String",
		"amount Nullable(Float64)",
		"qty Float64",
		"is_fraud Nullable(" + boolean + ")",
		"seen Nullable(" + ts + ")",
		"ts " + ts,
		"country Nullable(String)",
		"score Nullable(Int64)", // rows without it read null, not the old default
		"_event_id String",
		"_event_time " + ts,
		"_arrival_time " + ts,
		"_partition Int32",
		"_offset Int64",
	}
	if diff := cmp.Diff(want, columns(t, c, "transactions")); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}
}

func TestEnsureTableRefusesForeignTable(t *testing.T) {
	srv := testkit.StartClickHouse(t)
	c := srv.Client(t, "sluice")
	srv.Exec(t, "CREATE TABLE sluice.transactions (x String) ENGINE = Memory")
	err := c.EnsureTable(context.Background(), txnSchema())
	if err == nil || !strings.Contains(err.Error(), "has no column _event_id") || !strings.Contains(err.Error(), "clickhouse.database") {
		t.Errorf("EnsureTable over a foreign table: %v; want an error naming the missing column and the setting", err)
	}
}

func TestInsertRefuses(t *testing.T) {
	c := open(t)
	ctx := context.Background()
	if err := c.EnsureTable(ctx, txnSchema()); err != nil {
		t.Fatal(err)
	}
	row := func(change map[string]any) map[string]any {
		r := map[string]any{"user_id": "u1", "amount": 1.5, "_event_id": "e1", "_partition": int32(0), "_offset": int64(0)}
		for k, v := range change {
			r[k] = v
		}
		return r
	}
	for _, tc := range []struct {
		name string
		rows []map[string]any
		want string
	}{
		{"null in a required column", []map[string]any{row(map[string]any{"amount": nil})}, "row 0: column amount: null in a column that is not Nullable"},
		{"wrong type", []map[string]any{row(nil), row(map[string]any{"amount": "1,5"})}, `row 1: column amount: value 1,5 (string) does not fit`},
		{"unknown column", []map[string]any{row(map[string]any{"colour": "red"})}, "the table has no column colour"},
		{"rows differ", []map[string]any{row(nil), {"user_id": "u2"}}, "row 1 has 1 columns, row 0 has 5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Insert(ctx, "transactions", tc.rows)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Insert: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if n := count(t, c, "SELECT count() FROM sluice.transactions"); n != 0 {
		t.Errorf("%d rows inserted by refused inserts", n)
	}
	if err := c.Insert(ctx, "nope", []map[string]any{row(nil)}); err == nil || !strings.Contains(err.Error(), "sluice.nope does not exist") {
		t.Errorf("insert into a missing table: %v", err)
	}
}
