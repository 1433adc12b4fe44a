package train

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/schemas"
)

// benchRows is the size of the write benchmarks: a million rows of a
// string key, a timestamp, an int64 label and ten float64 features.
const benchRows = 1_000_000

// benchColumns are the columns of the write benchmarks.
func benchColumns() []Column {
	cols := []Column{
		{Name: "user_id", Type: schemas.String},
		{Name: "timestamp", Type: schemas.Timestamp},
		{Name: "row", Type: schemas.Int64},
	}
	for k := range 10 {
		cols = append(cols, Column{Name: fmt.Sprintf("u__last_v%d", k), Type: schemas.Float64, Nullable: true, Feature: true})
	}
	return cols
}

// benchVectors returns n rows of benchColumns: 100,000 users, prices with
// cents, one feature value in a hundred null.
func benchVectors(n int) []Vector {
	rng := rand.New(rand.NewPCG(3, 4))
	vs := make([]Vector, 13)
	users := make([]string, 100_000)
	for i := range users {
		users[i] = fmt.Sprintf("user%d", i)
	}
	vs[0].Str = make([]string, n)
	vs[1].Int = make([]int64, n)
	vs[2].Int = make([]int64, n)
	for i := range n {
		vs[0].Str[i] = users[rng.IntN(len(users))]
		vs[1].Int[i] = 1_700_000_000_000_000 + int64(i)*1000
		vs[2].Int[i] = int64(i)
	}
	for k := 3; k < 13; k++ {
		vs[k].Null = make([]bool, n)
		vs[k].Float = make([]float64, n)
		for i := range n {
			vs[k].Null[i] = rng.IntN(100) == 0
			vs[k].Float[i] = float64(rng.IntN(1_000_000)) / 100
		}
	}
	return vs
}

// boxRows returns the rows of vs as Write takes them.
func boxRows(cols []Column, vs []Vector, n int) [][]any {
	rows := make([][]any, n)
	for i := range rows {
		row := make([]any, len(cols))
		for j, c := range cols {
			if !vs[j].null(i) {
				row[j] = boxAt(c, &vs[j], i)
			}
		}
		rows[i] = row
	}
	return rows
}

// boxAt returns row i of v, a vector of column c, as Write takes it.
func boxAt(c Column, v *Vector, i int) any {
	switch {
	case c.List:
		return v.Lists[i]
	case c.Type == schemas.String:
		return v.Str[i]
	case c.Type == schemas.Float64:
		return v.Float[i]
	case c.Type == schemas.Bool:
		return v.Bool[i]
	}
	return v.Int[i]
}

func BenchmarkWriteRows(b *testing.B) {
	cols := benchColumns()
	rows := boxRows(cols, benchVectors(benchRows), benchRows)
	cpu := cpuTime(b)
	for b.Loop() {
		w, err := NewWriter(filepath.Join(b.TempDir(), "ds"), cols, WriterOptions{})
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range rows {
			if err := w.Write(r); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := w.Close(Manifest{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(benchRows*b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric((cpuTime(b)-cpu).Seconds()/float64(b.N), "cpu-s/op")
}

func BenchmarkWriteBlocks(b *testing.B) {
	cols := benchColumns()
	all := Block{Rows: benchRows, Cols: benchVectors(benchRows)}
	const blockRows = 64 << 10
	cpu := cpuTime(b)
	for b.Loop() {
		w, err := NewWriter(filepath.Join(b.TempDir(), "ds"), cols, WriterOptions{})
		if err != nil {
			b.Fatal(err)
		}
		for lo := 0; lo < all.Rows; lo += blockRows {
			if err := w.WriteBlock(all.slice(lo, min(lo+blockRows, all.Rows))); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := w.Close(Manifest{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(benchRows*b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric((cpuTime(b)-cpu).Seconds()/float64(b.N), "cpu-s/op")
}

// cpuTime returns the CPU time the process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
