package files

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/schemas"
)

func TestCSVSpine(t *testing.T) {
	userKeys := map[string]schemas.Type{"user_id": schemas.String}
	tests := []struct {
		name     string
		content  string
		ts       string
		keyTypes map[string]schemas.Type
		cols     []Column
		time     int
		rows     [][]any
	}{{
		name: "string and int keys, offsets and fractions",
		content: "user_id,account_id,timestamp,label\n" +
			"u1,42,2026-03-01T12:00:00Z,1\n" +
			"u2,-7,2026-03-01T14:30:00.5+02:00,0\n" +
			"u3,9000000000,2026-03-01T12:00:00.123456789-05:00,1\n" +
			"u4,0,2026-03-01 23:59:59.999+00:00,0\n",
		keyTypes: map[string]schemas.Type{"user_id": schemas.String, "account_id": schemas.Int64},
		cols: []Column{
			{Name: "user_id", Type: schemas.String},
			{Name: "account_id", Type: schemas.Int64},
			{Name: "timestamp", Type: schemas.Timestamp},
			{Name: "label", Type: schemas.Int64},
		},
		time: 2,
		rows: [][]any{
			{"u1", int64(42), at(2026, 3, 1, 12, 0, 0, 0), int64(1)},
			{"u2", int64(-7), at(2026, 3, 1, 12, 30, 0, 500_000), int64(0)},
			{"u3", int64(9_000_000_000), at(2026, 3, 1, 17, 0, 0, 123_456), int64(1)},
			{"u4", int64(0), at(2026, 3, 1, 23, 59, 59, 999_000), int64(0)},
		},
	}, {
		name: "inferred types",
		content: "user_id,timestamp,count,ratio,big,flag,shout,text,digits_then_text\n" +
			"u1,2026-03-01T12:00:00Z,3,1.5,99999999999999999999,true,TRUE,a b,1\n" +
			"u2,2026-03-01T12:00:01Z,-4,2,1,false,False,\"x, \"\"y\"\"\nz\",x\n",
		keyTypes: userKeys,
		cols: []Column{
			{Name: "user_id", Type: schemas.String},
			{Name: "timestamp", Type: schemas.Timestamp},
			{Name: "count", Type: schemas.Int64},
			{Name: "ratio", Type: schemas.Float64},
			{Name: "big", Type: schemas.Float64},
			{Name: "flag", Type: schemas.Bool},
			{Name: "shout", Type: schemas.Bool},
			{Name: "text", Type: schemas.String},
			{Name: "digits_then_text", Type: schemas.String},
		},
		time: 1,
		rows: [][]any{
			{"u1", at(2026, 3, 1, 12, 0, 0, 0), int64(3), 1.5, 1e20, true, true, "a b", "1"},
			{"u2", at(2026, 3, 1, 12, 0, 1, 0), int64(-4), 2.0, 1.0, false, false, "x, \"y\"\nz", "x"},
		},
	}, {
		name: "nulls",
		content: "user_id,timestamp,score,empty,note,kept\n" +
			"u1,2026-03-01T12:00:00Z,,,,1.5\n" +
			"u2,2026-03-01T12:00:01Z,7,,hi,2.5\n",
		keyTypes: userKeys,
		cols: []Column{
			{Name: "user_id", Type: schemas.String},
			{Name: "timestamp", Type: schemas.Timestamp},
			{Name: "score", Type: schemas.Int64, Nullable: true},
			{Name: "empty", Type: schemas.String, Nullable: true},
			{Name: "note", Type: schemas.String, Nullable: true},
			{Name: "kept", Type: schemas.Float64},
		},
		time: 1,
		rows: [][]any{
			{"u1", at(2026, 3, 1, 12, 0, 0, 0), nil, nil, nil, 1.5},
			{"u2", at(2026, 3, 1, 12, 0, 1, 0), int64(7), nil, "hi", 2.5},
		},
	}, {
		name: "custom timestamp column beside a column named timestamp",
		content: "event_time,user_id,timestamp\n" +
			"2026-03-01T12:00:00+01:00,u1,yesterday\n",
		ts:       "event_time",
		keyTypes: userKeys,
		cols: []Column{
			{Name: "event_time", Type: schemas.Timestamp},
			{Name: "user_id", Type: schemas.String},
			{Name: "timestamp", Type: schemas.String},
		},
		time: 0,
		rows: [][]any{{at(2026, 3, 1, 11, 0, 0, 0), "u1", "yesterday"}},
	}, {
		name:     "byte order mark, no keys, no rows",
		content:  "\ufefftimestamp,label\n",
		keyTypes: nil,
		cols: []Column{
			{Name: "timestamp", Type: schemas.Timestamp},
			{Name: "label", Type: schemas.String},
		},
		time: 0,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp, err := OpenSpine(writeFile(t, "spine.csv", tt.content), tt.ts, tt.keyTypes)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.cols, sp.Columns()); diff != "" {
				t.Errorf("columns (-want +got):\n%s", diff)
			}
			if got := sp.TimeIndex(); got != tt.time {
				t.Errorf("TimeIndex() = %d, want %d", got, tt.time)
			}
			if got, want := sp.Rows(), int64(-1); got != want {
				t.Errorf("Rows() = %d, want %d", got, want)
			}
			if diff := cmp.Diff(tt.rows, readAll(t, sp)); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
		})
	}
}

