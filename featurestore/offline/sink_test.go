package offline

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/sluicehq/sluice/schemas"
)

// allTypesRows returns 7 rows of txnSchema in one partition and day whose
// keys run backwards ("g" to "a"), with nulls in every nullable column.
func allTypesRows() []Row {
	var rows []Row
	for i := range 7 {
		ts := at(time.Duration(i) * time.Hour)
		var isFraud, country, seen any
		if i%3 != 0 {
			isFraud = i%2 == 0
		}
		if i%2 == 0 {
			country = fmt.Sprintf("c%d", i)
		} else {
			seen = ts + time.Second.Microseconds()
		}
		rows = append(rows, Row{
			Values:    []any{string(rune('g' - i)), float64(i)*1.25 - 3, int64(i-3) << 33, isFraud, country, ts, seen},
			Key:       string(rune('g' - i)),
			EventID:   fmt.Sprintf("id-%d", i),
			EventTime: ts,
			Arrival:   ts + int64(i),
			Partition: 2,
			Offset:    100 + int64(i),
		})
	}
	return rows
}

func openParquet(t *testing.T, path string) *parquet.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	return pf
}

func TestRoundTripAllTypes(t *testing.T) {
	dir := t.TempDir()
	s := openSink(t, dir, Options{RowGroupRows: 3})
	rows := allTypesRows()
	addAll(t, s, txnSchema(), rows...)
	if got := s.Buffered(); got != 7 {
		t.Errorf("Buffered() = %d, want 7", got)
	}
	flush(t, s)
	if got := s.Buffered(); got != 0 {
		t.Errorf("Buffered() after flush = %d, want 0", got)
	}
	path := filepath.Join(dir, "streams/txns/date=2026-03-01/part-p2-100-106.parquet")
	if diff := gocmp.Diff([]string{"streams/txns/date=2026-03-01/part-p2-100-106.parquet"}, storeFiles(t, dir)); diff != "" {
		t.Fatalf("files (-want +got):\n%s", diff)
	}

	// Rows come back sorted by key, so in reverse order of i.
	var want, wantGeneric []map[string]any
	for i := 6; i >= 0; i-- {
		r := rows[i]
		m := map[string]any{
			"user_id": r.Values[0], "amount": r.Values[1], "qty": r.Values[2],
			"is_fraud": r.Values[3], "country": r.Values[4],
			"_event_id": r.EventID, "_partition": r.Partition, "_offset": r.Offset,
		}
		g := maps.Clone(m)
		m["ts"], g["ts"] = time.UnixMicro(r.Values[5].(int64)).UTC(), r.Values[5]
		m["seen"], g["seen"] = nil, r.Values[6]
		if r.Values[6] != nil {
			m["seen"] = time.UnixMicro(r.Values[6].(int64)).UTC()
		}
		m["_event_time"], g["_event_time"] = time.UnixMicro(r.EventTime).UTC(), r.EventTime
		m["_arrival_time"], g["_arrival_time"] = time.UnixMicro(r.Arrival).UTC(), r.Arrival
		want, wantGeneric = append(want, m), append(wantGeneric, g)
	}
	got, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("ReadFile (-want +got):\n%s", diff)
	}

	// The same rows through parquet-go's generic map reader.
	pf := openParquet(t, path)
	r := parquet.NewGenericReader[map[string]any](pf, pf.Schema())
	defer r.Close()
	generic := make([]map[string]any, 7)
	for i := range generic {
		generic[i] = map[string]any{}
	}
	if n, err := r.Read(generic); n != 7 {
		t.Fatalf("generic reader read %d rows (%v), want 7", n, err)
	}
	if diff := gocmp.Diff(wantGeneric, generic); diff != "" {
		t.Errorf("generic reader (-want +got):\n%s", diff)
	}
}

