package train

import (
	"path/filepath"
	"testing"
)

func BenchmarkWrite(b *testing.B) {
	rows := manyRows(100_000)
	n := 0
	for b.Loop() {
		dir := filepath.Join(b.TempDir(), "ds")
		w, err := NewWriter(dir, manyColumns, WriterOptions{})
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
		n += len(rows)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "rows/s")
}
