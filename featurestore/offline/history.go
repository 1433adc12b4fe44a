package offline

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
	"golang.org/x/sync/errgroup"

	"github.com/sluicehq/sluice/schemas"
)

// HistoryOptions narrow a scan of a stream's history. The zero value scans
// every committed row.
type HistoryOptions struct {
	// From and To bound event time, in µs since the Unix epoch, to
	// [From, To); 0 leaves a side unbounded. Date directories and row
	// groups whose _event_time statistics lie outside are not read.
	From, To int64
	// Below, when not nil, keeps only rows whose _offset is below
	// Below[_partition]; a partition missing from the map yields nothing.
	// Files and row groups wholly above the bound are not read.
	Below map[int32]int64
	// Workers scans that many files at once (0 or 1: one at a time, in
	// order). With more, fn is called from several goroutines at once and
	// must be safe for that.
	Workers int
	// Fields, when not nil, lists the schema fields (indexes into its
	// Fields) that ScanBatches reads: the Vectors of the others stay empty,
	// and their columns are not decompressed. NoEventID and NoArrival
	// likewise leave Batch.EventID and Batch.Arrival empty. Scan, which
	// hands on whole rows, ignores them all.
	Fields    []int
	NoEventID bool
	NoArrival bool

	// trace, when set, records what a scan read; tests check pruning with
	// it.
	trace *scanTrace
}

// scanTrace records what a scan read.
type scanTrace struct {
	dirs          []string // date directories listed, by name
	files         []string // files opened, by name
	groupsRead    int
	groupsSkipped int
}

// scanBatch is how many values a scan decodes at a time where it reads
// them one by one, and how often it checks for cancellation while handing
// rows to fn.
const scanBatch = 256

// Scan calls fn with every committed row of stream in the store under dir
// that opts keep. Values hold one value per field of schema, in its order,
// with the Go types of schemas.Event: string, int64, float64, bool, and
// timestamps as int64 µs; nil is null. A field a file lacks, because a later
// schema version added it, takes the field's default, else nil (as a
// compaction would fill it); an INT64 column of a file older than the
// field's widening to float64 reads as float64. Key is the canonical entity
// key of schema.
//
// Rows come file by file, in the order of Files (date, partition, first
// offset), and within a file sorted by entity key, event time and offset.
// Scan reads one row group at a time, column by column, so its memory does
// not grow with the store.
//
// fn must not retain the *Row or its Values slice after it returns: both
// are reused for the next row. The values themselves (strings included) are
// fresh and may be kept. An error from fn stops the scan and Scan returns it
// unchanged.
//
// Scan does not coordinate with a Sink compacting the same store: a file
// a compaction replaces while Scan lists or reads it can make Scan fail. Use
// Sink.History on a store a Sink may be compacting.
func Scan(ctx context.Context, dir, stream string, schema *schemas.Schema, opts HistoryOptions, fn func(*Row) error) error {
	return scan(ctx, dir, stream, schema, opts, fn, nil)
}

// ScanBatches is Scan handing fn the kept rows of one row group at a
// time, column by column, in the same order. fn must not retain the
// *Batch or its slices after it returns; the strings in it may be kept.
func ScanBatches(ctx context.Context, dir, stream string, schema *schemas.Schema, opts HistoryOptions, fn func(*Batch) error) error {
	return scan(ctx, dir, stream, schema, opts, nil, fn)
}