func TestFileFormat(t *testing.T) {
	dir := t.TempDir()
	s := openSink(t, dir, Options{RowGroupRows: 3})
	addAll(t, s, txnSchema(), allTypesRows()...)
	flush(t, s)
	pf := openParquet(t, filepath.Join(dir, "streams/txns/date=2026-03-01/part-p2-100-106.parquet"))
	md := pf.Metadata()

	var columns []string
	for _, e := range md.Schema[1:] {
		columns = append(columns, fmt.Sprintf("%s %v %v %s", e.Name, e.Type.V, e.RepetitionType.V, e.LogicalType.String()))
	}
	const micros = "TIMESTAMP(isAdjustedToUTC=true,unit=MICROS)"
	wantColumns := []string{
		"user_id BYTE_ARRAY REQUIRED STRING",
		"amount DOUBLE REQUIRED ",
		"qty INT64 REQUIRED INT(64,true)",
		"is_fraud BOOLEAN OPTIONAL ",
		"country BYTE_ARRAY OPTIONAL STRING",
		"ts INT64 REQUIRED " + micros,
		"seen INT64 OPTIONAL " + micros,
		"_event_id BYTE_ARRAY REQUIRED STRING",
		"_event_time INT64 REQUIRED " + micros,
		"_arrival_time INT64 REQUIRED " + micros,
		"_partition INT32 REQUIRED INT(32,true)",
		"_offset INT64 REQUIRED INT(64,true)",
	}
	if diff := gocmp.Diff(wantColumns, columns); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}

	var groupRows []int64
	for _, rg := range md.RowGroups {
		groupRows = append(groupRows, rg.NumRows)
		for _, c := range rg.Columns {
			if c.MetaData.Codec != format.Zstd {
				t.Errorf("column %v: codec %v, want ZSTD", c.MetaData.PathInSchema, c.MetaData.Codec)
			}
		}
	}
	if diff := gocmp.Diff([]int64{3, 3, 1}, groupRows); diff != "" {
		t.Errorf("rows per row group (-want +got):\n%s", diff)
	}

	// The first row group holds keys a, b, c: i = 6, 5, 4.
	type stats struct {
		Min, Max string
		Nulls    int64
	}
	stat := func(col int, decode func([]byte) string) stats {
		st := md.RowGroups[0].Columns[col].MetaData.Statistics
		return stats{decode(st.MinValue), decode(st.MaxValue), st.NullCount}
	}
	str := func(b []byte) string { return string(b) }
	i64 := func(b []byte) string { return fmt.Sprint(int64(binary.LittleEndian.Uint64(b))) }
	gotStats := []stats{stat(0, str), stat(4, str), stat(8, i64), stat(11, i64)}
	wantStats := []stats{
		{"a", "c", 0},
		{"c4", "c6", 1},
		{fmt.Sprint(at(4 * time.Hour)), fmt.Sprint(at(6 * time.Hour)), 0},
		{"104", "106", 0},
	}
	if diff := gocmp.Diff(wantStats, gotStats); diff != "" {
		t.Errorf("row group 0 statistics of user_id, country, _event_time, _offset (-want +got):\n%s", diff)
	}
	if got := len(pf.ColumnIndexes()); got != 3*len(wantColumns) {
		t.Errorf("page index has %d column indexes, want %d", got, 3*len(wantColumns))
	}

	meta := map[string]string{}
	for _, key := range []string{"sluice.stream", "sluice.schema_version"} {
		meta[key], _ = pf.Lookup(key)
	}
	if diff := gocmp.Diff(map[string]string{"sluice.stream": "txns", "sluice.schema_version": "1"}, meta); diff != "" {
		t.Errorf("key-value metadata (-want +got):\n%s", diff)
	}
}

