package files

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"

	"github.com/sluicehq/sluice/schemas"
)

// parquetWriter writes rows of T to a Parquet file in row groups of at
// most 10 000 rows.
type parquetWriter[T any] struct {
	t *testing.T
	f *os.File
	w *parquet.GenericWriter[T]
}

func newParquetWriter[T any](t *testing.T, path string) *parquetWriter[T] {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	return &parquetWriter[T]{t: t, f: f, w: parquet.NewGenericWriter[T](f, parquet.MaxRowsPerRowGroup(10_000))}
}

func (w *parquetWriter[T]) write(rows []T) {
	w.t.Helper()
	if _, err := w.w.Write(rows); err != nil {
		w.t.Fatal(err)
	}
}

// close finishes the file and returns how many row groups it has.
func (w *parquetWriter[T]) close() int {
	w.t.Helper()
	if err := w.w.Close(); err != nil {
		w.t.Fatal(err)
	}
	if err := w.f.Close(); err != nil {
		w.t.Fatal(err)
	}
	f, err := os.Open(w.f.Name())
	if err != nil {
		w.t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		w.t.Fatal(err)
	}
	return len(pf.RowGroups())
}

// writeParquet writes rows to a Parquet file at path.
func writeParquet[T any](t *testing.T, path string, rows []T) {
	t.Helper()
	w := newParquetWriter[T](t, path)
	w.write(rows)
	w.close()
}

type largeRow struct {
	UserID    string `parquet:"user_id"`
	AccountID int64  `parquet:"account_id"`
	Timestamp int64  `parquet:"timestamp,timestamp(microsecond)"`
	Note      string `parquet:"note"`
}

// typedRow has a column of each type a spine reads.
type typedRow struct {
	UserID    string  `parquet:"user_id"`
	AccountID int32   `parquet:"account_id"`
	Timestamp int64   `parquet:"timestamp,timestamp(microsecond)"`
	Millis    int64   `parquet:"ts_ms,timestamp(millisecond)"`
	Nanos     int64   `parquet:"ts_ns,timestamp(nanosecond)"`
	Score     float32 `parquet:"score"`
	Amount    float64 `parquet:"amount"`
	Fraud     bool    `parquet:"fraud"`
	Note      *string `parquet:"note"`
	Count     *int64  `parquet:"count"`
	Small     uint16  `parquet:"small"`
	Day       int32   `parquet:"day,date"`
	Price     int64   `parquet:"price,decimal(2:18)"`
	Raw       []byte  `parquet:"raw"`
}

type stringTimeRow struct {
	AccountID string `parquet:"account_id"`
	Timestamp string `parquet:"timestamp"`
	Label     int64  `parquet:"label"`
}

func ptr[T any](v T) *T { return &v }

// fixtureTime is a time of the Parquet fixtures, with nanoseconds.
var fixtureTime = time.Date(2026, 3, 1, 12, 0, 0, 123_456_789, time.UTC)

// parquetFixtures are the paths of the Parquet files TestParquetSpine reads.
type parquetFixtures struct {
	typed       string // typedRow
	stringTimes string // stringTimeRow
	plainMicros string // an INT64 timestamp column without a logical type
	int96       string // an INT96 timestamp column
}

func writeParquetFixtures(t *testing.T) parquetFixtures {
	t.Helper()
	dir := t.TempDir()
	fx := parquetFixtures{
		typed:       filepath.Join(dir, "typed.parquet"),
		stringTimes: filepath.Join(dir, "string_times.parquet"),
		plainMicros: filepath.Join(dir, "plain_micros.parquet"),
		int96:       filepath.Join(dir, "int96.parquet"),
	}
	t1 := fixtureTime
	writeParquet(t, fx.typed, []typedRow{{
		UserID: "u1", AccountID: 42,
		Timestamp: t1.UnixMicro(), Millis: t1.UnixMilli(), Nanos: t1.UnixNano(),
		Score: 0.5, Amount: 12.25, Fraud: true, Note: ptr("first"), Count: ptr(int64(-3)),
		Small: 65535, Day: 20513, Price: -1999, Raw: []byte("ab"),
	}, {
		UserID: "u2", AccountID: -1,
		Timestamp: -1, Millis: -1, Nanos: -1500,
		Day: -1,
	}})
	writeParquet(t, fx.stringTimes, []stringTimeRow{
		{AccountID: "42", Timestamp: "2026-03-01T14:00:00.25+02:00", Label: 1},
		{AccountID: "-9", Timestamp: "2026-03-01 12:00:00Z", Label: 0},
	})
	writeParquet(t, fx.plainMicros, []struct {
		UserID    string `parquet:"user_id"`
		Timestamp int64  `parquet:"timestamp"`
	}{{UserID: "u1", Timestamp: t1.UnixMicro()}})
	// Spark writes timestamps as INT96 by default: nanoseconds of the day,
	// then the Julian day (2026-03-01 is day 20513 of the Unix epoch).
	nanosOfDay := uint64(12*time.Hour + 123_456_789)
	writeParquet(t, fx.int96, []struct {
		UserID    string           `parquet:"user_id"`
		Timestamp deprecated.Int96 `parquet:"timestamp"`
	}{{UserID: "u1", Timestamp: deprecated.Int96{uint32(nanosOfDay), uint32(nanosOfDay >> 32), 2_440_588 + 20_513}}})
	return fx
}

