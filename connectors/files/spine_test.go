package files

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/schemas"
)

// at returns a UTC time as µs since the Unix epoch.
func at(year int, month time.Month, day, hour, minute, sec, micro int) int64 {
	return time.Date(year, month, day, hour, minute, sec, micro*1000, time.UTC).UnixMicro()
}

// writeFile writes content to a file named name in a fresh directory and
// returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// readAll reads every row of a spine and closes it.
func readAll(t *testing.T, sp Spine) [][]any {
	t.Helper()
	defer sp.Close()
	var rows [][]any
	for {
		row := make([]any, len(sp.Columns()))
		err := sp.Next(row)
		if errors.Is(err, io.EOF) {
			return rows
		}
		if err != nil {
			t.Fatalf("next after %d rows: %v", len(rows), err)
		}
		rows = append(rows, row)
	}
}

// readErr opens path and reads it to the end, returning the first error
// other than io.EOF, or nil.
func readErr(path, timestampColumn string, keyTypes map[string]schemas.Type) error {
	sp, err := OpenSpine(path, timestampColumn, keyTypes)
	if err != nil {
		return err
	}
	defer sp.Close()
	row := make([]any, len(sp.Columns()))
	for {
		if err := sp.Next(row); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

func TestOpenSpineArguments(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name     string
		path     string
		ts       string
		keyTypes map[string]schemas.Type
		want     string
	}{{
		name: "unknown extension",
		path: filepath.Join(dir, "spine.json"),
		want: "spine {path}: unknown file type; give a .csv, .csv.gz or .parquet file",
	}, {
		name:     "key type",
		path:     filepath.Join(dir, "spine.csv"),
		keyTypes: map[string]schemas.Type{"score": schemas.Float64},
		want:     `spine {path}: entity key "score" has type float64; keys are string or int64`,
	}, {
		name:     "key is the timestamp",
		path:     filepath.Join(dir, "spine.csv"),
		ts:       "user_id",
		keyTypes: map[string]schemas.Type{"user_id": schemas.String},
		want:     `spine {path}: column "user_id" is both an entity key and the timestamp column; name the timestamp column with --timestamp-column`,
	}, {
		name: "no file",
		path: filepath.Join(dir, "absent.parquet"),
		want: "spine: open {path}: no such file or directory",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := OpenSpine(tt.path, tt.ts, tt.keyTypes)
			want := strings.ReplaceAll(tt.want, "{path}", tt.path)
			if err == nil || err.Error() != want {
				t.Errorf("OpenSpine error:\n got %v\nwant %s", err, want)
			}
		})
	}
}

// TestNextRowAndClose checks Next's argument and a closed spine, for both
// formats.
func TestNextRowAndClose(t *testing.T) {
	csvPath := writeFile(t, "spine.csv", "id,timestamp\na,2026-03-01T12:00:00Z\n")
	pqPath := filepath.Join(t.TempDir(), "spine.parquet")
	writeParquet(t, pqPath, []stringTimeRow{{AccountID: "1", Timestamp: "2026-03-01T12:00:00Z"}})
	for _, tc := range []struct {
		path string
		keys map[string]schemas.Type
	}{
		{csvPath, map[string]schemas.Type{"id": schemas.String}},
		{pqPath, map[string]schemas.Type{"account_id": schemas.Int64}},
	} {
		t.Run(filepath.Ext(tc.path), func(t *testing.T) {
			sp, err := OpenSpine(tc.path, "", tc.keys)
			if err != nil {
				t.Fatal(err)
			}
			n := len(sp.Columns())
			err = sp.Next(make([]any, n+1))
			want := fmt.Sprintf("spine %s: next: row has %d elements for %d columns", tc.path, n+1, n)
			if err == nil || err.Error() != want {
				t.Errorf("Next with a long row:\n got %v\nwant %s", err, want)
			}
			row := make([]any, n)
			if err := sp.Next(row); err != nil {
				t.Fatal(err)
			}
			if want := at(2026, 3, 1, 12, 0, 0, 0); row[sp.TimeIndex()] != want {
				t.Errorf("timestamp = %v, want %d", row[sp.TimeIndex()], want)
			}
			for range 2 {
				if err := sp.Next(row); !errors.Is(err, io.EOF) {
					t.Errorf("Next at the end = %v, want io.EOF", err)
				}
			}
			if err := sp.Close(); err != nil {
				t.Fatal(err)
			}
			if err := sp.Close(); err != nil {
				t.Errorf("second Close = %v, want nil", err)
			}
			if err := sp.Next(row); !errors.Is(err, ErrClosed) {
				t.Errorf("Next after Close = %v, want ErrClosed", err)
			}
		})
	}
}

