package train

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/sluicehq/sluice/schemas"
)

// fixedNow is the clock of the tests' writers.
var fixedNow = time.Date(2026, 3, 1, 12, 30, 0, 123456000, time.UTC)

func testOptions(rowsPerPart, rowGroupRows int) WriterOptions {
	return WriterOptions{RowsPerPart: rowsPerPart, RowGroupRows: rowGroupRows, Now: func() time.Time { return fixedNow }}
}

// allColumns has every type, nullable and not, plain and as a list.
var allColumns = []Column{
	{Name: "user_id", Type: schemas.String},
	{Name: "timestamp", Type: schemas.Timestamp},
	{Name: "is_fraud", Type: schemas.Bool, Nullable: true},
	{Name: "user_txn__last_amount", Type: schemas.Float64, Nullable: true, Feature: true},
	{Name: "user_txn__txn_count_1h", Type: schemas.Int64, Feature: true},
	{Name: "user_txn__last_country", Type: schemas.String, Nullable: true, Feature: true},
	{Name: "user_txn__last_big", Type: schemas.Bool, Feature: true},
	{Name: "user_txn__last_ts", Type: schemas.Timestamp, Nullable: true, Feature: true},
	{Name: "user_txn__recent_amounts", Type: schemas.Float64, Nullable: true, List: true, Feature: true},
	{Name: "user_txn__recent_merchants", Type: schemas.String, List: true, Feature: true},
	{Name: "user_txn__recent_counts", Type: schemas.Int64, Nullable: true, List: true, Feature: true},
	{Name: "user_txn__recent_flags", Type: schemas.Bool, List: true, Feature: true},
	{Name: "user_txn__recent_times", Type: schemas.Timestamp, Nullable: true, List: true, Feature: true},
}

// allRow is a row of allColumns as parquet-go reads it into a struct.
type allRow struct {
	UserID          string     `parquet:"user_id"`
	Timestamp       int64      `parquet:"timestamp"`
	IsFraud         *bool      `parquet:"is_fraud,optional"`
	LastAmount      *float64   `parquet:"user_txn__last_amount,optional"`
	TxnCount        int64      `parquet:"user_txn__txn_count_1h"`
	LastCountry     *string    `parquet:"user_txn__last_country,optional"`
	LastBig         bool       `parquet:"user_txn__last_big"`
	LastTS          *int64     `parquet:"user_txn__last_ts,optional"`
	RecentAmounts   []*float64 `parquet:"user_txn__recent_amounts,optional,list"`
	RecentMerchants []*string  `parquet:"user_txn__recent_merchants,list"`
	RecentCounts    []*int64   `parquet:"user_txn__recent_counts,optional,list"`
	RecentFlags     []*bool    `parquet:"user_txn__recent_flags,list"`
	RecentTimes     []*int64   `parquet:"user_txn__recent_times,optional,list"`
}

