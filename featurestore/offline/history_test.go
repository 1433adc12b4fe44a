package offline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/schemas"
)

// spreadTraffic makes rows of txnSchema for partitions 0..parts-1 in flushes
// of perFlush rows per partition, event times spread over the three days
// from day0 at random, keys u0..u19. Offsets count up per partition.
func spreadTraffic(seed uint64, parts, flushes, perFlush int) [][]Row {
	rng := rand.New(rand.NewPCG(seed, 11))
	next := make([]int64, parts)
	var batches [][]Row
	for range flushes {
		var batch []Row
		for p := range parts {
			for range perFlush {
				ts := at(time.Duration(rng.Int64N(int64(72 * time.Hour))))
				batch = append(batch, txnRow(fmt.Sprintf("u%d", rng.IntN(20)), ts, int32(p), next[p]))
				next[p]++
			}
		}
		batches = append(batches, batch)
	}
	return batches
}

// collect returns a function for Scan and History that keeps a copy of each
// row it is handed.
func collect(out *[]Row) func(*Row) error {
	return func(r *Row) error {
		c := *r
		c.Values = slices.Clone(r.Values)
		*out = append(*out, c)
		return nil
	}
}

// scanAll scans a stream of the store under dir and returns its rows.
func scanAll(t *testing.T, dir string, schema *schemas.Schema, opts HistoryOptions) []Row {
	t.Helper()
	var got []Row
	if err := Scan(t.Context(), dir, schema.Stream, schema, opts, collect(&got)); err != nil {
		t.Fatalf("scan: %v", err)
	}
	return got
}

// byOffset sorts rows by partition and offset, in place, and returns them.
func byOffset(rows []Row) []Row {
	slices.SortFunc(rows, func(a, b Row) int {
		return cmp.Or(cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
	})
	return rows
}

// flat joins batches of rows.
func flat(batches [][]Row) []Row {
	var out []Row
	for _, b := range batches {
		out = append(out, b...)
	}
	return out
}

// keep returns the rows for which f is true.
func keep(rows []Row, f func(Row) bool) []Row {
	var out []Row
	for _, r := range rows {
		if f(r) {
			out = append(out, r)
		}
	}
	return out
}

func TestScanReadsEveryRow(t *testing.T) {
	dir := t.TempDir()
	s := openSink(t, dir, Options{RowGroupRows: 8})
	batches := spreadTraffic(1, 3, 4, 30)
	writeBatches(t, s, batches)

	got := scanAll(t, dir, txnSchema(), HistoryOptions{})
	// Files come in date and partition order, rows in a file sorted by key,
	// event time and offset.
	for i := 1; i < len(got); i++ {
		a, b := got[i-1], got[i]
		da, db := dateDirName(a.EventTime), dateDirName(b.EventTime)
		if c := cmp.Or(cmp.Compare(da, db), cmp.Compare(a.Partition, b.Partition)); c > 0 {
			t.Fatalf("row %d (%s p%d) before row %d (%s p%d)", i-1, da, a.Partition, i, db, b.Partition)
		}
	}
	want := byOffset(flat(batches))
	if diff := gocmp.Diff(want, byOffset(got)); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
}

func TestScanMissingStream(t *testing.T) {
	dir := t.TempDir()
	openSink(t, dir, Options{})
	if got := scanAll(t, dir, txnSchema(), HistoryOptions{}); len(got) != 0 {
		t.Errorf("scan of a stream with no files gave %d rows", len(got))
	}
}

func TestScanBelow(t *testing.T) {
	dir := t.TempDir()
	s := openSink(t, dir, Options{})
	batches := spreadTraffic(2, 3, 5, 10) // offsets 0..49 per partition
	writeBatches(t, s, batches)
	all := flat(batches)

	tests := []struct {
		name  string
		below map[int32]int64
	}{
		{"some partitions", map[int32]int64{0: 10, 1: 25}},
		{"mid file", map[int32]int64{0: 3, 1: 47, 2: 31}},
		{"above every offset", map[int32]int64{2: 1000}},
		{"zero", map[int32]int64{0: 0}},
		{"empty", map[int32]int64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var trace scanTrace
			got := scanAll(t, dir, txnSchema(), HistoryOptions{Below: tt.below, trace: &trace})
			want := keep(all, func(r Row) bool {
				bound, ok := tt.below[r.Partition]
				return ok && r.Offset < bound
			})
			if diff := gocmp.Diff(byOffset(want), byOffset(got)); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
			// No file wholly at or above the bound is opened.
			for _, name := range trace.files {
				p, first, _, _ := parseFileName(name)
				if bound, ok := tt.below[p]; !ok || first >= bound {
					t.Errorf("opened %s, which holds no offset below the bound", name)
				}
			}
		})
	}
}