func scan(ctx context.Context, dir, stream string, schema *schemas.Schema, opts HistoryOptions, fn func(*Row) error, batch func(*Batch) error) error {
	if _, err := newScanner(stream, schema, opts, fn, batch); err != nil {
		return err
	}
	if opts.Below != nil && len(opts.Below) == 0 {
		return nil
	}
	paths, err := historyFiles(dir, stream, opts)
	if err != nil {
		return fmt.Errorf("scan stream %q: %w", stream, err)
	}
	workers := min(max(1, opts.Workers), max(1, len(paths)))
	next := make(chan string)
	g, gctx := errgroup.WithContext(ctx)
	for w := range workers {
		g.Go(func() error {
			sc, err := newScanner(stream, schema, opts, fn, batch)
			if err != nil {
				return err
			}
			sc.worker, sc.row.Worker = w, w
			for path := range next {
				if err := sc.scanFile(gctx, path); err != nil {
					return err
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(next)
		for _, path := range paths {
			select {
			case next <- path:
			case <-gctx.Done():
				if err := ctx.Err(); err != nil {
					return fmt.Errorf("scan stream %q: %w", stream, err)
				}
				return nil
			}
		}
		return nil
	})
	return g.Wait()
}

// History scans, as Scan does, exactly the rows of stream the sink had
// committed when History was called, and returns the next offset per
// partition that those rows cover: the offsets to resume consuming the
// stream's topic from so that each event is seen once. opts.Below, when not
// nil, narrows the snapshot further (and the offsets returned with it).
//
// It first finishes a commit whose renames failed, and it holds off
// compactions' file swaps while it scans, so no row is missed or read twice:
// a compaction that is merging swaps its files once History returns, and one
// about to start waits for it. Add and Flush run as usual meanwhile. fn must
// not call Compact, CompactClosedDays or History on the same sink: they would
// wait for History, which waits for fn.
func (s *Sink) History(ctx context.Context, stream string, schema *schemas.Schema, opts HistoryOptions, fn func(*Row) error) (map[int32]int64, error) {
	s.swapMu.RLock()
	defer s.swapMu.RUnlock()
	below, err := s.snapshot(stream, opts.Below)
	if err != nil {
		return nil, fmt.Errorf("history of stream %q: %w", stream, err)
	}
	opts.Below = below
	if err := Scan(ctx, s.dir, stream, schema, opts, fn); err != nil {
		return nil, err
	}
	return below, nil
}

// dateDirs returns the names of the date directories under a stream's
// directory root; none when it does not exist.
func dateDirs(root string) ([]string, error) {
	entries, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list files: %w", err)
	}
	var out []string
	for _, d := range entries {
		if d.IsDir() && strings.HasPrefix(d.Name(), datePrefix) {
			out = append(out, d.Name())
		}
	}
	return out, nil
}

// snapshot returns the committed next offsets of stream, each lowered to
// narrow's bound when narrow is not nil, after finishing a commit whose
// renames failed so that every committed row is in a final file.
func (s *Sink) snapshot(stream string, narrow map[int32]int64) (map[int32]int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return nil, ErrClosed
	case s.crashed:
		return nil, errCrash
	}
	if s.pendingRenames {
		renames, err := loadPending(s.db)
		if err != nil {
			return nil, err
		}
		if err := s.applyRenames(renames); err != nil {
			return nil, fmt.Errorf("finish previous commit: %w", err)
		}
	}
	out := map[int32]int64{}
	for k, next := range s.committed {
		if k.stream != stream {
			continue
		}
		if narrow != nil {
			bound, ok := narrow[k.partition]
			if !ok {
				continue
			}
			next = min(next, bound)
		}
		out[k.partition] = next
	}
	return out, nil
}

// historyFiles returns the committed files of a stream that may hold rows
// opts keep, in the order of Files.
func historyFiles(dir, stream string, opts HistoryOptions) ([]string, error) {
	root := streamDir(dir, stream)
	dates, err := dateDirs(root)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range dates {
		if !opts.dateInRange(d) {
			continue
		}
		if opts.trace != nil {
			opts.trace.dirs = append(opts.trace.dirs, d)
		}
		files, err := historyDateFiles(filepath.Join(root, d), opts.Below)
		if err != nil {
			return nil, err
		}
		out = append(out, files...)
	}
	return out, nil
}

// historyDateFiles returns the committed files of a date directory, in
// partition and offset order, leaving out those a compaction replaced and
// those wholly at or above below's bound.
func historyDateFiles(dir string, below map[int32]int64) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list files: %w", err)
	}
	var paths []string
	for _, e := range entries {
		if _, _, _, ok := parseFileName(e.Name()); ok && e.Type().IsRegular() {
			paths = append(paths, filepath.Join(dir, e.Name()))
		}
	}
	paths = slices.DeleteFunc(withoutReplaced(paths), func(path string) bool {
		p, first, _, _ := parseFileName(filepath.Base(path))
		if below == nil {
			return false
		}
		bound, ok := below[p]
		return !ok || first >= bound
	})
	slices.SortFunc(paths, func(a, b string) int {
		pa, fa, _, _ := parseFileName(filepath.Base(a))
		pb, fb, _, _ := parseFileName(filepath.Base(b))
		return cmp.Or(cmp.Compare(pa, pb), cmp.Compare(fa, fb))
	})
	return paths, nil
}