func TestLayout(t *testing.T) {
	dir := t.TempDir()
	s := openSink(t, dir, Options{})
	other := txnSchema()
	other.Stream = "clicks"
	lastMicro := at(24*time.Hour - time.Microsecond)
	addAll(t, s, txnSchema(),
		txnRow("u1", lastMicro, 0, 5),         // 2026-03-01, the day's last µs
		txnRow("u2", at(24*time.Hour), 0, 6),  // 2026-03-02
		txnRow("u0", at(time.Hour), 0, 9),     // 2026-03-01
		txnRow("u1", at(48*time.Hour), 1, 3),  // 2026-03-03
		txnRow("u1", at(-time.Hour), 1, 4),    // 2026-02-28
		txnRow("u1", at(time.Minute), 12, 70), // 2026-03-01
	)
	addAll(t, s, other, txnRow("u9", at(0), 0, 0))
	flush(t, s)
	want := []string{
		"streams/clicks/date=2026-03-01/part-p0-0-0.parquet",
		"streams/txns/date=2026-02-28/part-p1-4-4.parquet",
		"streams/txns/date=2026-03-01/part-p0-5-9.parquet",
		"streams/txns/date=2026-03-01/part-p12-70-70.parquet",
		"streams/txns/date=2026-03-02/part-p0-6-6.parquet",
		"streams/txns/date=2026-03-03/part-p1-3-3.parquet",
	}
	got := storeFiles(t, dir)
	slices.Sort(got)
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}

	files, err := Files(dir, "txns")
	if err != nil {
		t.Fatal(err)
	}
	for i := range files {
		files[i], _ = filepath.Rel(dir, files[i])
		files[i] = filepath.ToSlash(files[i])
	}
	wantOrder := []string{want[1], want[2], want[3], want[4], want[5]} // by date, partition, offset
	if diff := gocmp.Diff(wantOrder, files); diff != "" {
		t.Errorf("Files (-want +got):\n%s", diff)
	}
	if diff := gocmp.Diff([]string{"e0-9", "e0-5"}, eventIDs(mustRead(t, filepath.Join(dir, want[2])))); diff != "" {
		t.Errorf("rows of %s (-want +got):\n%s", want[2], diff)
	}
}