func TestScanTimeRange(t *testing.T) {
	dir := t.TempDir()
	s := openSink(t, dir, Options{})
	batches := spreadTraffic(3, 2, 3, 40)
	writeBatches(t, s, batches)
	all := flat(batches)
	const d1, d2, d3 = "date=2026-03-01", "date=2026-03-02", "date=2026-03-03"

	tests := []struct {
		name     string
		from, to int64
		dirs     []string
	}{
		{"unbounded", 0, 0, []string{d1, d2, d3}},
		{"from the second day", at(24 * time.Hour), 0, []string{d2, d3}},
		{"until the second day", 0, at(24 * time.Hour), []string{d1}},
		{"within one day", at(30 * time.Hour), at(40 * time.Hour), []string{d2}},
		{"across midnight", at(20 * time.Hour), at(28 * time.Hour), []string{d1, d2}},
		{"up to the last µs of a day", at(6 * time.Hour), at(24*time.Hour) + 1, []string{d1, d2}},
		{"after every event", at(100 * time.Hour), 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var trace scanTrace
			got := scanAll(t, dir, txnSchema(), HistoryOptions{From: tt.from, To: tt.to, trace: &trace})
			want := keep(all, func(r Row) bool {
				return (tt.from == 0 || r.EventTime >= tt.from) && (tt.to == 0 || r.EventTime < tt.to)
			})
			if len(want) == 0 && tt.dirs != nil {
				t.Fatal("the case keeps no row; pick another range")
			}
			if diff := gocmp.Diff(byOffset(want), byOffset(got)); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
			if diff := gocmp.Diff(tt.dirs, trace.dirs); diff != "" {
				t.Errorf("date directories read (-want +got):\n%s", diff)
			}
			for _, name := range trace.files {
				if !slices.ContainsFunc(tt.dirs, func(d string) bool { return fileInDir(dir, d, name) }) {
					t.Errorf("opened %s outside the date directories in range", name)
				}
			}
		})
	}
}

// fileInDir reports whether the txns stream's date directory holds a file.
func fileInDir(dir, date, name string) bool {
	_, err := os.Stat(filepath.Join(streamDir(dir, "txns"), date, name))
	return err == nil
}

// TestScanSkipsRowGroups checks that row groups whose statistics lie outside
// the bounds are not read. Keys rise with event time and offset, so each row
// group of 10 rows holds 10 minutes and 10 offsets of its own.
func TestScanSkipsRowGroups(t *testing.T) {
	dir := t.TempDir()
	s := openSink(t, dir, Options{RowGroupRows: 10})
	var all []Row
	for i := range int64(100) {
		all = append(all, txnRow(fmt.Sprintf("u%03d", i), at(time.Duration(i)*time.Minute), 0, i))
	}
	addAll(t, s, txnSchema(), all...)
	flush(t, s)

	tests := []struct {
		name              string
		opts              HistoryOptions
		read, skipped     int
		firstRow, lastRow int64
	}{
		{"event time", HistoryOptions{From: at(35 * time.Minute), To: at(52 * time.Minute)}, 3, 7, 35, 51},
		{"from only", HistoryOptions{From: at(90 * time.Minute)}, 1, 9, 90, 99},
		{"offset", HistoryOptions{Below: map[int32]int64{0: 25}}, 3, 7, 0, 24},
		{"both", HistoryOptions{To: at(60 * time.Minute), Below: map[int32]int64{0: 15}}, 2, 8, 0, 14},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var trace scanTrace
			tt.opts.trace = &trace
			got := scanAll(t, dir, txnSchema(), tt.opts)
			if diff := gocmp.Diff(all[tt.firstRow:tt.lastRow+1], byOffset(got)); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
			if trace.groupsRead != tt.read || trace.groupsSkipped != tt.skipped {
				t.Errorf("row groups read, skipped = %d, %d; want %d, %d",
					trace.groupsRead, trace.groupsSkipped, tt.read, tt.skipped)
			}
		})
	}
}