// typedCols returns the columns of the typed fixture, whose account_id
// takes the entity key's type.
func typedCols(accountType schemas.Type) []Column {
	return []Column{
		{Name: "user_id", Type: schemas.String},
		{Name: "account_id", Type: accountType},
		{Name: "timestamp", Type: schemas.Timestamp},
		{Name: "ts_ms", Type: schemas.Timestamp},
		{Name: "ts_ns", Type: schemas.Timestamp},
		{Name: "score", Type: schemas.Float64},
		{Name: "amount", Type: schemas.Float64},
		{Name: "fraud", Type: schemas.Bool},
		{Name: "note", Type: schemas.String, Nullable: true},
		{Name: "count", Type: schemas.Int64, Nullable: true},
		{Name: "small", Type: schemas.Int64},
		{Name: "day", Type: schemas.Timestamp},
		{Name: "price", Type: schemas.Float64},
		{Name: "raw", Type: schemas.String},
	}
}

// typedRows returns the rows of the typed fixture with the given account
// ids: timestamps of each unit become µs (flooring negative nanoseconds),
// dates midnight UTC, decimals floats.
func typedRows(account1, account2 any) [][]any {
	micros := fixtureTime.UnixMicro()
	millis := fixtureTime.UnixMilli() * 1000
	return [][]any{
		{"u1", account1, micros, millis, micros, 0.5, 12.25, true, "first", int64(-3), int64(65535), at(2026, 3, 1, 0, 0, 0, 0), -19.99, "ab"},
		{"u2", account2, int64(-1), int64(-1000), int64(-2), 0.0, 0.0, false, nil, nil, int64(0), at(1969, 12, 31, 0, 0, 0, 0), 0.0, ""},
	}
}