func mustRead(t *testing.T, path string) []map[string]any {
	t.Helper()
	rows, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestRowsSortedByKeyTimeOffset(t *testing.T) {
	dir := t.TempDir()
	s := openSink(t, dir, Options{RowGroupRows: 16})
	rng := rand.New(rand.NewPCG(1, 2))
	var rows []Row
	for off := range int64(200) {
		// Few keys and few distinct times, so ties on key and on
		// (key, time) are common.
		r := txnRow(fmt.Sprintf("u%d", rng.IntN(7)), at(time.Duration(rng.IntN(5))*time.Minute), 0, off)
		rows = append(rows, r)
	}
	rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	addAll(t, s, txnSchema(), rows...)
	flush(t, s)

	slices.SortFunc(rows, func(a, b Row) int {
		return cmp.Or(strings.Compare(a.Key, b.Key), cmp.Compare(a.EventTime, b.EventTime), cmp.Compare(a.Offset, b.Offset))
	})
	var want []string
	for _, r := range rows {
		want = append(want, r.EventID)
	}
	got := readStream(t, dir, "txns")
	if diff := gocmp.Diff([]string{"streams/txns/date=2026-03-01/part-p0-0-199.parquet"}, storeFiles(t, dir)); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	if diff := gocmp.Diff(want, eventIDs(got)); diff != "" {
		t.Errorf("row order (-want +got):\n%s", diff)
	}
}

func TestDedupeByEventID(t *testing.T) {
	dir := t.TempDir()
	schema := txnSchema()
	other := txnSchema()
	other.Stream = "clicks"
	withID := func(r Row, id string) Row { r.EventID = id; return r }

	s := openSink(t, dir, Options{})
	steps := []struct {
		schema *schemas.Schema
		row    Row
		kept   bool
	}{
		{schema, withID(txnRow("u1", at(0), 0, 0), "a"), true},
		{schema, withID(txnRow("u1", at(1), 0, 1), "b"), true},
		{schema, withID(txnRow("u2", at(2), 0, 2), "a"), false}, // buffered
		{schema, withID(txnRow("u2", at(3), 1, 0), "b"), false}, // buffered, other partition
		{other, withID(txnRow("u2", at(3), 0, 0), "a"), true},   // ids are per stream
	}
	for i, st := range steps {
		if got := s.Add(st.schema, st.row); got != st.kept {
			t.Errorf("before first flush, step %d: Add = %v, want %v", i, got, st.kept)
		}
	}
	flush(t, s)
	if got := s.Add(schema, withID(txnRow("u3", at(4), 0, 3), "a")); got {
		t.Error("Add of an id committed by an earlier flush = true, want false")
	}
	if got := s.Add(schema, withID(txnRow("u3", at(5), 0, 4), "c")); !got {
		t.Error("Add of a new id = false, want true")
	}
	flush(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openSink(t, dir, Options{})
	for _, id := range []string{"a", "b", "c"} {
		if s.Add(schema, withID(txnRow("u4", at(6), 0, 5), id)) {
			t.Errorf("after reopen: Add of committed id %q = true, want false", id)
		}
	}
	addAll(t, s, schema, withID(txnRow("u4", at(7), 0, 6), "d"))
	flush(t, s)

	ids := eventIDs(readStream(t, dir, "txns"))
	slices.Sort(ids)
	if diff := gocmp.Diff([]string{"a", "b", "c", "d"}, ids); diff != "" {
		t.Errorf("stored ids of txns (-want +got):\n%s", diff)
	}
	if diff := gocmp.Diff([]string{"a"}, eventIDs(readStream(t, dir, "clicks"))); diff != "" {
		t.Errorf("stored ids of clicks (-want +got):\n%s", diff)
	}
	// Dropped duplicates still count as consumed.
	if diff := gocmp.Diff(map[int32]int64{0: 7, 1: 1}, s.Resume("txns")); diff != "" {
		t.Errorf("Resume (-want +got):\n%s", diff)
	}
}

func TestResume(t *testing.T) {
	dir := t.TempDir()
	s := openSink(t, dir, Options{})
	if diff := gocmp.Diff(map[int32]int64{}, s.Resume("txns")); diff != "" {
		t.Errorf("Resume of an empty store (-want +got):\n%s", diff)
	}
	addAll(t, s, txnSchema(), txnRow("u", at(0), 0, 0), txnRow("u", at(0), 0, 1), txnRow("u", at(0), 0, 2))
	s.Note("txns", 0, 5)
	s.Note("txns", 1, 7)
	s.Note("clicks", 3, 0)
	if diff := gocmp.Diff(map[int32]int64{}, s.Resume("txns")); diff != "" {
		t.Errorf("Resume before flush (-want +got):\n%s", diff)
	}
	flush(t, s)
	want := map[int32]int64{0: 6, 1: 8}
	if diff := gocmp.Diff(want, s.Resume("txns")); diff != "" {
		t.Errorf("Resume after flush (-want +got):\n%s", diff)
	}

	// Notes alone commit offsets without writing files; an offset below the
	// committed one changes nothing.
	s.Note("txns", 1, 9)
	s.Note("txns", 0, 1)
	flush(t, s)
	want[1] = 10
	if diff := gocmp.Diff(want, s.Resume("txns")); diff != "" {
		t.Errorf("Resume after notes (-want +got):\n%s", diff)
	}
	if got := len(storeFiles(t, dir)); got != 1 {
		t.Errorf("store holds %d files, want 1", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openSink(t, dir, Options{})
	if diff := gocmp.Diff(want, s.Resume("txns")); diff != "" {
		t.Errorf("Resume after reopen (-want +got):\n%s", diff)
	}
	if diff := gocmp.Diff(map[int32]int64{3: 1}, s.Resume("clicks")); diff != "" {
		t.Errorf("Resume of clicks after reopen (-want +got):\n%s", diff)
	}
}

func TestFlushSplitsIntoCommits(t *testing.T) {
	dir := t.TempDir()
	s := openSink(t, dir, Options{CommitRows: 4})
	for off := range int64(10) {
		addAll(t, s, txnSchema(), txnRow("u", at(time.Duration(off)), 0, off))
	}
	s.Note("txns", 0, 12)
	addAll(t, s, txnSchema(), txnRow("u", at(0), 1, 0))
	flush(t, s)
	want := []string{
		"streams/txns/date=2026-03-01/part-p0-0-3.parquet",
		"streams/txns/date=2026-03-01/part-p0-4-7.parquet",
		"streams/txns/date=2026-03-01/part-p0-8-9.parquet",
		"streams/txns/date=2026-03-01/part-p1-0-0.parquet",
	}
	got := storeFiles(t, dir)
	slices.Sort(got)
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	if diff := gocmp.Diff(map[int32]int64{0: 13, 1: 1}, s.Resume("txns")); diff != "" {
		t.Errorf("Resume (-want +got):\n%s", diff)
	}
	if got := len(readStream(t, dir, "txns")); got != 11 {
		t.Errorf("read %d rows, want 11", got)
	}
}

func TestFlushRefusesToOverwrite(t *testing.T) {
	dir := t.TempDir()
	s := openSink(t, dir, Options{})
	final := filepath.Join(dir, "streams/txns/date=2026-03-01/part-p0-0-0.parquet")
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(final, []byte("not ours"), 0o644); err != nil {
		t.Fatal(err)
	}
	addAll(t, s, txnSchema(), txnRow("u", at(0), 0, 0))
	err := s.Flush(context.Background())
	if err == nil || !strings.Contains(err.Error(), final+": the file already exists") {
		t.Fatalf("Flush error = %v, want one saying %s already exists", err, final)
	}
	if got := s.Buffered(); got != 1 {
		t.Errorf("Buffered() = %d, want the row kept", got)
	}
	if diff := gocmp.Diff(map[int32]int64{}, s.Resume("txns")); diff != "" {
		t.Errorf("Resume (-want +got):\n%s", diff)
	}
	if diff := gocmp.Diff([]string{"streams/txns/date=2026-03-01/part-p0-0-0.parquet"}, storeFiles(t, dir)); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	if b, _ := os.ReadFile(final); string(b) != "not ours" {
		t.Errorf("existing file was changed to %q", b)
	}
}

func TestFlushHonoursContext(t *testing.T) {
	s := openSink(t, t.TempDir(), Options{})
	addAll(t, s, txnSchema(), txnRow("u", at(0), 0, 0))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Flush(ctx); err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("Flush error = %v, want context canceled", err)
	}
	if got := s.Buffered(); got != 1 {
		t.Errorf("Buffered() = %d, want 1", got)
	}
}

func TestAddPanicsOnCallerBugs(t *testing.T) {
	badStream := txnSchema()
	badStream.Stream = "../etc"
	noID := txnRow("u", at(0), 0, 0)
	noID.EventID = ""
	short := txnRow("u", at(0), 0, 0)
	short.Values = short.Values[:3]
	wrongType := txnRow("u", at(0), 0, 0)
	wrongType.Values[1] = "1.5"
	tests := []struct {
		name   string
		schema *schemas.Schema
		row    Row
		want   string
	}{
		{"stream name", badStream, txnRow("u", at(0), 0, 0), `stream name "../etc" cannot name a directory`},
		{"no event id", txnSchema(), noID, `stream "txns" partition 0 offset 0: row has no event id`},
		{"value count", txnSchema(), short, `event has 3 values for the 7 fields of schema version 1`},
		{"value type", txnSchema(), wrongType, `field "amount": value 1.5 of Go type string does not fit type float64`},
	}
	s := openSink(t, t.TempDir(), Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				msg := fmt.Sprint(recover())
				if !strings.Contains(msg, tt.want) {
					t.Errorf("panic %q, want one containing %q", msg, tt.want)
				}
			}()
			s.Add(tt.schema, tt.row)
		})
	}
	if got := s.Buffered(); got != 0 {
		t.Errorf("Buffered() = %d after rejected rows, want 0", got)
	}
}