func TestScanSchemaEvolution(t *testing.T) {
	v1, v2 := ordersV1(), ordersV2()
	row := func(user string, offset int64, values ...any) Row {
		return Row{Values: values, Key: user, EventID: user, EventTime: at(time.Duration(offset) * time.Hour),
			Arrival: at(0), Offset: offset}
	}
	dir := t.TempDir()
	s := openSink(t, dir, Options{})
	addAll(t, s, v1, row("a", 0, "a", int64(1), at(0)), row("b", 1, "b", int64(-7), at(time.Hour)))
	flush(t, s)
	addAll(t, s, v2, row("c", 2, "c", 2.5, at(2*time.Hour), "NL", "app"))
	flush(t, s)

	// The version 1 file lacks country (null) and channel (its default);
	// its INT64 qty reads widened.
	want := []Row{
		row("a", 0, "a", 1.0, at(0), nil, "web"),
		row("b", 1, "b", -7.0, at(time.Hour), nil, "web"),
		row("c", 2, "c", 2.5, at(2*time.Hour), "NL", "app"),
	}
	if diff := gocmp.Diff(want, byOffset(scanAll(t, dir, v2, HistoryOptions{}))); diff != "" {
		t.Errorf("rows read with version 2 (-want +got):\n%s", diff)
	}

	// A version 3 adding a field that is neither nullable nor defaulted, and
	// version 1 reading a file written after qty was widened, fail.
	v3 := ordersV2()
	v3.Version = 3
	v3.Fields = append(v3.Fields, schemas.Field{Name: "region", Type: schemas.String})
	tests := []struct {
		name    string
		schema  *schemas.Schema
		problem string
	}{
		{"added field without a value", v3,
			`field "region": version 3 added the field without a default and not nullable, so older files have no value for it; make it nullable or give it a default`},
		{"narrowed field", v1, `column "qty": is DOUBLE; version 1 of the schema makes it int64`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Scan(t.Context(), dir, "orders", tt.schema, HistoryOptions{}, func(*Row) error { return nil })
			if err == nil || !strings.Contains(err.Error(), tt.problem) {
				t.Errorf("Scan error = %v, want one containing %q", err, tt.problem)
			}
		})
	}
}

func TestScanCompositeKey(t *testing.T) {
	schema := &schemas.Schema{
		Stream:  "visits",
		Version: 1,
		Fields: []schemas.Field{
			{Name: "site", Type: schemas.String},
			{Name: "user", Type: schemas.Int64},
			{Name: "ts", Type: schemas.Timestamp},
		},
		TimeField: "ts",
		KeyFields: []string{"site", "user"},
	}
	dir := t.TempDir()
	s := openSink(t, dir, Options{})
	values := []any{"a|b", int64(42), at(0)}
	key := schema.Key(&schemas.Event{Values: values})
	addAll(t, s, schema, Row{Values: values, Key: key, EventID: "x", EventTime: at(0), Arrival: at(0)})
	flush(t, s)
	got := scanAll(t, dir, schema, HistoryOptions{})
	if len(got) != 1 || got[0].Key != `a\|b|42` {
		t.Errorf("rows = %+v, want one with key %q", got, `a\|b|42`)
	}
}