// dateInRange reports whether a date directory may hold events in
// [From, To). A name that is not a date is kept.
func (o HistoryOptions) dateInRange(name string) bool {
	day, err := time.Parse(time.DateOnly, strings.TrimPrefix(name, datePrefix))
	if err != nil {
		return true
	}
	start := day.UnixMicro()
	end := day.Add(24 * time.Hour).UnixMicro()
	return (o.To == 0 || start < o.To) && (o.From == 0 || end > o.From)
}

// keepTime reports whether an event time lies in [From, To).
func (o HistoryOptions) keepTime(t int64) bool {
	return (o.From == 0 || t >= o.From) && (o.To == 0 || t < o.To)
}

// keepOffset reports whether an offset of a partition lies below Below.
func (o HistoryOptions) keepOffset(partition int32, offset int64) bool {
	if o.Below == nil {
		return true
	}
	bound, ok := o.Below[partition]
	return ok && offset < bound
}

// scanner reads one stream's files a row group at a time into a Batch
// for onBatch: fn's batches, or rows for fn.
type scanner struct {
	stream  string
	schema  *schemas.Schema
	opts    HistoryOptions
	fn      func(*Row) error
	onBatch func(*Batch) error
	worker  int   // which of the scan's goroutines this is
	keyIdx  []int // fields of schema making up the entity key
	row     Row   // handed to fn, reused
	parts   []string
	batch   Batch
	meta    [5]Vector // event id, event time, arrival, partition, offset
	vals    []parquet.Value
	keep    []bool
	ctx     context.Context // of the file being read
}

// newScanner returns a scanner that hands fn rows, or batch batches when
// batch is not nil.
func newScanner(stream string, schema *schemas.Schema, opts HistoryOptions, fn func(*Row) error, batch func(*Batch) error) (*scanner, error) {
	switch {
	case schema == nil:
		return nil, fmt.Errorf("scan stream %q: no schema given", stream)
	case schema.Stream != stream:
		return nil, fmt.Errorf("scan stream %q: the schema given is of stream %q", stream, schema.Stream)
	case !validStream(stream):
		return nil, fmt.Errorf("scan stream %q: the name cannot name a directory", stream)
	}
	sc := &scanner{
		stream: stream,
		schema: schema,
		opts:   opts,
		fn:     fn,
		row:    Row{Values: make([]any, len(schema.Fields))},
		parts:  make([]string, len(schema.KeyFields)),
	}
	sc.onBatch = func(*Batch) error { return sc.emit() }
	if batch != nil {
		sc.onBatch = func(b *Batch) error {
			if err := batch(b); err != nil {
				return errFromFn{err}
			}
			return nil
		}
	}
	for _, name := range schema.KeyFields {
		i := schema.Index(name)
		if i < 0 {
			return nil, fmt.Errorf("scan stream %q: key field %q is not in version %d of the schema", stream, name, schema.Version)
		}
		sc.keyIdx = append(sc.keyIdx, i)
	}
	return sc, nil
}

// scanFile hands fn the rows of one file that the options keep.
func (sc *scanner) scanFile(ctx context.Context, path string) error {
	sc.ctx = ctx
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("scan stream %q: %w", sc.stream, err)
	}
	defer f.Close()
	if sc.opts.trace != nil {
		sc.opts.trace.files = append(sc.opts.trace.files, filepath.Base(path))
	}
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("scan stream %q: %w", sc.stream, err)
	}
	pf, err := parquet.OpenFile(f, st.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return fmt.Errorf("scan stream %q: read %s: %w", sc.stream, path, err)
	}
	cols, err := newFileColumns(sc.schema, pf.Schema())
	if err != nil {
		return fmt.Errorf("scan stream %q: read %s: %w", sc.stream, path, err)
	}
	partition, _, _, _ := parseFileName(filepath.Base(path))
	for i, rg := range pf.RowGroups() {
		if sc.skipGroup(&pf.Metadata().RowGroups[i], cols, partition) {
			if sc.opts.trace != nil {
				sc.opts.trace.groupsSkipped++
			}
			continue
		}
		if sc.opts.trace != nil {
			sc.opts.trace.groupsRead++
		}
		if err := ctx.Err(); err != nil {
			return annotate(err, sc.stream, path)
		}
		if err := sc.readGroup(rg, cols); err != nil {
			return annotate(err, sc.stream, path)
		}
		if sc.batch.Len == 0 {
			continue
		}
		if err := sc.onBatch(&sc.batch); err != nil {
			return annotate(err, sc.stream, path)
		}
	}
	return nil
}

