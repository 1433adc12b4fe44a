package offline

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/parquet-go/parquet-go"

	"github.com/sluicehq/sluice/schemas"
)

// foreignRow is a row of a file written by another tool: a dictionary-
// encoded key, nulls mixed with values in small pages, a float field stored
// as INT64, timestamps in milliseconds and nanoseconds, and no column for a
// field a later schema version added.
type foreignRow struct {
	EventID   string   `parquet:"_event_id"`
	EventTime int64    `parquet:"_event_time"`
	Arrival   int64    `parquet:"_arrival_time"`
	Partition int32    `parquet:"_partition"`
	Offset    int64    `parquet:"_offset"`
	User      string   `parquet:"user_id,dict"`
	Amount    int64    `parquet:"amount"`
	Flag      *bool    `parquet:"flag,optional"`
	Note      *string  `parquet:"note,optional"`
	Score     *float64 `parquet:"score,optional"`
	Millis    int64    `parquet:"ms,timestamp(millisecond)"`
	Nanos     *int64   `parquet:"ns,optional,timestamp(nanosecond)"`
}

func foreignSchema() *schemas.Schema {
	return &schemas.Schema{
		Stream:  "txns",
		Version: 2,
		Fields: []schemas.Field{
			{Name: "user_id", Type: schemas.String},
			{Name: "amount", Type: schemas.Float64},
			{Name: "flag", Type: schemas.Bool, Nullable: true},
			{Name: "note", Type: schemas.String, Nullable: true},
			{Name: "score", Type: schemas.Float64, Nullable: true},
			{Name: "ms", Type: schemas.Timestamp},
			{Name: "ns", Type: schemas.Timestamp, Nullable: true},
			{Name: "region", Type: schemas.String, Default: "EU"},
		},
		TimeField: "ms",
		KeyFields: []string{"user_id"},
	}
}

// TestScanForeignFile reads every value of a file whose pages take both
// the fast path (plain pages, read whole) and the value-by-value one, as
// rows and as batches, and drops the rows outside the time range.
func TestScanForeignFile(t *testing.T) {
	dir := t.TempDir()
	var rows []foreignRow
	var want []Row
	for i := range 300 {
		r := foreignRow{
			EventID: fmt.Sprintf("e%d", i), EventTime: at(0) + int64(i), Arrival: at(0) + int64(i) + 5,
			Partition: 3, Offset: int64(i), User: fmt.Sprintf("u%d", i%7), Amount: int64(i) - 100,
			Millis: -1500 + int64(i),
		}
		w := Row{EventID: r.EventID, EventTime: r.EventTime, Arrival: r.Arrival, Partition: 3, Offset: r.Offset, Key: r.User,
			Values: []any{r.User, float64(r.Amount), nil, nil, nil, r.Millis * 1000, nil, "EU"}}
		if i%3 != 0 {
			b := i%2 == 0
			r.Flag, w.Values[2] = &b, b
		}
		if i%4 != 0 {
			s := fmt.Sprintf("note %d", i)
			r.Note, w.Values[3] = &s, s
		}
		if i%5 != 0 {
			f := float64(i) / 8
			r.Score, w.Values[4] = &f, f
		}
		if i%6 != 0 {
			n := int64(i)*1000 - 1
			r.Nanos, w.Values[6] = &n, floorDiv(n, 1000)
		}
		rows = append(rows, r)
		if i >= 10 { // the scan keeps event times from at(0)+10
			want = append(want, w)
		}
	}
	path := filepath.Join(dir, "streams", "txns", "date="+day0.Format("2006-01-02"), "part-p3-0-299.parquet")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := parquet.NewGenericWriter[foreignRow](f, parquet.PageBufferSize(512), parquet.MaxRowsPerRowGroup(128))
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	opts := HistoryOptions{From: at(0) + 10}
	var got []Row
	err = Scan(t.Context(), dir, "txns", foreignSchema(), opts, func(r *Row) error {
		c := *r
		c.Values = append([]any(nil), r.Values...)
		got = append(got, c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}

	var fromBatches []Row
	err = ScanBatches(t.Context(), dir, "txns", foreignSchema(), opts, func(b *Batch) error {
		for i := range b.Len {
			r := Row{EventID: b.EventID[i], EventTime: b.EventTime[i], Arrival: b.Arrival[i], Partition: b.Partition[i],
				Offset: b.Offset[i], Key: b.Fields[0].Str[i]}
			for f := range b.Fields {
				r.Values = append(r.Values, b.Fields[f].Value(i))
			}
			fromBatches = append(fromBatches, r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := gocmp.Diff(want, fromBatches); diff != "" {
		t.Errorf("batches (-want +got):\n%s", diff)
	}

	// Some fields only, without event ids: the same values of those
	// fields, the other vectors empty.
	opts.Fields, opts.NoEventID, opts.NoArrival = []int{0, 3, 4}, true, true
	var some []Row
	err = ScanBatches(t.Context(), dir, "txns", foreignSchema(), opts, func(b *Batch) error {
		if len(b.EventID) != 0 || len(b.Arrival) != 0 {
			t.Errorf("batch of %d rows has %d event ids and %d arrivals, want none", b.Len, len(b.EventID), len(b.Arrival))
		}
		for f := range b.Fields {
			if n := b.Fields[f].len(); !slices.Contains(opts.Fields, f) && n != 0 {
				t.Errorf("field %d, not asked for, has %d values", f, n)
			}
		}
		for i := range b.Len {
			r := Row{EventTime: b.EventTime[i], Partition: b.Partition[i], Offset: b.Offset[i]}
			for _, f := range opts.Fields {
				r.Values = append(r.Values, b.Fields[f].Value(i))
			}
			some = append(some, r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var wantSome []Row
	for _, w := range want {
		wantSome = append(wantSome, Row{EventTime: w.EventTime, Partition: w.Partition, Offset: w.Offset,
			Values: []any{w.Values[0], w.Values[3], w.Values[4]}})
	}
	if diff := gocmp.Diff(wantSome, some); diff != "" {
		t.Errorf("batches of some fields (-want +got):\n%s", diff)
	}
}
