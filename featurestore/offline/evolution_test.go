package offline

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/schemas"
)

// ordersV1 and ordersV2 are two versions of a stream's schema: version 2
// widens qty, adds a nullable field and a field with a default.
func ordersV1() *schemas.Schema {
	return &schemas.Schema{
		Stream:  "orders",
		Version: 1,
		Fields: []schemas.Field{
			{Name: "user_id", Type: schemas.String},
			{Name: "qty", Type: schemas.Int64},
			{Name: "ts", Type: schemas.Timestamp},
		},
		TimeField: "ts",
		KeyFields: []string{"user_id"},
	}
}

func ordersV2() *schemas.Schema {
	s := ordersV1()
	s.Version = 2
	s.Fields[1].Type = schemas.Float64
	s.Fields = append(s.Fields,
		schemas.Field{Name: "country", Type: schemas.String, Nullable: true},
		schemas.Field{Name: "channel", Type: schemas.String, Default: "web"})
	return s
}

func TestSchemaEvolution(t *testing.T) {
	v1, v2 := ordersV1(), ordersV2()
	row := func(user string, offset int64, values ...any) Row {
		return Row{Values: values, Key: user, EventID: user, EventTime: at(0), Arrival: at(0), Offset: offset}
	}
	ts := at(0)

	dir := t.TempDir()
	s := openSink(t, dir, Options{})
	addAll(t, s, v1, row("a", 0, "a", int64(1), ts))
	flush(t, s)
	// A row of the old version buffered with one of the new: both are
	// written with the new version.
	addAll(t, s, v2, row("c", 1, "c", 2.5, ts, "NL", "app"))
	addAll(t, s, v1, row("b", 2, "b", int64(3), ts))
	flush(t, s)

	files, err := Files(dir, "orders")
	if err != nil {
		t.Fatal(err)
	}
	wantFiles := []string{
		filepath.Join(dir, "streams/orders/date=2026-03-01/part-p0-0-0.parquet"),
		filepath.Join(dir, "streams/orders/date=2026-03-01/part-p0-1-2.parquet"),
	}
	if diff := gocmp.Diff(wantFiles, files); diff != "" {
		t.Fatalf("files (-want +got):\n%s", diff)
	}
	columnsOf := func(path string) []string {
		var out []string
		for _, f := range openParquet(t, path).Schema().Fields() {
			out = append(out, f.Name())
		}
		return out
	}
	meta := []string{"_event_id", "_event_time", "_arrival_time", "_partition", "_offset"}
	if diff := gocmp.Diff(append([]string{"user_id", "qty", "ts"}, meta...), columnsOf(files[0])); diff != "" {
		t.Errorf("columns of the version 1 file (-want +got):\n%s", diff)
	}
	if diff := gocmp.Diff(append([]string{"user_id", "qty", "ts", "country", "channel"}, meta...), columnsOf(files[1])); diff != "" {
		t.Errorf("columns of the version 2 file (-want +got):\n%s", diff)
	}

	tm := time.UnixMicro(ts).UTC()
	stored := func(user string, qty any, country, channel any, offset int64) map[string]any {
		return map[string]any{
			"user_id": user, "qty": qty, "ts": tm, "country": country, "channel": channel,
			"_event_id": user, "_event_time": tm, "_arrival_time": tm, "_partition": int32(0), "_offset": offset,
		}
	}
	want := []map[string]any{
		// The version 1 file keeps qty as INT64 and lacks the new columns,
		// which read as null.
		stored("a", int64(1), nil, nil, 0),
		// The version 1 row written with version 2 takes the default of
		// channel, null for country and a widened qty.
		stored("b", 3.0, nil, "web", 2),
		stored("c", 2.5, "NL", "app", 1),
	}
	if diff := gocmp.Diff(want, readStream(t, dir, "orders")); diff != "" {
		t.Errorf("merged rows (-want +got):\n%s", diff)
	}
}

func TestSchemaEvolutionWithoutValueFails(t *testing.T) {
	v1 := &schemas.Schema{Stream: "orders", Version: 1, Fields: []schemas.Field{{Name: "user_id", Type: schemas.String}}}
	// Not a compatible change: the registry refuses it. Flush reports it
	// rather than inventing a value.
	v2 := &schemas.Schema{Stream: "orders", Version: 2, Fields: []schemas.Field{
		{Name: "user_id", Type: schemas.String}, {Name: "qty", Type: schemas.Int64},
	}}
	s := openSink(t, t.TempDir(), Options{})
	addAll(t, s, v1, Row{Values: []any{"a"}, Key: "a", EventID: "a", Offset: 0})
	addAll(t, s, v2, Row{Values: []any{"b", int64(1)}, Key: "b", EventID: "b", Offset: 1})
	err := s.Flush(t.Context())
	if err == nil {
		t.Fatal("Flush succeeded, want an error")
	}
	const problem = `stream "orders": field "qty": version 2 added the field without a default and not nullable, so rows of version 1 have no value for it`
	if got := err.Error(); !strings.Contains(got, problem) {
		t.Errorf("Flush error = %q, want one containing %q", got, problem)
	}
	if got := s.Buffered(); got != 2 {
		t.Errorf("Buffered() = %d, want 2", got)
	}
}
