package train

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sluicehq/sluice/schemas"
)

// randomRows returns n rows of allColumns drawn at random: nulls wherever a
// column allows them, empty lists and null list items, repeated and unique
// strings, and floats that include NaN, infinities and -0.
func randomRows(n int, seed uint64) [][]any {
	rng := rand.New(rand.NewPCG(seed, 7))
	str := func() any {
		if rng.IntN(3) == 0 {
			return []string{"NL", "DE", "", "FR"}[rng.IntN(4)]
		}
		return "s" + string(rune('a'+rng.IntN(26))) + string(rune('a'+rng.IntN(26)))
	}
	float := func() any {
		switch rng.IntN(40) {
		case 0:
			return math.NaN()
		case 1:
			return math.Inf(1 - 2*rng.IntN(2))
		case 2:
			return math.Copysign(0, -1)
		}
		return rng.NormFloat64() * 1e3
	}
	scalar := map[schemas.Type]func() any{
		schemas.String:    str,
		schemas.Int64:     func() any { return rng.Int64N(1_000_000) - 500_000 },
		schemas.Float64:   float,
		schemas.Bool:      func() any { return rng.IntN(2) == 0 },
		schemas.Timestamp: func() any { return fixedNow.UnixMicro() + rng.Int64N(1e12) },
	}
	rows := make([][]any, n)
	for i := range rows {
		row := make([]any, len(allColumns))
		for j, c := range allColumns {
			if c.Nullable && rng.IntN(6) == 0 {
				continue
			}
			if !c.List {
				row[j] = scalar[c.Type]()
				continue
			}
			items := make([]any, rng.IntN(5))
			for k := range items {
				if rng.IntN(5) != 0 {
					items[k] = scalar[c.Type]()
				}
			}
			row[j] = items
		}
		rows[i] = row
	}
	return rows
}

// vectorsOf returns rows of cols as one vector per column, built apart from
// the Writer's own conversion; columns that are not nullable get no Null.
func vectorsOf(cols []Column, rows [][]any) []Vector {
	vs := make([]Vector, len(cols))
	for j, c := range cols {
		v := &vs[j]
		v.Null = make([]bool, len(rows))
		for i, row := range rows {
			x := row[j]
			v.Null[i] = x == nil
			switch {
			case c.List:
				items, _ := x.([]any)
				v.Lists = append(v.Lists, items)
			case c.Type == schemas.String:
				s, _ := x.(string)
				v.Str = append(v.Str, s)
			case c.Type == schemas.Float64:
				f, _ := x.(float64)
				v.Float = append(v.Float, f)
			case c.Type == schemas.Bool:
				b, _ := x.(bool)
				v.Bool = append(v.Bool, b)
			default:
				n, _ := x.(int64)
				v.Int = append(v.Int, n)
			}
		}
		if !c.Nullable {
			v.Null = nil
		}
	}
	return vs
}

// writeWay is one way to hand a Writer the same rows.
type writeWay struct {
	name    string
	workers int
	write   func(t *testing.T, w *Writer)
}