func TestParquetSpine(t *testing.T) {
	fx := writeParquetFixtures(t)
	micros := fixtureTime.UnixMicro()
	userAndAccount := map[string]schemas.Type{"user_id": schemas.String, "account_id": schemas.Int64}
	tests := []struct {
		name     string
		path     string
		ts       string
		keyTypes map[string]schemas.Type
		cols     []Column
		time     int
		rows     [][]any
	}{{
		name:     "micros timestamp, int32 key",
		path:     fx.typed,
		keyTypes: userAndAccount,
		cols:     typedCols(schemas.Int64),
		time:     2,
		rows:     typedRows(int64(42), int64(-1)),
	}, {
		name:     "millis timestamp, int key for a string entity",
		path:     fx.typed,
		ts:       "ts_ms",
		keyTypes: map[string]schemas.Type{"account_id": schemas.String},
		cols:     typedCols(schemas.String),
		time:     3,
		rows:     typedRows("42", "-1"),
	}, {
		name:     "nanos timestamp",
		path:     fx.typed,
		ts:       "ts_ns",
		keyTypes: nil,
		cols:     typedCols(schemas.Int64),
		time:     4,
		rows:     typedRows(int64(42), int64(-1)),
	}, {
		name:     "date as the timestamp",
		path:     fx.typed,
		ts:       "day",
		keyTypes: nil,
		cols:     typedCols(schemas.Int64),
		time:     11,
		rows:     typedRows(int64(42), int64(-1)),
	}, {
		name:     "string timestamps, string key for an int entity",
		path:     fx.stringTimes,
		keyTypes: map[string]schemas.Type{"account_id": schemas.Int64},
		cols: []Column{
			{Name: "account_id", Type: schemas.Int64},
			{Name: "timestamp", Type: schemas.Timestamp},
			{Name: "label", Type: schemas.Int64},
		},
		time: 1,
		rows: [][]any{
			{int64(42), at(2026, 3, 1, 12, 0, 0, 250_000), int64(1)},
			{int64(-9), at(2026, 3, 1, 12, 0, 0, 0), int64(0)},
		},
	}, {
		name:     "INT64 timestamp without a logical type",
		path:     fx.plainMicros,
		keyTypes: map[string]schemas.Type{"user_id": schemas.String},
		cols:     []Column{{Name: "user_id", Type: schemas.String}, {Name: "timestamp", Type: schemas.Timestamp}},
		time:     1,
		rows:     [][]any{{"u1", micros}},
	}, {
		name:     "INT96 timestamp",
		path:     fx.int96,
		keyTypes: map[string]schemas.Type{"user_id": schemas.String},
		cols:     []Column{{Name: "user_id", Type: schemas.String}, {Name: "timestamp", Type: schemas.Timestamp}},
		time:     1,
		rows:     [][]any{{"u1", micros}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp, err := OpenSpine(tt.path, tt.ts, tt.keyTypes)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.cols, sp.Columns()); diff != "" {
				t.Errorf("columns (-want +got):\n%s", diff)
			}
			if got := sp.TimeIndex(); got != tt.time {
				t.Errorf("TimeIndex() = %d, want %d", got, tt.time)
			}
			if got, want := sp.Rows(), int64(len(tt.rows)); got != want {
				t.Errorf("Rows() = %d, want %d", got, want)
			}
			if diff := cmp.Diff(tt.rows, readAll(t, sp)); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParquetSpineErrors(t *testing.T) {
	dir := t.TempDir()
	stringTimes := filepath.Join(dir, "string_times.parquet")
	writeParquet(t, stringTimes, []stringTimeRow{
		{AccountID: "42", Timestamp: "2026-03-01T12:00:00Z"},
		{AccountID: "acct-7", Timestamp: "2026-03-01T12:00:00"},
	})
	badTime := filepath.Join(dir, "bad_time.parquet")
	writeParquet(t, badTime, []stringTimeRow{
		{AccountID: "42", Timestamp: "2026-03-01T12:00:00Z"},
		{AccountID: "43", Timestamp: "2026-03-01T12:00:00"},
	})
	kinds := filepath.Join(dir, "kinds.parquet")
	writeParquet(t, kinds, []struct {
		UserID *string  `parquet:"user_id"`
		Flag   bool     `parquet:"flag"`
		Score  float64  `parquet:"score"`
		Day    int32    `parquet:"day"`
		Time   *int64   `parquet:"time,timestamp(millisecond)"`
		Tags   []string `parquet:"tags"`
	}{{UserID: ptr("u1"), Time: ptr(int64(0))}, {Time: ptr(int64(0))}, {UserID: ptr("u3")}})
	notParquet := filepath.Join(dir, "text.parquet")
	if err := os.WriteFile(notParquet, []byte("user_id,timestamp\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	kindsCols := `"user_id", "flag", "score", "day", "time", "tags"`
	tests := []struct {
		name     string
		path     string
		ts       string
		keyTypes map[string]schemas.Type
		want     string
	}{{
		name:     "missing key column",
		path:     stringTimes,
		keyTypes: map[string]schemas.Type{"user_id": schemas.String},
		want:     `spine {path}: entity key column "user_id" is missing; the file has columns "account_id", "timestamp", "label" (add a column named after each entity key)`,
	}, {
		name: "missing timestamp column",
		path: kinds,
		want: `spine {path}: timestamp column "timestamp" is missing; the file has columns ` + kindsCols + ` (name the column "timestamp" or pass --timestamp-column)`,
	}, {
		name:     "string key that is not an integer",
		path:     stringTimes,
		keyTypes: map[string]schemas.Type{"account_id": schemas.Int64},
		want:     `spine {path}: row 2, column "account_id": value "acct-7" is not an integer, but the entity key is int64; correct the value`,
	}, {
		name: "string timestamp without offset",
		path: badTime,
		want: `spine {path}: row 2, column "timestamp": timestamp "2026-03-01T12:00:00" does not parse (expected RFC 3339, e.g. 2026-03-01T12:00:00Z or 2026-03-01T12:00:00.250+02:00)`,
	}, {
		name: "float timestamp",
		path: kinds,
		ts:   "score",
		want: `spine {path}: column "score": the timestamp column has type DOUBLE; make it a TIMESTAMP, an INT64 of µs since the Unix epoch or an RFC 3339 string`,
	}, {
		name: "int32 timestamp",
		path: kinds,
		ts:   "day",
		want: `spine {path}: column "day": the timestamp column has type INT(32,true); make it a TIMESTAMP, an INT64 of µs since the Unix epoch or an RFC 3339 string`,
	}, {
		name:     "bool key",
		path:     kinds,
		ts:       "time",
		keyTypes: map[string]schemas.Type{"flag": schemas.String},
		want:     `spine {path}: column "flag": the entity key is string but the column holds bool; write the key as a string or an integer`,
	}, {
		name: "repeated column",
		path: kinds,
		ts:   "time",
		want: `spine {path}: column "tags": is nested or repeated; a spine's columns hold one string, number, boolean or timestamp each`,
	}, {
		name: "not a Parquet file",
		path: notParquet,
		want: `spine {path}: invalid magic header of parquet file: "user" (the name ends in .parquet but the file is not Parquet)`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := readErr(tt.path, tt.ts, tt.keyTypes)
			want := strings.ReplaceAll(tt.want, "{path}", tt.path)
			if err == nil || err.Error() != want {
				t.Errorf("error:\n got %v\nwant %s", err, want)
			}
		})
	}
}

// TestParquetNullKeyAndTime checks that a null entity key or timestamp in
// an optional column is an error naming the row, and that such columns are
// not nullable, unlike an optional label.
func TestParquetNullKeyAndTime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nulls.parquet")
	writeParquet(t, path, []struct {
		UserID *string `parquet:"user_id"`
		Time   *int64  `parquet:"time,timestamp(millisecond)"`
	}{{UserID: ptr("u1"), Time: ptr(int64(1000))}, {Time: ptr(int64(0))}, {UserID: ptr("u3")}})
	tests := []struct {
		name     string
		keyTypes map[string]schemas.Type
		cols     []Column
		want     string
	}{{
		name:     "null key",
		keyTypes: map[string]schemas.Type{"user_id": schemas.String},
		cols:     []Column{{Name: "user_id", Type: schemas.String}, {Name: "time", Type: schemas.Timestamp}},
		want:     `spine {path}: row 2, column "user_id": the entity key is null; every row needs its entity key`,
	}, {
		name: "null timestamp",
		cols: []Column{{Name: "user_id", Type: schemas.String, Nullable: true}, {Name: "time", Type: schemas.Timestamp}},
		want: `spine {path}: row 3, column "time": the timestamp is null; every row needs one`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp, err := OpenSpine(path, "time", tt.keyTypes)
			if err != nil {
				t.Fatal(err)
			}
			defer sp.Close()
			if diff := cmp.Diff(tt.cols, sp.Columns()); diff != "" {
				t.Errorf("columns (-want +got):\n%s", diff)
			}
			row := make([]any, 2)
			if err := sp.Next(row); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]any{"u1", int64(1_000_000)}, row); diff != "" {
				t.Errorf("first row (-want +got):\n%s", diff)
			}
			err = readErr(path, "time", tt.keyTypes)
			want := strings.ReplaceAll(tt.want, "{path}", path)
			if err == nil || err.Error() != want {
				t.Errorf("error:\n got %v\nwant %s", err, want)
			}
		})
	}
}