// errFromFn wraps an error fn returned, so that scanning code passes it
// through without annotating it.
type errFromFn struct{ err error }

func (e errFromFn) Error() string { return e.err.Error() }

// annotate adds the stream and file to a scan's error, but returns an error
// from fn unchanged.
func annotate(err error, stream, path string) error {
	var fnErr errFromFn
	if errors.As(err, &fnErr) {
		return fnErr.err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("scan stream %q: %w", stream, err)
	}
	return fmt.Errorf("scan stream %q: read %s: %w", stream, path, err)
}

// skipGroup reports whether a row group's statistics show that it holds no
// row the options keep.
func (sc *scanner) skipGroup(rg *format.RowGroup, cols *fileColumns, partition int32) bool {
	if sc.opts.From != 0 || sc.opts.To != 0 {
		if lo, hi, ok := int64Bounds(rg, cols.eventTime); ok &&
			((sc.opts.To != 0 && lo >= sc.opts.To) || (sc.opts.From != 0 && hi < sc.opts.From)) {
			return true
		}
	}
	if sc.opts.Below != nil {
		if lo, _, ok := int64Bounds(rg, cols.offset); ok && !sc.opts.keepOffset(partition, lo) {
			return true
		}
	}
	return false
}

// int64Bounds returns the min and max statistics of an INT64 column of a
// row group, if it has them.
func int64Bounds(rg *format.RowGroup, col int) (lo, hi int64, ok bool) {
	if col >= len(rg.Columns) {
		return 0, 0, false
	}
	st := rg.Columns[col].MetaData.Statistics
	if len(st.MinValue) != 8 || len(st.MaxValue) != 8 {
		return 0, 0, false
	}
	return int64(binary.LittleEndian.Uint64(st.MinValue)), int64(binary.LittleEndian.Uint64(st.MaxValue)), true
}

// readGroup reads the rows of a row group that the options keep into
// sc.batch.
func (sc *scanner) readGroup(rg parquet.RowGroup, cols *fileColumns) error {
	n := int(rg.NumRows())
	chunks := rg.ColumnChunks()
	b := &sc.batch
	if len(b.Fields) != len(sc.schema.Fields) {
		b.Fields = make([]Vector, len(sc.schema.Fields))
	}
	for i, f := range sc.schema.Fields {
		d, v := &cols.fields[i], &b.Fields[i]
		if !sc.reads(i) {
			v.reset(f.Type, 0)
			continue
		}
		v.reset(f.Type, n)
		if d.kind == decodeConstant {
			for range n {
				v.Append(d.constant)
			}
			v.finish()
		} else if err := readColumn(chunks[d.col], d.kind, v, &sc.vals); err != nil {
			return fmt.Errorf("column %q: %w", f.Name, err)
		}
		if v.len() != n {
			return fmt.Errorf("column %q has %d values for %d rows", f.Name, v.len(), n)
		}
	}
	batches := sc.fn == nil // Scan's rows carry every column
	meta := []struct {
		col  int
		kind decodeKind
		typ  schemas.Type
		skip bool
	}{
		{cols.eventID, decodeString, schemas.String, batches && sc.opts.NoEventID},
		{cols.eventTime, decodeInt64, schemas.Int64, false},
		{cols.arrival, decodeInt64, schemas.Int64, batches && sc.opts.NoArrival},
		{cols.partition, decodeInt32, schemas.Int64, false},
		{cols.offset, decodeInt64, schemas.Int64, false},
	}
	for i, m := range meta {
		v := &sc.meta[i]
		if m.skip {
			v.reset(m.typ, 0)
			continue
		}
		v.reset(m.typ, n)
		if err := readColumn(chunks[m.col], m.kind, v, &sc.vals); err != nil {
			return fmt.Errorf("column %d: %w", m.col, err)
		}
		if v.len() != n || len(v.Null) > 0 {
			return fmt.Errorf("column %d has %d values for %d rows, or nulls", m.col, v.len(), n)
		}
	}
	b.Len, b.Worker = n, sc.worker
	b.EventID, b.EventTime, b.Arrival, b.Offset = sc.meta[0].Str, sc.meta[1].Int, sc.meta[2].Int, sc.meta[4].Int
	b.Partition = b.Partition[:0]
	for _, p := range sc.meta[3].Int {
		b.Partition = append(b.Partition, int32(p))
	}
	sc.filter()
	return nil
}