func TestScanStops(t *testing.T) {
	dir := t.TempDir()
	s := openSink(t, dir, Options{})
	writeBatches(t, s, spreadTraffic(4, 2, 2, 400)) // 1,600 rows
	errStop := errors.New("stop")
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()

	tests := []struct {
		name    string
		ctx     func() (context.Context, context.CancelFunc)
		fn      func(calls int, cancel context.CancelFunc) error
		wantErr error
		maxCall int
	}{
		{"error from fn", nil, func(calls int, _ context.CancelFunc) error {
			if calls == 3 {
				return errStop
			}
			return nil
		}, errStop, 3},
		{"cancelled in fn", nil, func(calls int, cancel context.CancelFunc) error {
			if calls == 10 {
				cancel()
			}
			return nil
		}, context.Canceled, 10 + scanBatch},
		{"cancelled before", func() (context.Context, context.CancelFunc) { return cancelled, func() {} },
			func(int, context.CancelFunc) error { return nil }, context.Canceled, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			if tt.ctx != nil {
				ctx, cancel = tt.ctx()
			}
			defer cancel()
			calls := 0
			err := Scan(ctx, dir, "txns", txnSchema(), HistoryOptions{}, func(*Row) error {
				calls++
				return tt.fn(calls, cancel)
			})
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Scan error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == errStop && err != errStop {
				t.Errorf("Scan error = %v, want fn's error unchanged", err)
			}
			if calls > tt.maxCall {
				t.Errorf("fn called %d times, want at most %d", calls, tt.maxCall)
			}
		})
	}
}

func TestHistorySnapshot(t *testing.T) {
	dir := t.TempDir()
	s := openSink(t, dir, Options{})
	batches := spreadTraffic(5, 3, 3, 20)
	writeBatches(t, s, batches)
	s.Note("txns", 1, 70) // an invalid record
	flush(t, s)
	// Buffered rows are not committed, so History leaves them out.
	addAll(t, s, txnSchema(), txnRow("u1", at(time.Hour), 0, 60), txnRow("u1", at(time.Hour), 2, 60))

	// ReadHistory, without the sink, stops after each partition's last
	// row: the invalid record is left to the caller.
	sinkRead := func(ctx context.Context, opts HistoryOptions, fn func(*Row) error) (map[int32]int64, error) {
		return s.History(ctx, "txns", txnSchema(), opts, fn)
	}
	fileRead := func(ctx context.Context, opts HistoryOptions, fn func(*Row) error) (map[int32]int64, error) {
		return ReadHistory(ctx, dir, "txns", txnSchema(), opts, fn)
	}
	tests := []struct {
		name       string
		read       func(context.Context, HistoryOptions, func(*Row) error) (map[int32]int64, error)
		below      map[int32]int64
		wantOffset map[int32]int64
	}{
		{"committed", sinkRead, nil, map[int32]int64{0: 60, 1: 71, 2: 60}},
		{"narrowed", sinkRead, map[int32]int64{0: 5, 1: 100}, map[int32]int64{0: 5, 1: 71}},
		{"files", fileRead, nil, map[int32]int64{0: 60, 1: 60, 2: 60}},
		{"files narrowed", fileRead, map[int32]int64{0: 5, 1: 100}, map[int32]int64{0: 5, 1: 60}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []Row
			offsets, err := tt.read(t.Context(), HistoryOptions{Below: tt.below}, collect(&got))
			if err != nil {
				t.Fatal(err)
			}
			if diff := gocmp.Diff(tt.wantOffset, offsets); diff != "" {
				t.Errorf("offsets (-want +got):\n%s", diff)
			}
			want := keep(flat(batches), func(r Row) bool {
				bound, ok := tt.wantOffset[r.Partition]
				return ok && r.Offset < bound
			})
			if diff := gocmp.Diff(byOffset(want), byOffset(got)); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
		})
	}
	if got := s.Resume("txns"); !gocmp.Equal(got, map[int32]int64{0: 60, 1: 71, 2: 60}) {
		t.Errorf("Resume = %v after History", got)
	}

	s.Close()
	if _, err := s.History(t.Context(), "txns", txnSchema(), HistoryOptions{}, collect(new([]Row))); !errors.Is(err, ErrClosed) {
		t.Errorf("History after Close: error %v, want ErrClosed", err)
	}
}