// writeWays returns ways to write rows, whose columns all holds: row by row,
// in one block, in blocks of random sizes, and mixed.
func writeWays(rows [][]any, all Block) []writeWay {
	rng := rand.New(rand.NewPCG(2, 3))
	writeRows := func(t *testing.T, w *Writer, rows [][]any) {
		for _, r := range rows {
			if err := w.Write(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	writeBlock := func(t *testing.T, w *Writer, lo, hi int) {
		if err := w.WriteBlock(all.slice(lo, hi)); err != nil {
			t.Fatal(err)
		}
	}
	return []writeWay{
		{"rows", 1, func(t *testing.T, w *Writer) { writeRows(t, w, rows) }},
		{"one block", 4, func(t *testing.T, w *Writer) { writeBlock(t, w, 0, all.Rows) }},
		{"random blocks", 2, func(t *testing.T, w *Writer) {
			for lo := 0; lo < all.Rows; {
				hi := min(all.Rows, lo+rng.IntN(700))
				writeBlock(t, w, lo, hi)
				lo = hi
			}
		}},
		{"rows and blocks", 3, func(t *testing.T, w *Writer) {
			for lo := 0; lo < all.Rows; {
				hi := min(all.Rows, lo+1+rng.IntN(200))
				if rng.IntN(2) == 0 {
					writeRows(t, w, rows[lo:hi])
				} else {
					writeBlock(t, w, lo, hi)
				}
				lo = hi
			}
		}},
	}
}

// readAll returns the rows of a finished dataset.
func readAll(t *testing.T, dir string) [][]any {
	t.Helper()
	var rows [][]any
	if _, err := ReadRows(dir, func(row []any) error {
		rows = append(rows, append([]any(nil), row...))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestWriteBlockMatchesWrite writes the same rows row by row, in blocks of
// random sizes that straddle row groups and parts, and mixed, and requires
// the same parts byte for byte, the same rows read back and the same
// profile.
func TestWriteBlockMatchesWrite(t *testing.T) {
	const n = 2_500
	rows := randomRows(n, 1)
	opts := testOptions(1_000, 300) // 300 is not a multiple of the 64-row runs
	opts.ProfileSample = 400        // so that the reservoir replaces values
	var wantFiles []FileInfo
	var wantProfile []byte
	for i, way := range writeWays(rows, Block{Rows: n, Cols: vectorsOf(allColumns, rows)}) {
		t.Run(way.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ds")
			o := opts
			o.Workers = way.workers
			w, err := NewWriter(dir, allColumns, o)
			if err != nil {
				t.Fatal(err)
			}
			way.write(t, w)
			m, err := w.Close(Manifest{})
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Files) != 3 || m.Rows != n {
				t.Fatalf("%d parts of %d rows, want 3 parts of %d rows", len(m.Files), m.Rows, n)
			}
			if diff := cmp.Diff(rows, readAll(t, dir), cmpopts.EquateNaNs()); diff != "" {
				t.Errorf("rows read back (-written +read):\n%s", diff)
			}
			profile, err := os.ReadFile(filepath.Join(dir, ProfileFile))
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				wantFiles, wantProfile = m.Files, profile
				return
			}
			if diff := cmp.Diff(wantFiles, m.Files); diff != "" {
				t.Errorf("parts differ from the rows' (-rows +%s):\n%s", way.name, diff)
			}
			if diff := cmp.Diff(string(wantProfile), string(profile)); diff != "" {
				t.Errorf("profile differs from the rows' (-rows +%s):\n%s", way.name, diff)
			}
		})
	}
}

func TestWriteBlockRefusesBadBlock(t *testing.T) {
	good := Block{Rows: 3, Cols: vectorsOf(allColumns, randomRows(3, 5))}
	with := func(change func(b *Block)) Block {
		b := Block{Rows: good.Rows, Cols: make([]Vector, len(good.Cols))}
		for i, v := range good.Cols {
			b.Cols[i] = v.slice(0, good.Rows)
			b.Cols[i].Null = append([]bool(nil), v.Null...)
			b.Cols[i].Lists = append([][]any(nil), v.Lists...)
		}
		change(&b)
		return b
	}
	tests := []struct {
		name    string
		block   Block
		wantErr string
	}{
		{"too few vectors", Block{Rows: 1, Cols: good.Cols[:2]},
			"write block at row 3: got 2 vectors for the 13 columns"},
		{"short vector", with(func(b *Block) { b.Cols[3].Float = b.Cols[3].Float[:2] }),
			`write block at row 3: column "user_txn__last_amount": 2 values for 3 rows (fill the Vector's Float slice)`},
		{"wrong slice", with(func(b *Block) { b.Cols[4].Float, b.Cols[4].Int = []float64{1, 2, 3}, nil }),
			`write block at row 3: column "user_txn__txn_count_1h": 0 values for 3 rows (fill the Vector's Int slice)`},
		{"short nulls", with(func(b *Block) { b.Cols[2].Null = []bool{false} }),
			`write block at row 3: column "is_fraud": 1 null flags for 3 rows`},
		{"null for required", with(func(b *Block) { b.Cols[0].Null = []bool{false, true, false} }),
			`write row 4: column "user_id": is null but the column is not nullable`},
		{"null for required list", with(func(b *Block) { b.Cols[9].Null = []bool{false, false, true} }),
			`write row 5: column "user_txn__recent_merchants": is null but the column is not nullable`},
		{"list item of wrong type", with(func(b *Block) { b.Cols[10].Lists[0], b.Cols[10].Null[0] = []any{int64(1), 2.5}, false }),
			`write row 3: column "user_txn__recent_counts": item 1: value 2.5 of Go type float64 does not fit type int64`},
		{"negative rows", Block{Rows: -1, Cols: good.Cols},
			"write block at row 3: -1 rows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ds")
			w, err := NewWriter(dir, allColumns, testOptions(0, 0))
			if err != nil {
				t.Fatal(err)
			}
			if err := w.WriteBlock(good); err != nil {
				t.Fatal(err)
			}
			err = w.WriteBlock(tt.block)
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("WriteBlock error %v, want %q", err, tt.wantErr)
			}
			// The writer goes on; the refused block left no trace.
			if err := w.WriteBlock(good); err != nil {
				t.Fatal(err)
			}
			m, err := w.Close(Manifest{})
			if err != nil {
				t.Fatal(err)
			}
			p, err := ReadProfile(dir)
			if err != nil {
				t.Fatal(err)
			}
			if m.Rows != 6 || m.Files[0].Rows != 6 || p.Rows != 6 {
				t.Errorf("after a refused block: manifest rows %d, part rows %d, profile rows %d; want 6",
					m.Rows, m.Files[0].Rows, p.Rows)
			}
		})
	}
}