// TestParquetWideTypes checks UUIDs, byte-array decimals and unsigned
// 64-bit integers, which pandas and Spark files may hold.
func TestParquetWideTypes(t *testing.T) {
	type wideRow struct {
		Timestamp int64    `parquet:"timestamp,timestamp(microsecond)"`
		ID        [16]byte `parquet:"id,uuid"`
		Price     [9]byte  `parquet:"price,decimal(3:20)"`
		Big       uint64   `parquet:"big"`
	}
	path := filepath.Join(t.TempDir(), "wide.parquet")
	writeParquet(t, path, []wideRow{{
		ID:    [16]byte{0x12, 0x3e, 0x45, 0x67, 0xe8, 0x9b, 0x12, 0xd3, 0xa4, 0x56, 0x42, 0x66, 0x14, 0x17, 0x40, 0x00},
		Price: [9]byte{6: 0x01, 7: 0xe2, 8: 0x40}, // 123456
		Big:   1<<63 - 1,
	}, {
		Price: [9]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x85}, // -123
		Big:   7,
	}, {
		Big: 1 << 63,
	}})
	sp, err := OpenSpine(path, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	wantCols := []Column{
		{Name: "timestamp", Type: schemas.Timestamp},
		{Name: "id", Type: schemas.String},
		{Name: "price", Type: schemas.Float64},
		{Name: "big", Type: schemas.Int64},
	}
	if diff := cmp.Diff(wantCols, sp.Columns()); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}
	want := [][]any{
		{int64(0), "123e4567-e89b-12d3-a456-426614174000", 123.456, int64(1<<63 - 1)},
		{int64(0), "00000000-0000-0000-0000-000000000000", -0.123, int64(7)},
	}
	for i, w := range want {
		row := make([]any, 4)
		if err := sp.Next(row); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(w, row); diff != "" {
			t.Errorf("row %d (-want +got):\n%s", i+1, diff)
		}
	}
	err = sp.Next(make([]any, 4))
	wantErr := fmt.Sprintf(`spine %s: row 3, column "big": value 9223372036854775808 does not fit int64; keep unsigned values below 2^63`, path)
	if err == nil || err.Error() != wantErr {
		t.Errorf("row 3 error:\n got %v\nwant %s", err, wantErr)
	}
}