// TestHistoryHoldsOffCompaction starts a compaction of the day History is
// reading and flushes new rows while it reads: History sees each row below
// its snapshot once and nothing above it, and the compaction swaps its files
// only after History returns.
func TestHistoryHoldsOffCompaction(t *testing.T) {
	dir := t.TempDir()
	s := openSink(t, dir, Options{RowGroupRows: 16})
	batches := dayTraffic(6, 3, 20, 20) // 20 files per partition of day0
	writeBatches(t, s, batches)
	snapshot := s.Resume("txns")
	late := dayTraffic(7, 3, 21, 20)[20] // offsets 400..419, day0 mostly

	type result struct {
		stats CompactStats
		err   error
	}
	compacted := make(chan result, 1)
	var got []Row
	keepRow := collect(&got)
	offsets, err := s.History(t.Context(), "txns", txnSchema(), HistoryOptions{}, func(r *Row) error {
		if len(got) == 0 {
			go func() {
				stats, err := s.Compact(t.Context(), "txns", day0)
				compacted <- result{stats, err}
			}()
			writeBatches(t, s, [][]Row{late})
			select {
			case <-compacted:
				t.Error("a compaction finished while History was reading")
			case <-time.After(100 * time.Millisecond):
			}
		}
		return keepRow(r)
	})
	if err != nil {
		t.Fatal(err)
	}
	res := <-compacted
	if res.err != nil || res.stats.Files != 63 || res.stats.Written != 3 {
		t.Fatalf("Compact = %+v, %v; want 63 files merged into 3", res.stats, res.err)
	}
	if diff := gocmp.Diff(snapshot, offsets); diff != "" {
		t.Errorf("offsets (-want +got):\n%s", diff)
	}
	if diff := gocmp.Diff(byOffset(flat(batches)), byOffset(got)); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}

	// After the swap, History reads the merged files and the late rows.
	got = nil
	if _, err := s.History(t.Context(), "txns", txnSchema(), HistoryOptions{}, collect(&got)); err != nil {
		t.Fatal(err)
	}
	if diff := gocmp.Diff(byOffset(append(flat(batches), late...)), byOffset(got)); diff != "" {
		t.Errorf("rows after the compaction (-want +got):\n%s", diff)
	}
}

// TestHistoryWhileCompactingAndFlushing runs History over and over while
// rows are flushed and closed days compacted: each sees exactly the rows
// below the offsets it returns.
func TestHistoryWhileCompactingAndFlushing(t *testing.T) {
	dir := t.TempDir()
	s := openSink(t, dir, Options{RowGroupRows: 16})
	batches := dayTraffic(8, 3, 40, 10)
	all := flat(batches)
	done := make(chan struct{})
	var wg sync.WaitGroup
	var compactErr, historyErr error
	compactions, histories := 0, 0
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			stats, err := s.CompactClosedDays(t.Context(), day0.Add(26*time.Hour))
			if err != nil {
				compactErr = err
				return
			}
			if stats.Files > 0 {
				compactions++
			}
		}
	})
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			var got []Row
			offsets, err := s.History(t.Context(), "txns", txnSchema(), HistoryOptions{}, collect(&got))
			if err != nil {
				historyErr = err
				return
			}
			want := keep(all, func(r Row) bool { return r.Offset < offsets[r.Partition] })
			if diff := gocmp.Diff(byOffset(want), byOffset(got)); diff != "" {
				historyErr = fmt.Errorf("history %d at %v (-want +got):\n%s", histories, offsets, diff)
				return
			}
			histories++
		}
	})
	writeBatches(t, s, batches)
	close(done)
	wg.Wait()
	if compactErr != nil {
		t.Fatal(compactErr)
	}
	if historyErr != nil {
		t.Fatal(historyErr)
	}
	t.Logf("%d histories read while %d compactions ran", histories, compactions)
}