func TestWriteBlockAfterClose(t *testing.T) {
	w, err := NewWriter(filepath.Join(t.TempDir(), "ds"), allColumns, testOptions(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Close(Manifest{}); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteBlock(Block{Cols: make([]Vector, len(allColumns))}); !errors.Is(err, ErrClosed) {
		t.Errorf("WriteBlock after Close: %v, want ErrClosed", err)
	}
}

// TestWriteBlockPages writes rows enough to fill many pages per column chunk
// in one block and in blocks of random sizes, and requires the same parts
// byte for byte: pages end at the same rows however blocks cut them.
func TestWriteBlockPages(t *testing.T) {
	const n = 150_000
	cols := benchColumns()
	all := Block{Rows: n, Cols: benchVectors(n)}
	rng := rand.New(rand.NewPCG(4, 5))
	var want []FileInfo
	for _, name := range []string{"one block", "random blocks"} {
		dir := filepath.Join(t.TempDir(), "ds")
		w, err := NewWriter(dir, cols, testOptions(100_000, 0))
		if err != nil {
			t.Fatal(err)
		}
		for lo := 0; lo < n; {
			hi := n
			if name != "one block" {
				hi = min(n, lo+rng.IntN(10_000))
			}
			if err := w.WriteBlock(all.slice(lo, hi)); err != nil {
				t.Fatal(err)
			}
			lo = hi
		}
		m, err := w.Close(Manifest{})
		if err != nil {
			t.Fatal(err)
		}
		if want == nil {
			want = m.Files
			continue
		}
		if diff := cmp.Diff(want, m.Files); diff != "" {
			t.Errorf("parts (-one block +%s):\n%s", name, diff)
		}
	}
}

// observeRow is the profile of one row observed value by value, the
// reference the column path must match.
func (p *profiler) observeRow(row []any) {
	for i := range p.cols {
		s := &p.cols[i]
		switch v := row[i].(type) {
		case nil:
			s.nulls++
		case []any:
			s.lists++
			s.items += int64(len(v))
		case string:
			if s.cat != nil {
				s.cat.add(v)
			}
		case int64:
			if s.num != nil {
				s.num.addOne(float64(v))
			}
		case float64:
			if s.num != nil {
				s.num.addOne(v)
			}
		case bool:
			if s.num != nil {
				s.num.addOne(boolNumber(v))
			}
		}
	}
}

// addOne adds x as the statistics are defined, one value at a time.
func (s *numericStats) addOne(x float64) {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		s.nonFinite++
		return
	}
	s.n++
	if s.n == 1 {
		s.min, s.max = x, x
	}
	s.min, s.max = min(s.min, x), max(s.max, x)
	d := x - s.mean
	s.mean += d / float64(s.n)
	s.m2 += d * (x - s.mean)
	if len(s.sample) < s.limit {
		s.sample = append(s.sample, x)
	} else if j := s.rng.Int64N(s.n); j < int64(s.limit) {
		s.sample[j] = x
	}
}

func TestProfileColumnsMatchRows(t *testing.T) {
	const n = 5_000
	cols := slices.Clone(allColumns)
	for i := range cols {
		cols[i].Feature = true // profile every column in full
	}
	rows := randomRows(n, 9)
	vs := vectorsOf(cols, rows)

	byRow := newProfiler(cols, 700)
	for _, r := range rows {
		byRow.observeRow(r)
	}
	byColumn := newProfiler(cols, 700)
	rng := rand.New(rand.NewPCG(6, 7))
	for lo := 0; lo < n; {
		hi := min(n, lo+rng.IntN(900))
		for j := range cols {
			byColumn.observeColumn(j, &vs[j], lo, hi)
		}
		lo = hi
	}
	want, got := byRow.profile(n, 1), byColumn.profile(n, 3)
	if diff := cmp.Diff(want, got, cmpopts.EquateNaNs()); diff != "" {
		t.Errorf("profile by column (-by row +by column):\n%s", diff)
	}
	if c := got.Feature("user_txn__last_amount"); c.Sample != 700 || c.NonFinite == 0 || c.Nulls == 0 {
		t.Errorf("last_amount: sample %d, non-finite %d, nulls %d; want a full reservoir, non-finite values and nulls",
			c.Sample, c.NonFinite, c.Nulls)
	}

	// A float column without nulls goes by a path of its own.
	plain := []Column{{Name: "x", Type: schemas.Float64, Feature: true}}
	var xs []float64
	for i, null := range vs[3].Null {
		if !null {
			xs = append(xs, vs[3].Float[i])
		}
	}
	byRow, byColumn = newProfiler(plain, 700), newProfiler(plain, 700)
	for _, x := range xs {
		byRow.observeRow([]any{x})
	}
	for lo := 0; lo < len(xs); lo += 1000 {
		byColumn.observeColumn(0, &Vector{Float: xs}, lo, min(lo+1000, len(xs)))
	}
	want, got = byRow.profile(int64(len(xs)), 1), byColumn.profile(int64(len(xs)), 1)
	if diff := cmp.Diff(want, got, cmpopts.EquateNaNs()); diff != "" {
		t.Errorf("profile of a float column without nulls (-by row +by column):\n%s", diff)
	}
}
