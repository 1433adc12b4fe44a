package offline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/parquet-go/parquet-go/format"
)

// dayTraffic makes rows of txnSchema for partitions 0..parts-1, flushes of
// perFlush rows each per partition: event times spread over day0, every
// seventh row on the next day. Offsets count up per partition.
func dayTraffic(seed uint64, parts, flushes, perFlush int) [][]Row {
	rng := rand.New(rand.NewPCG(seed, 7))
	next := make([]int64, parts)
	var batches [][]Row
	for range flushes {
		var batch []Row
		for p := range parts {
			for range perFlush {
				ts := at(time.Duration(rng.Int64N(int64(24 * time.Hour))))
				if next[p]%7 == 6 {
					ts = at(30 * time.Hour)
				}
				batch = append(batch, txnRow(fmt.Sprintf("u%d", rng.IntN(9)), ts, int32(p), next[p]))
				next[p]++
			}
		}
		batches = append(batches, batch)
	}
	return batches
}

// writeBatches adds and flushes each batch: one file per partition and date
// per batch.
func writeBatches(t testing.TB, s *Sink, batches [][]Row) {
	t.Helper()
	for _, b := range batches {
		for _, r := range b {
			if !s.Add(txnSchema(), r) {
				t.Fatalf("row %s dropped as a duplicate", r.EventID)
			}
		}
		if err := s.Flush(t.Context()); err != nil {
			t.Fatalf("flush: %v", err)
		}
	}
}

// byID indexes rows read back by event id, failing on a duplicate.
func byID(t *testing.T, rows []map[string]any) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, r := range rows {
		id := r["_event_id"].(string)
		if _, dup := out[id]; dup {
			t.Fatalf("event %s stored twice", id)
		}
		out[id] = r
	}
	return out
}

// dateFiles lists the committed files of one date of the txns stream, by
// name.
func dateFiles(t *testing.T, dir, date string) []string {
	t.Helper()
	files, err := Files(dir, "txns")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		if filepath.Base(filepath.Dir(f)) == "date="+date {
			out = append(out, filepath.Base(f))
		}
	}
	return out
}

// checkSorted checks that a file's rows are sorted by key, event time and
// offset.
func checkSorted(t *testing.T, path string) {
	t.Helper()
	rows := mustRead(t, path)
	sorted := slices.IsSortedFunc(rows, func(a, b map[string]any) int {
		return cmp.Or(strings.Compare(a["user_id"].(string), b["user_id"].(string)),
			a["_event_time"].(time.Time).Compare(b["_event_time"].(time.Time)),
			cmp.Compare(a["_offset"].(int64), b["_offset"].(int64)))
	})
	if !sorted {
		t.Errorf("%s: rows not sorted by key, event time and offset", path)
	}
}

// wantCompacted returns the name of the one file per partition a compaction
// of day0 leaves: the smallest and largest offsets of the day's rows.
func wantCompacted(batches [][]Row) []string {
	type span struct{ first, last int64 }
	spans := map[int32]*span{}
	for _, b := range batches {
		for _, r := range b {
			if dateDirName(r.EventTime) != dateDirName(at(0)) {
				continue
			}
			sp := spans[r.Partition]
			if sp == nil {
				sp = &span{r.Offset, r.Offset}
				spans[r.Partition] = sp
			}
			sp.first, sp.last = min(sp.first, r.Offset), max(sp.last, r.Offset)
		}
	}
	var out []string
	for p := range int32(len(spans)) {
		out = append(out, fileName(p, spans[p].first, spans[p].last))
	}
	return out
}