func (r allRow) values() []any {
	return []any{
		r.UserID, r.Timestamp, deref(r.IsFraud), deref(r.LastAmount), r.TxnCount, deref(r.LastCountry),
		r.LastBig, deref(r.LastTS), list(r.RecentAmounts), list(r.RecentMerchants), list(r.RecentCounts),
		list(r.RecentFlags), list(r.RecentTimes),
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func list[T any](items []*T) any {
	if items == nil {
		return nil
	}
	out := make([]any, len(items))
	for i, p := range items {
		out[i] = deref(p)
	}
	return out
}

// allRows returns n rows of allColumns with nulls, empty lists and null
// list items spread over them.
func allRows(n int) [][]any {
	t0 := fixedNow.UnixMicro()
	rows := make([][]any, n)
	for i := range rows {
		v := int64(i)
		null := func(every int, x any) any {
			if i%every == 1 {
				return nil
			}
			return x
		}
		lists := func(every int, x []any) any {
			switch i % every {
			case 1:
				return nil
			case 2:
				return []any{}
			}
			return x
		}
		rows[i] = []any{
			"u" + string(rune('a'+i%26)),
			t0 + v*1_000_000,
			null(3, i%2 == 0),
			null(4, float64(v)*1.25-3),
			v * 7,
			null(5, []string{"NL", "DE", "FR"}[i%3]),
			i%3 == 0,
			null(3, t0-v*60_000_000),
			lists(4, []any{float64(v), nil, -0.5}),
			lists(5, []any{"m" + string(rune('0'+i%10))}),
			lists(3, []any{v, v + 1, nil, v + 3}),
			lists(6, []any{true, false}),
			lists(4, []any{t0 + v}),
		}
		if i%5 == 2 { // a required list column may still be empty
			rows[i][9] = []any{}
		}
		if rows[i][9] == nil {
			rows[i][9] = []any{nil, "m9"}
		}
		if rows[i][11] == nil {
			rows[i][11] = []any{nil}
		}
	}
	return rows
}

func writeDataset(t *testing.T, dir string, cols []Column, rows [][]any, opts WriterOptions, m Manifest) Manifest {
	t.Helper()
	w, err := NewWriter(dir, cols, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	out, err := w.Close(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// fileInfo describes a file as FileInfo does, from its bytes on disk.
func fileInfo(t *testing.T, dir, name string, rows int64) FileInfo {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return FileInfo{Path: name, Rows: rows, Bytes: int64(len(b)), SHA256: hex.EncodeToString(sum[:])}
}

func TestWriterRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fraud_train")
	rows := allRows(10)
	in := Manifest{
		Mode:  ModeAsServed,
		Spine: "stream:transactions",
		Label: "is_fraud",
		Features: []FeatureRef{
			{View: "user_txn", Feature: "last_amount", Version: 3, Column: "user_txn__last_amount"},
			{View: "user_txn", Feature: "recent_amounts", Version: 3, Column: "user_txn__recent_amounts"},
		},
		SourceOffsets: map[string]map[int32]int64{"transactions": {0: 120, 1: 98}},
	}
	got := writeDataset(t, dir, allColumns, rows, testOptions(4, 3), in)

	want := in
	want.ID = got.ID
	want.CreatedAt = fixedNow
	want.Columns = allColumns
	want.Rows = 10
	want.Files = []FileInfo{
		fileInfo(t, dir, "part-00000.parquet", 4),
		fileInfo(t, dir, "part-00001.parquet", 4),
		fileInfo(t, dir, "part-00002.parquet", 2),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("manifest (-want +got):\n%s", diff)
	}
	if len(got.ID) != 27 {
		t.Errorf("manifest id %q is not a ksuid", got.ID)
	}
	read, err := ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, read); diff != "" {
		t.Errorf("ReadManifest (-closed +read):\n%s", diff)
	}

	var back [][]any
	for _, f := range got.Files {
		part, err := parquet.ReadFile[allRow](filepath.Join(dir, f.Path))
		if err != nil {
			t.Fatalf("read %s: %v", f.Path, err)
		}
		for _, r := range part {
			back = append(back, r.values())
		}
	}
	if diff := cmp.Diff(rows, back); diff != "" {
		t.Errorf("rows read back (-written +read):\n%s", diff)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	wantNames := []string{"manifest.json", "part-00000.parquet", "part-00001.parquet", "part-00002.parquet", "profile.json"}
	if diff := cmp.Diff(wantNames, names); diff != "" {
		t.Errorf("directory entries (-want +got):\n%s", diff)
	}
}

func TestPartFormat(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ds")
	m := writeDataset(t, dir, allColumns, allRows(10), testOptions(4, 3), Manifest{})
	f, err := os.Open(filepath.Join(dir, m.Files[0].Path))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	wantSchema := `message dataset {
	required binary user_id (STRING);
	required int64 timestamp (TIMESTAMP(isAdjustedToUTC=true,unit=MICROS));
	optional boolean is_fraud;
	optional double user_txn__last_amount;
	required int64 user_txn__txn_count_1h (INT(64,true));
	optional binary user_txn__last_country (STRING);
	required boolean user_txn__last_big;
	optional int64 user_txn__last_ts (TIMESTAMP(isAdjustedToUTC=true,unit=MICROS));
	optional group user_txn__recent_amounts (LIST) {
		repeated group list {
			optional double element;
		}
	}
	required group user_txn__recent_merchants (LIST) {
		repeated group list {
			optional binary element (STRING);
		}
	}
	optional group user_txn__recent_counts (LIST) {
		repeated group list {
			optional int64 element (INT(64,true));
		}
	}
	required group user_txn__recent_flags (LIST) {
		repeated group list {
			optional boolean element;
		}
	}
	optional group user_txn__recent_times (LIST) {
		repeated group list {
			optional int64 element (TIMESTAMP(isAdjustedToUTC=true,unit=MICROS));
		}
	}
}`
	if diff := cmp.Diff(wantSchema, pf.Schema().String()); diff != "" {
		t.Errorf("part schema (-want +got):\n%s", diff)
	}
	var groupRows []int64
	for _, rg := range pf.Metadata().RowGroups {
		groupRows = append(groupRows, rg.NumRows)
		for _, c := range rg.Columns {
			if c.MetaData.Codec != format.Zstd {
				t.Errorf("column %v: codec %v, want ZSTD", c.MetaData.PathInSchema, c.MetaData.Codec)
			}
		}
	}
	if diff := cmp.Diff([]int64{3, 1}, groupRows); diff != "" {
		t.Errorf("row group sizes of a 4-row part with RowGroupRows 3 (-want +got):\n%s", diff)
	}
}

func TestWriterEmptyDataset(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "empty")
	m := writeDataset(t, dir, allColumns, nil, testOptions(4, 3), Manifest{})
	if diff := cmp.Diff([]FileInfo{fileInfo(t, dir, "part-00000.parquet", 0)}, m.Files); diff != "" {
		t.Errorf("files of an empty dataset (-want +got):\n%s", diff)
	}
	rows, err := parquet.ReadFile[allRow](filepath.Join(dir, "part-00000.parquet"))
	if err != nil || len(rows) != 0 {
		t.Errorf("empty part: %d rows, err %v; want 0 rows", len(rows), err)
	}
	if m.Rows != 0 || m.Mode != ModeEventTime {
		t.Errorf("manifest rows %d mode %q, want 0 and %q", m.Rows, m.Mode, ModeEventTime)
	}
}

func TestWriterPartBoundary(t *testing.T) {
	// Exactly two full parts: no third, empty part.
	dir := filepath.Join(t.TempDir(), "ds")
	m := writeDataset(t, dir, allColumns, allRows(8), testOptions(4, 0), Manifest{})
	var got []int64
	for _, f := range m.Files {
		got = append(got, f.Rows)
	}
	if diff := cmp.Diff([]int64{4, 4}, got); diff != "" {
		t.Errorf("part rows (-want +got):\n%s", diff)
	}
}

func TestNewWriterDirectory(t *testing.T) {
	base := t.TempDir()
	full := filepath.Join(base, "full")
	if err := os.MkdirAll(full, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(full, "old.parquet"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	emptyDir := filepath.Join(base, "empty")
	if err := os.Mkdir(emptyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, dir, wantErr string
	}{
		{"non-empty", full, "dataset directory " + full + " is not empty (it holds old.parquet): choose a new output directory or empty this one"},
		{"a file", file, "open dataset directory: open " + file + ": not a directory"},
		{"no name", "", "no dataset directory given (name a new output directory)"},
		{"empty", emptyDir, ""},
		{"missing, with parents", filepath.Join(base, "a", "b"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := NewWriter(tt.dir, allColumns, WriterOptions{})
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("NewWriter error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Abort(); err != nil {
				t.Fatal(err)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(full, "old.parquet")); err != nil {
		t.Errorf("refused directory was changed: %v", err)
	}
}

func TestNewWriterColumns(t *testing.T) {
	tests := []struct {
		name    string
		cols    []Column
		opts    WriterOptions
		wantErr string
	}{
		{"no columns", nil, WriterOptions{}, "no columns (declare at least one)"},
		{"no name", []Column{{Type: schemas.Int64}}, WriterOptions{}, "column 0 has no name"},
		{"twice", []Column{{Name: "a", Type: schemas.Int64}, {Name: "a", Type: schemas.String}}, WriterOptions{},
			`column "a" is declared twice`},
		{"no type", []Column{{Name: "a"}}, WriterOptions{},
			`column "a": unknown type type(0) (use string, int64, float64, bool or timestamp)`},
		{"negative option", allColumns, WriterOptions{RowsPerPart: -1},
			"writer options: RowsPerPart is -1 (use a positive number, or 0 for the default 1048576)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ds")
			_, err := NewWriter(dir, tt.cols, tt.opts)
			want := "dataset " + dir + ": " + tt.wantErr
			if err == nil || err.Error() != want {
				t.Fatalf("NewWriter error %v, want %q", err, want)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("refused writer left %s behind (stat: %v)", dir, err)
			}
		})
	}
}

func TestWriteRefusesBadRow(t *testing.T) {
	good := allRows(1)[0]
	with := func(col int, v any) []any {
		row := append([]any(nil), good...)
		row[col] = v
		return row
	}
	tests := []struct {
		name    string
		row     []any
		wantErr string
	}{
		{"string for float64", with(3, "12,5"),
			`write row 0: column "user_txn__last_amount": value 12,5 of Go type string does not fit type float64`},
		{"int for int64", with(4, 7),
			`write row 0: column "user_txn__txn_count_1h": value 7 of Go type int does not fit type int64`},
		{"time.Time for timestamp", with(1, fixedNow),
			`write row 0: column "timestamp": value 2026-03-01 12:30:00.123456 +0000 UTC of Go type time.Time does not fit type timestamp`},
		{"null for required", with(0, nil),
			`write row 0: column "user_id": is null but the column is not nullable`},
		{"null for required list", with(9, nil),
			`write row 0: column "user_txn__recent_merchants": is null but the column is not nullable`},
		{"typed slice for list", with(8, []float64{1}),
			`write row 0: column "user_txn__recent_amounts": value [1] of Go type []float64 is not a list ([]any) of float64`},
		{"list item of wrong type", with(10, []any{int64(1), 2.5}),
			`write row 0: column "user_txn__recent_counts": item 1: value 2.5 of Go type float64 does not fit type int64`},
		{"list for plain column", with(2, []any{true}),
			`write row 0: column "is_fraud": value [true] of Go type []interface {} does not fit type bool`},
		{"too few values", good[:3], "write row 0: got 3 values for the 13 columns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ds")
			w, err := NewWriter(dir, allColumns, testOptions(0, 0))
			if err != nil {
				t.Fatal(err)
			}
			err = w.Write(tt.row)
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("Write error %v, want %q", err, tt.wantErr)
			}
			// The writer goes on; the refused row left no trace.
			if err := w.Write(good); err != nil {
				t.Fatal(err)
			}
			m, err := w.Close(Manifest{})
			if err != nil {
				t.Fatal(err)
			}
			rows, err := parquet.ReadFile[allRow](filepath.Join(dir, m.Files[0].Path))
			if err != nil {
				t.Fatal(err)
			}
			if m.Rows != 1 || len(rows) != 1 || rows[0].UserID != good[0] {
				t.Errorf("after a refused row: manifest rows %d, %d rows in the part; want just the good row", m.Rows, len(rows))
			}
			p, err := ReadProfile(dir)
			if err != nil {
				t.Fatal(err)
			}
			if p.Rows != 1 || p.Features[0].Count != 1 {
				t.Errorf("after a refused row: profile rows %d, count %d; want 1", p.Rows, p.Features[0].Count)
			}
		})
	}
}

func TestCloseRefusesBadManifest(t *testing.T) {
	tests := []struct {
		name    string
		m       Manifest
		wantErr string
	}{
		{"unknown mode", Manifest{Mode: "latest"}, `unknown mode "latest" (use event_time or as_served)`},
		{"feature on a spine column", Manifest{Features: []FeatureRef{{View: "v", Feature: "f", Version: 1, Column: "user_id"}}},
			`feature v:f names column "user_id", which is not a feature column of the dataset`},
		{"feature on no column", Manifest{Features: []FeatureRef{{View: "v", Feature: "f", Version: 1, Column: "v__f"}}},
			`feature v:f names column "v__f", which is not a feature column of the dataset`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ds")
			w, err := NewWriter(dir, allColumns, testOptions(0, 0))
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Write(allRows(1)[0]); err != nil {
				t.Fatal(err)
			}
			_, err = w.Close(tt.m)
			want := "dataset " + dir + ": manifest: " + tt.wantErr
			if err == nil || err.Error() != want {
				t.Fatalf("Close error %v, want %q", err, want)
			}
			if _, err := ReadManifest(dir); err == nil {
				t.Error("a refused Close wrote a manifest")
			}
			// The writer stays open: a corrected manifest closes it.
			m, err := w.Close(Manifest{Mode: ModeEventTime})
			if err != nil {
				t.Fatal(err)
			}
			if m.Rows != 1 {
				t.Errorf("rows %d, want 1", m.Rows)
			}
		})
	}
}

func TestWriterAfterClose(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ds")
	w, err := NewWriter(dir, allColumns, testOptions(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Close(Manifest{ID: "given", CreatedAt: fixedNow.In(time.FixedZone("CET", 3600))}); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(allRows(1)[0]); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close: %v, want ErrClosed", err)
	}
	if _, err := w.Close(Manifest{}); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close: %v, want ErrClosed", err)
	}
	if err := w.Abort(); err != nil {
		t.Errorf("Abort after Close: %v", err)
	}
	m, err := ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A given id is kept; a given time is kept, in UTC.
	if m.ID != "given" || !m.CreatedAt.Equal(fixedNow) || m.CreatedAt.Location() != time.UTC {
		t.Errorf("manifest id %q created_at %v, want given and %v", m.ID, m.CreatedAt, fixedNow)
	}
}

func TestAbort(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "ds")
	w, err := NewWriter(dir, allColumns, testOptions(4, 0))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range allRows(6) { // one finished part, one open
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Abort left %s (stat: %v)", dir, err)
	}
	if err := w.Write(allRows(1)[0]); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Abort: %v, want ErrClosed", err)
	}

	// In a directory the writer did not create, Abort empties it but keeps it.
	kept := filepath.Join(base, "kept")
	if err := os.Mkdir(kept, 0o755); err != nil {
		t.Fatal(err)
	}
	w, err = NewWriter(kept, allColumns, testOptions(4, 0))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range allRows(5) {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(kept)
	if err != nil || len(entries) != 0 {
		t.Errorf("after Abort %s holds %v (err %v), want nothing", kept, entries, err)
	}
}

func TestReadUnfinishedDataset(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ds")
	w, err := NewWriter(dir, allColumns, testOptions(4, 0))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range allRows(5) {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	_, err = ReadManifest(dir)
	want := "read dataset " + dir + ": no manifest.json, so the directory is not a finished dataset (build it again)"
	if err == nil || err.Error() != want {
		t.Errorf("ReadManifest of an unfinished dataset: %v, want %q", err, want)
	}
	if _, err := ReadProfile(dir); err == nil || !strings.Contains(err.Error(), "no profile.json") {
		t.Errorf("ReadProfile of an unfinished dataset: %v, want a missing profile.json", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestFile), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = ReadManifest(dir)
	want = "read dataset " + dir + ": manifest.json: unexpected end of JSON input"
	if err == nil || err.Error() != want {
		t.Errorf("ReadManifest of a broken manifest: %v, want %q", err, want)
	}
}