func TestClosed(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	if err := s.Flush(context.Background()); err != ErrClosed {
		t.Errorf("Flush after Close = %v, want ErrClosed", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, o := range []Options{{RowGroupRows: -1}, {CommitRows: -5}} {
		if _, err := Open(t.TempDir(), o); err == nil {
			t.Errorf("Open(%+v) succeeded, want an error", o)
		}
	}
}

func TestFlushSplitsCommitsBadgerCannotHold(t *testing.T) {
	dir := t.TempDir()
	// A 1 MiB memtable holds transactions of about 1,600 entries.
	s := openSink(t, dir, Options{CommitRows: 5000, memTableSize: 1 << 20})
	for off := range int64(3000) {
		addAll(t, s, txnSchema(), txnRow("u", at(0), 0, off))
	}
	flush(t, s)
	want := []string{
		"streams/txns/date=2026-03-01/part-p0-0-1499.parquet",
		"streams/txns/date=2026-03-01/part-p0-1500-2999.parquet",
	}
	got := storeFiles(t, dir)
	slices.Sort(got)
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	if diff := gocmp.Diff(map[int32]int64{0: 3000}, s.Resume("txns")); diff != "" {
		t.Errorf("Resume (-want +got):\n%s", diff)
	}
	if got := len(readStream(t, dir, "txns")); got != 3000 {
		t.Errorf("read %d rows, want 3000", got)
	}
}