func TestCompactDay(t *testing.T) {
	dir := t.TempDir()
	s := openSink(t, dir, Options{RowGroupRows: 100})
	batches := dayTraffic(1, 3, 20, 20)
	writeBatches(t, s, batches)
	before := byID(t, readStream(t, dir, "txns"))
	day0Before, day1Before := dateFiles(t, dir, "2026-03-01"), dateFiles(t, dir, "2026-03-02")
	if len(day0Before) != 60 {
		t.Fatalf("day0 has %d files before compaction, want 60", len(day0Before))
	}
	resume := s.Resume("txns")

	stats, err := s.Compact(t.Context(), "txns", day0.Add(13*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	day0Rows := 0
	for _, r := range before {
		if r["_event_time"].(time.Time).Before(day0.Add(24 * time.Hour)) {
			day0Rows++
		}
	}
	if stats.Files != 60 || stats.Written != 3 || stats.Rows != int64(day0Rows) || stats.Bytes <= 0 || stats.Duration <= 0 {
		t.Errorf("stats = %+v, want 60 files merged into 3, %d rows, some bytes and time", stats, day0Rows)
	}
	if diff := gocmp.Diff(wantCompacted(batches), dateFiles(t, dir, "2026-03-01")); diff != "" {
		t.Errorf("day0 files after compaction (-want +got):\n%s", diff)
	}
	if diff := gocmp.Diff(day1Before, dateFiles(t, dir, "2026-03-02")); diff != "" {
		t.Errorf("day1 files changed (-want +got):\n%s", diff)
	}
	if diff := gocmp.Diff(before, byID(t, readStream(t, dir, "txns"))); diff != "" {
		t.Errorf("rows after compaction (-before +after):\n%s", diff)
	}
	if diff := gocmp.Diff(resume, s.Resume("txns")); diff != "" {
		t.Errorf("Resume changed (-before +after):\n%s", diff)
	}
	if files := storeFiles(t, dir); slices.ContainsFunc(files, isTemp) {
		t.Errorf("temporary files left: %v", files)
	}
	checkFileRanges(t, dir)
	for _, name := range dateFiles(t, dir, "2026-03-01") {
		path := filepath.Join(dir, "streams/txns/date=2026-03-01", name)
		checkSorted(t, path)
		checkFormat(t, path, 100)
	}

	// Nothing left to do.
	if stats, err := s.Compact(t.Context(), "txns", day0); err != nil || stats.Files != 0 {
		t.Errorf("second Compact = %+v, %v; want nothing done", stats, err)
	}
	// A late event adds a file to the compacted day; the next compaction
	// folds it in.
	late := txnRow("u0", at(time.Hour), 1, s.Resume("txns")[1])
	addAll(t, s, txnSchema(), late)
	flush(t, s)
	if stats, err := s.Compact(t.Context(), "txns", day0); err != nil || stats.Files != 2 || stats.Written != 1 {
		t.Errorf("Compact after a late event = %+v, %v; want 2 files merged into 1", stats, err)
	}
	after := byID(t, readStream(t, dir, "txns"))
	if _, ok := after[late.EventID]; !ok || len(after) != len(before)+1 {
		t.Errorf("after the late event: %d rows (late one present %v), want %d", len(after), ok, len(before)+1)
	}
	checkFileRanges(t, dir)
}

// checkFormat checks a compacted file's codec, row groups and statistics.
func checkFormat(t *testing.T, path string, rowGroupRows int64) {
	t.Helper()
	md := openParquet(t, path).Metadata()
	if len(md.RowGroups) < 2 {
		t.Errorf("%s: %d row groups, want several of at most %d rows", path, len(md.RowGroups), rowGroupRows)
	}
	for i, rg := range md.RowGroups {
		if rg.NumRows > rowGroupRows {
			t.Errorf("%s: row group %d has %d rows, want at most %d", path, i, rg.NumRows, rowGroupRows)
		}
		for _, c := range rg.Columns {
			if c.MetaData.Codec != format.Zstd {
				t.Errorf("%s: column %v: codec %v, want ZSTD", path, c.MetaData.PathInSchema, c.MetaData.Codec)
			}
			if st := c.MetaData.Statistics; c.MetaData.PathInSchema[0] == "_offset" && (st.MinValue == nil || st.MaxValue == nil) {
				t.Errorf("%s: row group %d: _offset has no min/max statistics", path, i)
			}
		}
	}
}

func TestCompactMaxRows(t *testing.T) {
	dir := t.TempDir()
	s := openSink(t, dir, Options{Compact: CompactOptions{MaxRows: 100}})
	// Ten files of 30 rows of partition 0: runs of three files (90 rows),
	// the tenth file alone.
	var batches [][]Row
	for i := range int64(10) {
		var b []Row
		for j := range int64(30) {
			b = append(b, txnRow(fmt.Sprintf("u%d", j%4), at(time.Duration(j)*time.Minute), 0, i*30+j))
		}
		batches = append(batches, b)
	}
	writeBatches(t, s, batches)
	before := byID(t, readStream(t, dir, "txns"))
	stats, err := s.Compact(t.Context(), "txns", day0)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Files != 9 || stats.Written != 3 || stats.Rows != 270 {
		t.Errorf("stats = %+v, want 9 files merged into 3, 270 rows", stats)
	}
	want := []string{"part-p0-0-89.parquet", "part-p0-90-179.parquet", "part-p0-180-269.parquet", "part-p0-270-299.parquet"}
	if diff := gocmp.Diff(want, dateFiles(t, dir, "2026-03-01")); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	if diff := gocmp.Diff(before, byID(t, readStream(t, dir, "txns"))); diff != "" {
		t.Errorf("rows (-before +after):\n%s", diff)
	}
	checkFileRanges(t, dir)
}

func TestCompactManyPasses(t *testing.T) {
	dir := t.TempDir()
	// Three files at a time: 25 files take three passes.
	s := openSink(t, dir, Options{Compact: CompactOptions{fanIn: 3}})
	batches := dayTraffic(2, 1, 25, 8)
	writeBatches(t, s, batches)
	before := byID(t, readStream(t, dir, "txns"))
	stats, err := s.Compact(t.Context(), "txns", day0)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Files != 25 || stats.Written != 1 {
		t.Errorf("stats = %+v, want 25 files merged into 1", stats)
	}
	if diff := gocmp.Diff(wantCompacted(batches), dateFiles(t, dir, "2026-03-01")); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	if diff := gocmp.Diff(before, byID(t, readStream(t, dir, "txns"))); diff != "" {
		t.Errorf("rows (-before +after):\n%s", diff)
	}
	if files := storeFiles(t, dir); slices.ContainsFunc(files, isTemp) {
		t.Errorf("scratch files left: %v", files)
	}
	for _, f := range dateFiles(t, dir, "2026-03-01") {
		checkSorted(t, filepath.Join(dir, "streams/txns/date=2026-03-01", f))
	}
}

func TestCompactSchemaEvolution(t *testing.T) {
	v1, v2 := ordersV1(), ordersV2()
	ts := at(0)
	row := func(user string, offset int64, values ...any) Row {
		return Row{Values: values, Key: user, EventID: user, EventTime: ts, Arrival: ts, Offset: offset}
	}
	dir := t.TempDir()
	s := openSink(t, dir, Options{})
	addAll(t, s, v1, row("b", 0, "b", int64(1), ts))
	flush(t, s)
	addAll(t, s, v2, row("a", 1, "a", 2.5, ts, "NL", "app"))
	flush(t, s)
	if _, err := s.Compact(t.Context(), "orders", day0); err != nil {
		t.Fatal(err)
	}
	files, err := Files(dir, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if diff := gocmp.Diff([]string{"part-p0-0-1.parquet"}, baseNames(files)); diff != "" {
		t.Fatalf("files (-want +got):\n%s", diff)
	}
	if v, _ := openParquet(t, files[0]).Lookup("sluice.schema_version"); v != "2" {
		t.Errorf("schema version of the compacted file = %q, want 2", v)
	}
	tm := time.UnixMicro(ts).UTC()
	stored := func(user string, qty, country, channel any, offset int64) map[string]any {
		return map[string]any{
			"user_id": user, "qty": qty, "ts": tm, "country": country, "channel": channel,
			"_event_id": user, "_event_time": tm, "_arrival_time": tm, "_partition": int32(0), "_offset": offset,
		}
	}
	// The version 1 row takes a widened qty, null country and the default
	// channel, as a flush would write it.
	want := []map[string]any{stored("a", 2.5, "NL", "app", 1), stored("b", 1.0, nil, "web", 0)}
	if diff := gocmp.Diff(want, mustRead(t, files[0])); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
}

func baseNames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Base(p)
	}
	return out
}

func TestCompactUnsortedInput(t *testing.T) {
	// Keys given to Add that are not the schema's key leave files sorted
	// otherwise; compaction sorts by the schema's key.
	dir := t.TempDir()
	s := openSink(t, dir, Options{})
	for b := range int64(3) {
		for i := range int64(5) {
			r := txnRow(fmt.Sprintf("u%d", i), at(time.Minute), 0, b*5+i)
			r.Key = fmt.Sprintf("k%d", 9-i)
			addAll(t, s, txnSchema(), r)
		}
		flush(t, s)
	}
	if _, err := s.Compact(t.Context(), "txns", day0); err != nil {
		t.Fatal(err)
	}
	files := dateFiles(t, dir, "2026-03-01")
	if diff := gocmp.Diff([]string{"part-p0-0-14.parquet"}, files); diff != "" {
		t.Fatalf("files (-want +got):\n%s", diff)
	}
	path := filepath.Join(dir, "streams/txns/date=2026-03-01", files[0])
	checkSorted(t, path)
	if n := len(mustRead(t, path)); n != 15 {
		t.Errorf("%d rows, want 15", n)
	}
}

func TestCompactNeedsSchema(t *testing.T) {
	dir := t.TempDir()
	s := openSink(t, dir, Options{})
	writeBatches(t, s, dayTraffic(3, 1, 3, 5))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openSink(t, dir, Options{})
	_, err := s.Compact(t.Context(), "txns", day0)
	if !errors.Is(err, ErrUnknownSchema) || !strings.Contains(err.Error(), "AddSchema") {
		t.Fatalf("Compact without a schema = %v, want ErrUnknownSchema naming AddSchema", err)
	}
	if stats, err := s.CompactClosedDays(t.Context(), day0.Add(72*time.Hour)); err != nil || stats.Files != 0 {
		t.Errorf("CompactClosedDays without a schema = %+v, %v; want nothing done and no error", stats, err)
	}
	s.AddSchema(txnSchema())
	if stats, err := s.Compact(t.Context(), "txns", day0); err != nil || stats.Files != 3 {
		t.Errorf("Compact after AddSchema = %+v, %v; want 3 files merged", stats, err)
	}
}

func TestCompactClosedDays(t *testing.T) {
	dir := t.TempDir()
	s := openSink(t, dir, Options{})
	// Two files in each of day0 and day1 (partition 0), one in day2.
	var off int64
	for _, day := range []time.Duration{0, 0, 24 * time.Hour, 24 * time.Hour, 48 * time.Hour} {
		addAll(t, s, txnSchema(), txnRow("u1", at(day+time.Hour), 0, off))
		off++
		flush(t, s)
	}
	endDay1 := day0.Add(48 * time.Hour)
	tests := []struct {
		now       time.Time
		wantFiles int
		wantDays  map[string][]string
	}{
		{endDay1.Add(30 * time.Minute), 2, map[string][]string{
			"2026-03-01": {"part-p0-0-1.parquet"},
			"2026-03-02": {"part-p0-2-2.parquet", "part-p0-3-3.parquet"},
		}},
		{endDay1.Add(time.Hour), 2, map[string][]string{
			"2026-03-01": {"part-p0-0-1.parquet"},
			"2026-03-02": {"part-p0-2-3.parquet"},
		}},
		{endDay1.Add(48 * time.Hour), 0, nil},
	}
	for _, tt := range tests {
		stats, err := s.CompactClosedDays(t.Context(), tt.now)
		if err != nil {
			t.Fatal(err)
		}
		if stats.Files != tt.wantFiles {
			t.Errorf("at %v: %d files merged, want %d", tt.now, stats.Files, tt.wantFiles)
		}
		for date, want := range tt.wantDays {
			if diff := gocmp.Diff(want, dateFiles(t, dir, date)); diff != "" {
				t.Errorf("at %v: files of %s (-want +got):\n%s", tt.now, date, diff)
			}
		}
	}
	if diff := gocmp.Diff([]string{"part-p0-4-4.parquet"}, dateFiles(t, dir, "2026-03-03")); diff != "" {
		t.Errorf("files of a day with one file (-want +got):\n%s", diff)
	}
}

func TestCompactGraceDefault(t *testing.T) {
	o := Options{}.Compact.withDefaults()
	if o.Grace != time.Hour || o.MaxRows != 5_000_000 {
		t.Errorf("defaults = %+v, want a grace of 1h and 5M rows", o)
	}
	for _, bad := range []CompactOptions{{Grace: -time.Second}, {MaxRows: -1}} {
		if err := (&Options{Compact: bad}).Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want an error", bad)
		}
	}
}