// BenchmarkScan scans 480,000 rows of 8 partitions over two days.
func BenchmarkScan(b *testing.B) {
	dir := b.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	const parts, perPart = 8, 60_000
	for f := range int64(4) {
		var batch []Row
		for p := range int32(parts) {
			for i := range int64(perPart / 4) {
				ts := at(time.Duration(rng.Int64N(int64(48 * time.Hour))))
				batch = append(batch, txnRow(fmt.Sprintf("u%05d", rng.IntN(20000)), ts, p, f*perPart/4+i))
			}
		}
		writeBatches(b, s, [][]Row{batch})
	}
	var rows int64
	for b.Loop() {
		err := Scan(b.Context(), dir, "txns", txnSchema(), HistoryOptions{}, func(*Row) error {
			rows++
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	if rows != int64(b.N)*parts*perPart {
		b.Fatalf("scanned %d rows in %d scans, want %d each", rows, b.N, parts*perPart)
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}

func ExampleSink_History() {
	dir, err := os.MkdirTemp("", "offline")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	sink, err := Open(dir, Options{})
	if err != nil {
		panic(err)
	}
	defer sink.Close()

	for offset := range int64(3) {
		sink.Add(txnSchema(), txnRow("u1", at(time.Duration(offset)*time.Hour), 0, offset))
	}
	if err := sink.Flush(context.Background()); err != nil {
		panic(err)
	}
	sink.Add(txnSchema(), txnRow("u2", at(0), 0, 3)) // buffered, not committed

	next, err := sink.History(context.Background(), "txns", txnSchema(), HistoryOptions{From: at(time.Hour)},
		func(r *Row) error {
			fmt.Println(r.Key, r.Offset, r.Values[1])
			return nil
		})
	if err != nil {
		panic(err)
	}
	fmt.Println("next", next)
	// Output:
	// u1 1 1.5
	// u1 2 2.5
	// next map[0:3]
}

// TestReadHistoryEmpty reads a store that holds no files.
func TestReadHistoryEmpty(t *testing.T) {
	if offsets, err := ReadHistory(t.Context(), t.TempDir(), "txns", txnSchema(), HistoryOptions{}, collect(new([]Row))); err != nil || len(offsets) != 0 {
		t.Errorf("a store without files: offsets %v, error %v; want none", offsets, err)
	}
}

func TestBelowOf(t *testing.T) {
	final := func(dir string, p int32, first, last int64) string { return dir + "/" + fileName(p, first, last) }
	temp := func(dir string, p int32, first, last int64) string {
		return dir + "/" + tempName(fileName(p, first, last))
	}
	d1, d2 := "date=2026-01-01", "date=2026-01-02"
	tests := []struct {
		name  string
		paths []string
		want  map[int32]int64
	}{
		{"committed", []string{final(d1, 0, 0, 49), final(d2, 0, 10, 99), final(d1, 1, 0, 9)}, map[int32]int64{0: 100, 1: 10}},
		// A commit renamed in date 2 but not yet in date 1: its rows are
		// left out whole.
		{"half renamed", []string{final(d1, 0, 0, 99), temp(d1, 0, 100, 180), final(d2, 0, 101, 199)}, map[int32]int64{0: 100}},
		// A compaction merging committed files of date 1 lowers nothing.
		{"compacting", []string{final(d1, 0, 0, 50), final(d1, 0, 51, 99), temp(d1, 0, 0, 99)}, map[int32]int64{0: 100}},
		{"only a temporary file", []string{temp(d1, 2, 0, 9)}, map[int32]int64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := gocmp.Diff(tt.want, belowOf(tt.paths)); diff != "" {
				t.Errorf("belowOf (-want +got):\n%s", diff)
			}
		})
	}
}