// manyRows returns a CSV spine with a header and n rows whose amount is i,
// or empty where empty says so.
func manyRows(n int, empty func(i int) bool) string {
	var b strings.Builder
	b.WriteString("user_id,timestamp,amount\n")
	for i := range n {
		amount := fmt.Sprint(i)
		if empty != nil && empty(i) {
			amount = ""
		}
		fmt.Fprintf(&b, "u%d,2026-03-01T12:00:00Z,%s\n", i, amount)
	}
	return b.String()
}

// TestCSVNullableBeyondWindow checks that a label column is nullable when
// the file is longer than the inference window, whose cells cannot show
// that later cells are never empty.
func TestCSVNullableBeyondWindow(t *testing.T) {
	keys := map[string]schemas.Type{"user_id": schemas.String}
	tests := []struct {
		name     string
		rows     int
		empty    func(i int) bool
		nullable bool
		nulls    int
	}{
		{name: "whole file in the window", rows: inferRows, nullable: false},
		{name: "one row beyond", rows: inferRows + 1, nullable: true},
		{name: "empty cell beyond", rows: 3000, empty: func(i int) bool { return i == 2500 }, nullable: true, nulls: 1},
		{name: "empty cell within", rows: 50, empty: func(i int) bool { return i == 10 }, nullable: true, nulls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp, err := OpenSpine(writeFile(t, "spine.csv", manyRows(tt.rows, tt.empty)), "", keys)
			if err != nil {
				t.Fatal(err)
			}
			want := Column{Name: "amount", Type: schemas.Int64, Nullable: tt.nullable}
			if diff := cmp.Diff(want, sp.Columns()[2]); diff != "" {
				t.Errorf("amount column (-want +got):\n%s", diff)
			}
			rows := readAll(t, sp)
			nulls := 0
			for i, r := range rows {
				if r[2] == nil {
					nulls++
				} else if r[2] != int64(i) {
					t.Fatalf("row %d: amount = %v, want %d", i, r[2], i)
				}
			}
			if len(rows) != tt.rows || nulls != tt.nulls {
				t.Errorf("read %d rows with %d nulls, want %d with %d", len(rows), nulls, tt.rows, tt.nulls)
			}
		})
	}
}