func TestFilesLeavesOutReplaced(t *testing.T) {
	in := []string{
		"d1/part-p0-0-10.parquet",  // replaced by 0-60
		"d1/part-p0-0-60.parquet",  // the merged file
		"d1/part-p0-50-60.parquet", // replaced by 0-60
		"d1/part-p0-61-70.parquet", // after it
		"d1/part-p1-0-10.parquet",  // another partition
		"d2/part-p0-11-49.parquet", // another date
	}
	want := []string{
		"d1/part-p0-0-60.parquet", "d1/part-p0-61-70.parquet", "d1/part-p1-0-10.parquet", "d2/part-p0-11-49.parquet",
	}
	if diff := gocmp.Diff(want, withoutReplaced(in)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestCompactCrash stops a compaction at each of its points as a crash
// would, then checks that the store holds every row exactly once, before
// and after Open repairs it.
func TestCompactCrash(t *testing.T) {
	tests := []struct {
		point string
		// what the crashed compaction leaves of partition 0's day0 files
		merged, temp bool
		inputsLeft   int
	}{
		{crashCompactBeforeRecord, false, true, 4},
		{crashCompactAfterRecord, false, true, 4},
		{crashCompactAfterRename, true, false, 4},
		{crashCompactMidDelete, true, false, 3},
	}
	batches := dayTraffic(4, 2, 4, 10)
	mergedName := wantCompacted(batches)[0]
	for _, tt := range tests {
		t.Run(tt.point, func(t *testing.T) {
			dir := t.TempDir()
			s := openSink(t, dir, Options{})
			writeBatches(t, s, batches)
			want := byID(t, readStream(t, dir, "txns"))
			resume := s.Resume("txns")
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}

			s = openSink(t, dir, Options{crash: func(p string) bool { return p == tt.point }})
			s.AddSchema(txnSchema())
			if _, err := s.Compact(t.Context(), "txns", day0); !errors.Is(err, errCrash) {
				t.Fatalf("Compact = %v, want the simulated crash", err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			dayDir := filepath.Join(dir, "streams/txns/date=2026-03-01")
			merged, temp, inputs := false, false, 0
			for _, name := range dirNames(t, dayDir) {
				switch p, _, _, ok := parseFileName(name); {
				case name == mergedName:
					merged = true
				case name == tempName(mergedName):
					temp = true
				case ok && p == 0:
					inputs++
				}
			}
			if merged != tt.merged || temp != tt.temp || inputs != tt.inputsLeft {
				t.Fatalf("after the crash: merged %v, temporary %v, %d inputs; want %v, %v, %d",
					merged, temp, inputs, tt.merged, tt.temp, tt.inputsLeft)
			}
			// Readers of the package never count a row twice, even now.
			if diff := gocmp.Diff(want, byID(t, readStream(t, dir, "txns"))); diff != "" {
				t.Errorf("rows before reopening (-want +got):\n%s", diff)
			}

			s = openSink(t, dir, Options{})
			if diff := gocmp.Diff(want, byID(t, readStream(t, dir, "txns"))); diff != "" {
				t.Errorf("rows after reopening (-want +got):\n%s", diff)
			}
			if files := storeFiles(t, dir); slices.ContainsFunc(files, isTemp) {
				t.Errorf("temporary files left after reopening: %v", files)
			}
			wantP0 := 4
			if tt.point != crashCompactBeforeRecord {
				wantP0 = 1 // rolled forward
			}
			if got := countPartition(t, dirNames(t, dayDir), 0); got != wantP0 {
				t.Errorf("partition 0 has %d files of day0 on disk after reopening, want %d", got, wantP0)
			}
			if diff := gocmp.Diff(resume, s.Resume("txns")); diff != "" {
				t.Errorf("Resume (-want +got):\n%s", diff)
			}

			s.AddSchema(txnSchema())
			if _, err := s.Compact(t.Context(), "txns", day0); err != nil {
				t.Fatal(err)
			}
			if diff := gocmp.Diff(wantCompacted(batches), dateFiles(t, dir, "2026-03-01")); diff != "" {
				t.Errorf("files after compacting again (-want +got):\n%s", diff)
			}
			if diff := gocmp.Diff(want, byID(t, readStream(t, dir, "txns"))); diff != "" {
				t.Errorf("rows after compacting again (-want +got):\n%s", diff)
			}
		})
	}
}

// dirNames lists the names in a directory.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func countPartition(t *testing.T, names []string, partition int32) int {
	t.Helper()
	n := 0
	for _, name := range names {
		if p, _, _, ok := parseFileName(name); ok && p == partition {
			n++
		}
	}
	return n
}

// TestCompactWhileFlushing compacts day0 over and over while rows of day0
// (late) and day1 keep arriving and being flushed.
func TestCompactWhileFlushing(t *testing.T) {
	dir := t.TempDir()
	s := openSink(t, dir, Options{RowGroupRows: 64})
	batches := dayTraffic(5, 3, 30, 10)
	done := make(chan struct{})
	var wg sync.WaitGroup
	var compactions int
	var compactErr error
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
			} else {
				time.Sleep(time.Millisecond)
			}
		}
	})
	writeBatches(t, s, batches)
	close(done)
	wg.Wait()
	if compactErr != nil {
		t.Fatal(compactErr)
	}
	t.Logf("%d compactions ran while flushing", compactions)
	if _, err := s.Compact(t.Context(), "txns", day0); err != nil {
		t.Fatal(err)
	}

	got := byID(t, readStream(t, dir, "txns"))
	var all []Row
	for _, b := range batches {
		all = append(all, b...)
	}
	if len(got) != len(all) {
		t.Errorf("store holds %d rows, want %d", len(got), len(all))
	}
	for _, r := range all {
		if g, ok := got[r.EventID]; !ok || g["_offset"] != r.Offset {
			t.Errorf("event %s: stored %v", r.EventID, ok)
		}
	}
	if diff := gocmp.Diff(wantCompacted(batches), dateFiles(t, dir, "2026-03-01")); diff != "" {
		t.Errorf("day0 files (-want +got):\n%s", diff)
	}
	checkFileRanges(t, dir)
	walkErr := filepath.WalkDir(filepath.Join(dir, streamsDir), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(path, "2026-03-01") {
			checkSorted(t, path)
		}
		return err
	})
	if walkErr != nil {
		t.Fatal(walkErr)
	}
}

