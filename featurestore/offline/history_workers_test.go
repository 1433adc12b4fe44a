package offline

import (
	"sync"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
)

// TestScanWorkers scans with several files at once: the same rows as one
// at a time, each exactly once.
func TestScanWorkers(t *testing.T) {
	dir := t.TempDir()
	s := openSink(t, dir, Options{RowGroupRows: 8})
	batches := spreadTraffic(1, 3, 4, 30)
	writeBatches(t, s, batches)
	var mu sync.Mutex
	var got []Row
	err := Scan(t.Context(), dir, "txns", txnSchema(), HistoryOptions{Workers: 3}, func(r *Row) error {
		mu.Lock()
		defer mu.Unlock()
		if r.Worker < 0 || r.Worker >= 3 {
			t.Errorf("row of offset %d: worker %d, want 0 to 2", r.Offset, r.Worker)
		}
		c := *r
		c.Worker = 0 // which worker reads a file varies
		c.Values = append([]any(nil), r.Values...)
		got = append(got, c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := gocmp.Diff(byOffset(flat(batches)), byOffset(got)); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
}