func TestCSVSpineErrors(t *testing.T) {
	userKeys := map[string]schemas.Type{"user_id": schemas.String}
	tests := []struct {
		name     string
		content  string
		ts       string
		keyTypes map[string]schemas.Type
		want     string
	}{{
		name:     "missing key column",
		content:  "uid,timestamp\nu1,2026-03-01T12:00:00Z\n",
		keyTypes: map[string]schemas.Type{"user_id": schemas.String, "uid": schemas.String},
		want:     `spine {path}: entity key column "user_id" is missing; the file has columns "uid", "timestamp" (add a column named after each entity key)`,
	}, {
		name:     "missing timestamp column",
		content:  "user_id,ts\nu1,2026-03-01T12:00:00Z\n",
		keyTypes: userKeys,
		want:     `spine {path}: timestamp column "timestamp" is missing; the file has columns "user_id", "ts" (name the column "timestamp" or pass --timestamp-column)`,
	}, {
		name:     "missing custom timestamp column",
		content:  "user_id,timestamp\nu1,2026-03-01T12:00:00Z\n",
		ts:       "event_time",
		keyTypes: userKeys,
		want:     `spine {path}: timestamp column "event_time" is missing; the file has columns "user_id", "timestamp" (name the column "event_time" or pass --timestamp-column)`,
	}, {
		name:     "timestamp without offset",
		content:  "user_id,timestamp\nu1,2026-03-01T12:00:00Z\nu2,2026-03-01T12:00:00\n",
		keyTypes: userKeys,
		want:     `spine {path}: line 3, column "timestamp": timestamp "2026-03-01T12:00:00" does not parse (expected RFC 3339, e.g. 2026-03-01T12:00:00Z or 2026-03-01T12:00:00.250+02:00)`,
	}, {
		name:     "timestamp as a number",
		content:  "user_id,timestamp\nu1,1772366400000\n",
		keyTypes: userKeys,
		want:     `spine {path}: line 2, column "timestamp": timestamp "1772366400000" does not parse (expected RFC 3339, e.g. 2026-03-01T12:00:00Z or 2026-03-01T12:00:00.250+02:00)`,
	}, {
		name:     "empty timestamp",
		content:  "user_id,timestamp\nu1,\n",
		keyTypes: userKeys,
		want:     `spine {path}: line 2, column "timestamp": timestamp is empty; every row needs one (expected RFC 3339, e.g. 2026-03-01T12:00:00Z or 2026-03-01T12:00:00.250+02:00)`,
	}, {
		name:     "int key that is not an integer",
		content:  "account_id,timestamp\n12,2026-03-01T12:00:00Z\nacct-7,2026-03-01T12:00:00Z\n",
		keyTypes: map[string]schemas.Type{"account_id": schemas.Int64},
		want:     `spine {path}: line 3, column "account_id": value "acct-7" is not an integer, but the entity key is int64; correct the value`,
	}, {
		name:     "empty key",
		content:  "user_id,timestamp\n,2026-03-01T12:00:00Z\n",
		keyTypes: userKeys,
		want:     `spine {path}: line 2, column "user_id": entity key is empty; every row needs its entity key`,
	}, {
		name:     "text after the inference window",
		content:  manyRows(1500, nil) + "u1500,2026-03-01T12:00:00Z,12;5\n",
		keyTypes: userKeys,
		want:     `spine {path}: line 1502, column "amount": value "12;5" does not parse as int64, the type the first 1000 rows gave the column; correct the value, or leave the cell empty for null`,
	}, {
		name:     "fraction after the inference window",
		content:  manyRows(1500, nil) + "u1500,2026-03-01T12:00:00Z,3.5\n",
		keyTypes: userKeys,
		want:     `spine {path}: line 1502, column "amount": value "3.5" does not parse as int64, the type the first 1000 rows gave the column; if the column holds fractions, write a value within the first 1000 rows with a decimal point (1.0) so that it reads as float64`,
	}, {
		name:     "wrong number of fields",
		content:  "user_id,timestamp\nu1,2026-03-01T12:00:00Z,extra\n",
		keyTypes: userKeys,
		want:     `spine {path}: record on line 2: wrong number of fields (give every row one value per header column)`,
	}, {
		name:     "bare quote",
		content:  "user_id,timestamp\nu\"1,2026-03-01T12:00:00Z\n",
		keyTypes: userKeys,
		want:     `spine {path}: parse error on line 2, column 2: bare " in non-quoted-field (quote a value that holds quotes, commas or line breaks, and double the quotes inside it: "say ""hi"", then go")`,
	}, {
		name:    "duplicate column",
		content: "timestamp,label,label\n",
		want:    `spine {path}: column "label" appears twice; give every column a distinct name`,
	}, {
		name:    "unnamed column",
		content: "timestamp,,label\n",
		want:    `spine {path}: column 2 has no name; name every column`,
	}, {
		name:    "empty file",
		content: "",
		want:    `spine {path}: the file is empty; a CSV spine starts with a header row naming its columns`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "spine.csv", tt.content)
			err := readErr(path, tt.ts, tt.keyTypes)
			want := strings.ReplaceAll(tt.want, "{path}", path)
			if err == nil || err.Error() != want {
				t.Errorf("error:\n got %v\nwant %s", err, want)
			}
		})
	}
}

func TestCSVGzip(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	io.WriteString(zw, "user_id,timestamp,label\nu1,2026-03-01T12:00:00Z,true\n")
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "spine.CSV.GZ")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	sp, err := OpenSpine(path, "", map[string]schemas.Type{"user_id": schemas.String})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]any{{"u1", at(2026, 3, 1, 12, 0, 0, 0), true}}
	if diff := cmp.Diff(want, readAll(t, sp)); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}

	plain := writeFile(t, "plain.csv.gz", "user_id,timestamp\n")
	_, err = OpenSpine(plain, "", nil)
	if want := fmt.Sprintf("spine %s: gzip: invalid header (the name ends in .gz but the file is not gzipped)", plain); err == nil || err.Error() != want {
		t.Errorf("error:\n got %v\nwant %s", err, want)
	}
}

// FuzzCSVSpine checks that any file either fails with an error or yields
// rows whose values have their columns' Go types.
func FuzzCSVSpine(f *testing.F) {
	f.Add("id,timestamp,x\na,2026-03-01T12:00:00Z,1\nb,2026-03-01T12:00:00+02:00,\n")
	f.Add("id,timestamp,x,y\na,2026-03-01 12:00:00Z,true,\"q\"\"\"\n")
	f.Add("timestamp,id\n2026-03-01T12:00:00.5Z,\n")
	f.Fuzz(func(t *testing.T, content string) {
		sp, err := OpenSpine(writeFile(t, "spine.csv", content), "", map[string]schemas.Type{"id": schemas.String})
		if err != nil {
			return
		}
		defer sp.Close()
		cols := sp.Columns()
		row := make([]any, len(cols))
		for {
			if err := sp.Next(row); err != nil {
				return
			}
			for i, v := range row {
				if !fits(v, cols[i]) {
					t.Fatalf("column %+v holds %#v", cols[i], v)
				}
			}
		}
	})
}

// fits reports whether v is a value of column c.
func fits(v any, c Column) bool {
	switch v.(type) {
	case nil:
		return c.Nullable
	case string:
		return c.Type == schemas.String
	case int64:
		return c.Type == schemas.Int64 || c.Type == schemas.Timestamp
	case float64:
		return c.Type == schemas.Float64
	case bool:
		return c.Type == schemas.Bool
	}
	return false
}