// liveHeap returns the bytes of live heap objects after a collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// readLarge reads a spine of many rows, checking that the live heap stays
// small halfway through, and returns the row count and the rows whose
// numbers (0-based) are in sample.
func readLarge(t *testing.T, sp Spine, sample map[int]bool) (int, map[int][]any) {
	t.Helper()
	defer sp.Close()
	const maxGrowth = 16 << 20
	base := liveHeap()
	got := map[int][]any{}
	row := make([]any, len(sp.Columns()))
	n := 0
	for ; ; n++ {
		err := sp.Next(row)
		if errors.Is(err, io.EOF) {
			return n, got
		}
		if err != nil {
			t.Fatalf("next after %d rows: %v", n, err)
		}
		if sample[n] {
			got[n] = append([]any(nil), row...)
		}
		if n == 100_000 {
			grown := int64(liveHeap()) - int64(base)
			t.Logf("live heap grew by %d bytes after %d rows", grown, n)
			if grown > maxGrowth {
				t.Errorf("live heap grew by %d bytes after %d rows; want under %d", grown, n, maxGrowth)
			}
		}
	}
}

func TestLargeSpines(t *testing.T) {
	// The label makes a row long, so that holding all rows would take far
	// more than readLarge allows.
	label := strings.Repeat("x", 100)
	rowAt := func(i int) []any {
		return []any{fmt.Sprintf("u%d", i), int64(i % 1000), at(2026, 1, 1, 0, 0, 0, 0) + int64(i)*1_000_000, label + fmt.Sprint(i)}
	}
	const rows = 200_000
	sample := map[int]bool{0: true, 123_456: true, rows - 1: true}
	want := map[int][]any{}
	for i := range sample {
		want[i] = rowAt(i)
	}
	keys := map[string]schemas.Type{"user_id": schemas.String, "account_id": schemas.Int64}

	t.Run("csv", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "large.csv")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(f, "user_id,account_id,timestamp,note")
		for i := range rows {
			r := rowAt(i)
			fmt.Fprintf(f, "%s,%d,%s,%s\n", r[0], r[1], time.UnixMicro(r[2].(int64)).UTC().Format(time.RFC3339), r[3])
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		sp, err := OpenSpine(path, "", keys)
		if err != nil {
			t.Fatal(err)
		}
		n, got := readLarge(t, sp, sample)
		if n != rows {
			t.Errorf("read %d rows, want %d", n, rows)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("sampled rows (-want +got):\n%s", diff)
		}
	})
	t.Run("parquet", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "large.parquet")
		batch := make([]largeRow, 0, 10_000)
		w := newParquetWriter[largeRow](t, path)
		for i := range rows {
			r := rowAt(i)
			batch = append(batch, largeRow{r[0].(string), r[1].(int64), r[2].(int64), r[3].(string)})
			if len(batch) == cap(batch) {
				w.write(batch)
				batch = batch[:0]
			}
		}
		groups := w.close()
		if groups < 10 {
			t.Fatalf("file has %d row groups; the test wants many", groups)
		}
		sp, err := OpenSpine(path, "", keys)
		if err != nil {
			t.Fatal(err)
		}
		n, got := readLarge(t, sp, sample)
		if n != rows {
			t.Errorf("read %d rows, want %d", n, rows)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("sampled rows (-want +got):\n%s", diff)
		}
	})
}