// BenchmarkCompact compacts a day of 3 partitions flushed 100 times, 1,000
// rows per partition each time.
func BenchmarkCompact(b *testing.B) {
	src := b.TempDir()
	s, err := Open(src, Options{})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	var batches [][]Row
	for f := range int64(100) {
		var batch []Row
		for p := range int32(3) {
			for i := range int64(1000) {
				ts := at(time.Duration(rng.Int64N(int64(24 * time.Hour))))
				batch = append(batch, txnRow(fmt.Sprintf("u%05d", rng.IntN(20000)), ts, p, f*1000+i))
			}
		}
		batches = append(batches, batch)
	}
	writeBatches(b, s, batches)
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}

	var rows int64
	var spent time.Duration
	for b.Loop() {
		b.StopTimer()
		dir := filepath.Join(b.TempDir(), "store")
		if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
			b.Fatal(err)
		}
		s, err := Open(dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		s.AddSchema(txnSchema())
		b.StartTimer()
		stats, err := s.Compact(b.Context(), "txns", day0)
		b.StopTimer()
		if err != nil || stats.Rows != 300_000 {
			b.Fatalf("Compact = %+v, %v", stats, err)
		}
		rows += stats.Rows
		spent += stats.Duration
		s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(rows)/spent.Seconds(), "rows/s")
}

func ExampleSink_Compact() {
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

	// Three flushes leave three small files in the day of partition 0.
	for offset := range int64(3) {
		sink.Add(txnSchema(), txnRow("u1", at(time.Duration(offset)*time.Hour), 0, offset))
		if err := sink.Flush(context.Background()); err != nil {
			panic(err)
		}
	}
	stats, err := sink.Compact(context.Background(), "txns", day0)
	if err != nil {
		panic(err)
	}
	fmt.Println("merged", stats.Files, "files into", stats.Written, "holding", stats.Rows, "rows")
	files, _ := Files(dir, "txns")
	for _, f := range files {
		rel, _ := filepath.Rel(dir, f)
		fmt.Println(filepath.ToSlash(rel))
	}
	// Output:
	// merged 3 files into 1 holding 3 rows
	// streams/txns/date=2026-03-01/part-p0-0-2.parquet
}
