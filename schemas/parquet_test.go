package schemas

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

func txnSchema() *Schema {
	return &Schema{
		Stream:  "transactions",
		Version: 2,
		Fields: []Field{
			{Name: "user_id", Type: String},
			{Name: "amount", Type: Float64},
			{Name: "count", Type: Int64},
			{Name: "is_fraud", Type: Bool, Nullable: true},
			{Name: "country", Type: String, Nullable: true},
			{Name: "ts", Type: Timestamp},
			{Name: "seen", Type: Timestamp, Nullable: true},
		},
		TimeField: "ts",
		KeyFields: []string{"user_id"},
	}
}

// describeFileSchema renders the schema elements a Parquet file stores, one
// line per column: name, physical type, repetition, logical type.
func describeFileSchema(md *format.FileMetaData) []string {
	var out []string
	for _, e := range md.Schema[1:] {
		out = append(out, fmt.Sprintf("%s %v %v %s", e.Name, e.Type.V, e.RepetitionType.V, e.LogicalType.String()))
	}
	return out
}

func writeParquet(t *testing.T, schema *parquet.Schema, rows []parquet.Row) *parquet.File {
	t.Helper()
	var buf bytes.Buffer
	w := parquet.NewWriter(&buf, schema)
	if _, err := w.WriteRows(rows); err != nil {
		t.Fatalf("write rows: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close writer: %v", err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatalf("open file: %v", err)
	}
	return f
}

func TestParquetSchemaColumns(t *testing.T) {
	schema := ParquetSchema(txnSchema())
	if schema.Name() != "transactions" {
		t.Errorf("schema name = %q, want transactions", schema.Name())
	}
	row, err := AppendParquetRow(nil, txnSchema(),
		[]any{"u1", 1.5, int64(2), nil, nil, int64(3), nil},
		ParquetMeta{EventID: "e1", EventTime: 3, ArrivalTime: 4, Partition: 0, Offset: 9})
	if err != nil {
		t.Fatal(err)
	}
	f := writeParquet(t, schema, []parquet.Row{row})
	want := []string{
		"user_id BYTE_ARRAY REQUIRED STRING",
		"amount DOUBLE REQUIRED ",
		"count INT64 REQUIRED INT(64,true)",
		"is_fraud BOOLEAN OPTIONAL ",
		"country BYTE_ARRAY OPTIONAL STRING",
		"ts INT64 REQUIRED TIMESTAMP(isAdjustedToUTC=true,unit=MICROS)",
		"seen INT64 OPTIONAL TIMESTAMP(isAdjustedToUTC=true,unit=MICROS)",
		"_event_id BYTE_ARRAY REQUIRED STRING",
		"_event_time INT64 REQUIRED TIMESTAMP(isAdjustedToUTC=true,unit=MICROS)",
		"_arrival_time INT64 REQUIRED TIMESTAMP(isAdjustedToUTC=true,unit=MICROS)",
		"_partition INT32 REQUIRED INT(32,true)",
		"_offset INT64 REQUIRED INT(64,true)",
	}
	if diff := cmp.Diff(want, describeFileSchema(f.Metadata())); diff != "" {
		t.Errorf("file schema (-want +got):\n%s", diff)
	}
}

func TestAppendParquetRowRoundTrip(t *testing.T) {
	s := txnSchema()
	ts := time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC)
	events := []struct {
		values []any
		meta   ParquetMeta
	}{
		{
			values: []any{"u1", 12.5, int64(-3), true, "NL", ts.UnixMicro(), ts.Add(time.Hour).UnixMicro()},
			meta:   ParquetMeta{EventID: "a", EventTime: ts.UnixMicro(), ArrivalTime: ts.UnixMicro() + 7, Partition: 3, Offset: 41},
		},
		{
			values: []any{"ü2", -0.25, int64(1) << 40, nil, nil, int64(0), nil},
			meta:   ParquetMeta{EventID: "b", EventTime: 0, ArrivalTime: 1, Partition: 3, Offset: 42},
		},
	}
	var rows []parquet.Row
	for _, e := range events {
		row, err := AppendParquetRow(nil, s, e.values, e.meta)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, row)
	}
	f := writeParquet(t, ParquetSchema(s), rows)

	r := parquet.NewGenericReader[map[string]any](f, f.Schema())
	defer r.Close()
	got := make([]map[string]any, 2)
	for i := range got {
		got[i] = map[string]any{}
	}
	if n, err := r.Read(got); n != 2 {
		t.Fatalf("read %d rows (%v), want 2", n, err)
	}
	// The generic map reader yields timestamps as their INT64 microseconds.
	us := ts.UnixMicro()
	want := []map[string]any{
		{
			"user_id": "u1", "amount": 12.5, "count": int64(-3), "is_fraud": true, "country": "NL",
			"ts": us, "seen": us + time.Hour.Microseconds(),
			"_event_id": "a", "_event_time": us, "_arrival_time": us + 7,
			"_partition": int32(3), "_offset": int64(41),
		},
		{
			"user_id": "ü2", "amount": -0.25, "count": int64(1) << 40, "is_fraud": nil, "country": nil,
			"ts": int64(0), "seen": nil,
			"_event_id": "b", "_event_time": int64(0), "_arrival_time": int64(1),
			"_partition": int32(3), "_offset": int64(42),
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
}

func TestAppendParquetRowErrors(t *testing.T) {
	s := txnSchema()
	ok := []any{"u1", 1.5, int64(2), nil, nil, int64(3), nil}
	with := func(i int, v any) []any {
		out := append([]any(nil), ok...)
		out[i] = v
		return out
	}
	tests := []struct {
		name   string
		values []any
		want   string
	}{
		{"too few values", ok[:6], `stream "transactions": event has 6 values for the 7 fields of schema version 2`},
		{"null in required field", with(1, nil), `stream "transactions": field "amount": is null but the field is not nullable`},
		{"string for int64", with(2, "2"), `stream "transactions": field "count": value 2 of Go type string does not fit type int64`},
		{"float for int64", with(2, 2.0), `stream "transactions": field "count": value 2 of Go type float64 does not fit type int64`},
		{"int for string", with(0, int64(1)), `stream "transactions": field "user_id": value 1 of Go type int64 does not fit type string`},
		{"int32 for timestamp", with(5, int32(1)), `stream "transactions": field "ts": value 1 of Go type int32 does not fit type timestamp`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			row, err := AppendParquetRow(parquet.Row{}, s, tt.values, ParquetMeta{})
			if err == nil {
				t.Fatalf("no error, row %v", row)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Errorf("error %T is not a *FieldError", err)
			}
			if err.Error() != tt.want {
				t.Errorf("error = %q, want %q", err, tt.want)
			}
		})
	}
}

func TestParquetSchemaString(t *testing.T) {
	got := ParquetSchema(&Schema{Stream: "s", Fields: []Field{
		{Name: "b", Type: Int64},
		{Name: "a", Type: String, Nullable: true},
	}}).String()
	// Columns print in schema order, not by name.
	want := `message s {
	required int64 b (INT(64,true));
	optional binary a (STRING);
	required binary _event_id (STRING);
	required int64 _event_time (TIMESTAMP(isAdjustedToUTC=true,unit=MICROS));
	required int64 _arrival_time (TIMESTAMP(isAdjustedToUTC=true,unit=MICROS));
	required int32 _partition (INT(32,true));
	required int64 _offset (INT(64,true));
}`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("schema (-want +got):\n%s", diff)
	}
}