// reads reports whether the scan reads schema field i.
func (sc *scanner) reads(i int) bool {
	return sc.fn != nil || sc.opts.Fields == nil || slices.Contains(sc.opts.Fields, i)
}

// filter drops the batch's rows that the options do not keep.
func (sc *scanner) filter() {
	b := &sc.batch
	sc.keep = sc.keep[:0]
	dropped := false
	for i := range b.Len {
		k := sc.opts.keepTime(b.EventTime[i]) && sc.opts.keepOffset(b.Partition[i], b.Offset[i])
		sc.keep = append(sc.keep, k)
		dropped = dropped || !k
	}
	if !dropped {
		return
	}
	for i := range b.Fields {
		b.Fields[i].keep(sc.keep)
	}
	b.EventID, b.EventTime, b.Arrival = keepRows(b.EventID, sc.keep), keepRows(b.EventTime, sc.keep), keepRows(b.Arrival, sc.keep)
	b.Partition, b.Offset = keepRows(b.Partition, sc.keep), keepRows(b.Offset, sc.keep)
	b.Len = len(b.EventTime)
}

// emit hands fn each row of the batch, its values boxed.
func (sc *scanner) emit() error {
	b, row := &sc.batch, &sc.row
	for i := range b.Len {
		if i%scanBatch == 0 {
			if err := sc.ctx.Err(); err != nil {
				return err
			}
		}
		for f := range b.Fields {
			row.Values[f] = b.Fields[f].Value(i)
		}
		if len(sc.keyIdx) == 1 {
			row.Key = schemas.KeyPart(row.Values[sc.keyIdx[0]])
		} else {
			for k, idx := range sc.keyIdx {
				sc.parts[k] = schemas.KeyPart(row.Values[idx])
			}
			row.Key = schemas.JoinKey(sc.parts)
		}
		row.EventID = b.EventID[i]
		row.EventTime = b.EventTime[i]
		row.Arrival = b.Arrival[i]
		row.Partition = b.Partition[i]
		row.Offset = b.Offset[i]
		if err := sc.fn(row); err != nil {
			return errFromFn{err}
		}
	}
	return nil
}

// fileColumns says where a file holds each value a scan decodes.
type fileColumns struct {
	fields    []fieldDecoder
	eventID   int
	eventTime int
	arrival   int
	partition int
	offset    int
}

// decodeKind is how a field's value is read from its column.
type decodeKind uint8

const (
	decodeConstant decodeKind = iota // the file lacks the column
	decodeString
	decodeInt64
	decodeFloat64
	decodeWiden // INT64 column of a field widened to float64
	decodeBool
	decodeMillis // INT64 TIMESTAMP(MILLIS)
	decodeNanos  // INT64 TIMESTAMP(NANOS)
	decodeInt32  // the INT32 _partition column, read as int64
)

// fieldDecoder reads one schema field from a file's row.
type fieldDecoder struct {
	kind     decodeKind
	col      int
	constant any // for decodeConstant
}

// decodeValue converts one value of the field's column.
func (d *fieldDecoder) decodeValue(v parquet.Value) any {
	if d.kind == decodeConstant {
		return d.constant
	}
	if v.IsNull() {
		return nil
	}
	switch d.kind {
	case decodeString:
		return string(v.ByteArray())
	case decodeInt64:
		return v.Int64()
	case decodeInt32:
		return int64(v.Int32())
	case decodeFloat64:
		return v.Double()
	case decodeWiden:
		return float64(v.Int64())
	case decodeBool:
		return v.Boolean()
	case decodeMillis:
		return v.Int64() * 1000
	case decodeNanos:
		return floorDiv(v.Int64(), 1000)
	}
	return nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// newFileColumns matches a file's columns to a schema's fields by name.
func newFileColumns(schema *schemas.Schema, file *parquet.Schema) (*fileColumns, error) {
	fields := file.Fields()
	byName := make(map[string]int, len(fields))
	for i, f := range fields {
		if !f.Leaf() || f.Repeated() {
			return nil, fmt.Errorf("column %q is nested or repeated; offline store files are flat", f.Name())
		}
		byName[f.Name()] = i
	}
	cols := &fileColumns{fields: make([]fieldDecoder, len(schema.Fields))}
	for i, f := range schema.Fields {
		col, ok := byName[f.Name]
		if !ok {
			v, err := missingValue(schema, f)
			if err != nil {
				return nil, err
			}
			cols.fields[i] = fieldDecoder{kind: decodeConstant, constant: v}
			continue
		}
		kind, err := decodeKindOf(f, fields[col].Type())
		if err != nil {
			return nil, fmt.Errorf("column %q: %w; version %d of the schema makes it %v", f.Name, err, schema.Version, f.Type)
		}
		cols.fields[i] = fieldDecoder{kind: kind, col: col}
	}
	meta := []struct {
		name string
		kind parquet.Kind
		to   *int
	}{
		{schemas.EventIDColumn, parquet.ByteArray, &cols.eventID},
		{schemas.EventTimeColumn, parquet.Int64, &cols.eventTime},
		{schemas.ArrivalTimeColumn, parquet.Int64, &cols.arrival},
		{schemas.PartitionColumn, parquet.Int32, &cols.partition},
		{schemas.OffsetColumn, parquet.Int64, &cols.offset},
	}
	for _, m := range meta {
		col, ok := byName[m.name]
		switch {
		case !ok:
			return nil, fmt.Errorf("column %q is missing", m.name)
		case fields[col].Type().Kind() != m.kind:
			return nil, fmt.Errorf("column %q is %v, want %v", m.name, fields[col].Type().Kind(), m.kind)
		case fields[col].Optional():
			return nil, fmt.Errorf("column %q is optional, want required", m.name)
		}
		*m.to = col
	}
	return cols, nil
}

// decodeKindOf returns how to read a field from a column of type t.
func decodeKindOf(f schemas.Field, t parquet.Type) (decodeKind, error) {
	kind := t.Kind()
	switch {
	case f.Type == schemas.String && kind == parquet.ByteArray:
		return decodeString, nil
	case f.Type == schemas.Int64 && kind == parquet.Int64:
		return decodeInt64, nil
	case f.Type == schemas.Float64 && kind == parquet.Double:
		return decodeFloat64, nil
	case f.Type == schemas.Float64 && kind == parquet.Int64:
		return decodeWiden, nil
	case f.Type == schemas.Bool && kind == parquet.Boolean:
		return decodeBool, nil
	case f.Type == schemas.Timestamp && kind == parquet.Int64:
		if lt := t.LogicalType(); lt != nil {
			if ts, ok := lt.Value.(*format.TimestampType); ok {
				switch ts.Unit.Value.(type) {
				case *format.MilliSeconds:
					return decodeMillis, nil
				case *format.NanoSeconds:
					return decodeNanos, nil
				}
			}
		}
		return decodeInt64, nil
	}
	return 0, fmt.Errorf("is %v", kind)
}

// missingValue returns what a field reads as in a file written before the
// field was added: its default (widened to float64 where the field is), else
// null.
func missingValue(schema *schemas.Schema, f schemas.Field) (any, error) {
	switch x := f.Default.(type) {
	case nil:
		if f.Nullable {
			return nil, nil
		}
		return nil, &schemas.FieldError{Stream: schema.Stream, Field: f.Name, Problem: fmt.Sprintf(
			"version %d added the field without a default and not nullable, so older files have no value for it; "+
				"make it nullable or give it a default", schema.Version)}
	case int64:
		if f.Type == schemas.Float64 {
			return float64(x), nil
		}
	}
	return f.Default, nil
}
