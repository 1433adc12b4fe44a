package offline

import (
	"cmp"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"

	"github.com/parquet-go/parquet-go"

	"github.com/sluicehq/sluice/schemas"
)

// errUnsorted is returned by a merge whose inputs turn out not to be sorted
// by entity key, event time and offset; the merge is then done by sorting.
var errUnsorted = errors.New("input files are not sorted by entity key, event time and offset")

// merger merges files of one stream into one file in a target schema, rows
// sorted by entity key, event time and offset.
type merger struct {
	target       fileSchema
	rowGroupRows int
	fanIn        int
	scratch      int // scratch files made so far, which numbers their names
}

// mergeRow is a row in the target schema and its sort key.
type mergeRow struct {
	values parquet.Row
	key    string
	time   int64
	offset int64
}

func compareRows(a, b *mergeRow) int {
	return cmp.Or(cmp.Compare(a.key, b.key), cmp.Compare(a.time, b.time), cmp.Compare(a.offset, b.offset))
}

// mergeFiles merges inputs into the file out, synced, and returns the rows
// and bytes written. Each input's rows are expected sorted, as the sink
// writes them, and are merged as streams; should one not be, the rows are
// sorted in memory instead.
func (m *merger) mergeFiles(ctx context.Context, inputs []string, out string) (rows, size int64, err error) {
	rows, size, err = m.merge(ctx, inputs, out, true)
	if errors.Is(err, errUnsorted) {
		os.Remove(out)
		return m.sortFiles(ctx, inputs, out)
	}
	return rows, size, err
}

// merge merges inputs into out, reading at most fanIn files at a time: while
// there are more, it merges just enough of them into a scratch file for the
// rest to fit one final pass, so most rows are written once or twice. Scratch
// files are named after out, so Open deletes those a crash leaves.
func (m *merger) merge(ctx context.Context, inputs []string, out string, final bool) (rows, size int64, err error) {
	var scratch []string
	defer func() {
		for _, p := range scratch {
			os.Remove(p)
		}
	}()
	queue := slices.Clone(inputs)
	for len(queue) > m.fanIn {
		k := min(m.fanIn, len(queue)-m.fanIn+1)
		m.scratch++
		path := out + "." + strconv.Itoa(m.scratch)
		scratch = append(scratch, path)
		if _, _, err := m.mergeOnce(ctx, queue[:k], path, false); err != nil {
			return 0, 0, err
		}
		queue = append(queue[k:], path)
	}
	return m.mergeOnce(ctx, queue, out, final)
}

// mergeOnce merges inputs into out in one pass over all of them at once.
func (m *merger) mergeOnce(ctx context.Context, inputs []string, out string, final bool) (rows, size int64, err error) {
	var h sourceHeap
	defer func() {
		for _, src := range h {
			src.close()
		}
	}()
	for _, in := range inputs {
		src, err := m.open(in)
		if err != nil {
			return 0, 0, err
		}
		ok, err := src.next()
		if !ok || err != nil {
			src.close()
			if err != nil {
				return 0, 0, err
			}
			continue
		}
		h = append(h, src)
	}
	heap.Init(&h)
	w, err := m.create(out, final)
	if err != nil {
		return 0, 0, err
	}
	defer w.abort()
	var prev mergeRow
	for len(h) > 0 {
		src := h[0]
		if w.rows > 0 && compareRows(&prev, &src.head) > 0 {
			return 0, 0, errUnsorted
		}
		prev = src.head
		if err := w.add(ctx, src.head.values); err != nil {
			return 0, 0, err
		}
		ok, err := src.next()
		switch {
		case err != nil:
			return 0, 0, err
		case ok:
			heap.Fix(&h, 0)
		default:
			heap.Pop(&h).(*source).close()
		}
	}
	return w.close()
}

// sortFiles reads every row of inputs, sorts them and writes them to out.
func (m *merger) sortFiles(ctx context.Context, inputs []string, out string) (rows, size int64, err error) {
	var all []mergeRow
	for _, in := range inputs {
		src, err := m.open(in)
		if err != nil {
			return 0, 0, err
		}
		for {
			ok, err := src.next()
			if err != nil {
				src.close()
				return 0, 0, err
			}
			if !ok {
				break
			}
			all = append(all, src.head)
		}
		src.close()
	}
	slices.SortFunc(all, func(a, b mergeRow) int { return compareRows(&a, &b) })
	w, err := m.create(out, true)
	if err != nil {
		return 0, 0, err
	}
	defer w.abort()
	for i := range all {
		if err := w.add(ctx, all[i].values); err != nil {
			return 0, 0, err
		}
	}
	return w.close()
}

// rowWriter writes rows to a new Parquet file in the target schema.
type rowWriter struct {
	path  string
	file  *os.File
	w     *parquet.Writer
	final bool // sync the file on close
	batch []parquet.Row
	rows  int64
	done  bool
}

func (m *merger) create(path string, final bool) (*rowWriter, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	// Scratch files are read once and deleted: compressing them buys little.
	var codec parquet.WriterOption = parquet.Compression(&parquet.Zstd)
	if !final {
		codec = parquet.Compression(&parquet.Uncompressed)
	}
	w := parquet.NewWriter(f, m.target.parquet, codec,
		parquet.MaxRowsPerRowGroup(int64(m.rowGroupRows)),
		parquet.KeyValueMetadata("sluice.stream", m.target.schema.Stream),
		parquet.KeyValueMetadata("sluice.schema_version", strconv.Itoa(m.target.schema.Version)))
	return &rowWriter{path: path, file: f, w: w, final: final, batch: make([]parquet.Row, 0, writeRowsBatch)}, nil
}

func (w *rowWriter) add(ctx context.Context, row parquet.Row) error {
	w.batch = append(w.batch, row)
	w.rows++
	if len(w.batch) < cap(w.batch) {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return w.flush()
}

func (w *rowWriter) flush() error {
	if _, err := w.w.WriteRows(w.batch); err != nil {
		return fmt.Errorf("write %s: %w", w.path, err)
	}
	clear(w.batch)
	w.batch = w.batch[:0]
	return nil
}

// close finishes the file and returns its rows and size.
func (w *rowWriter) close() (rows, size int64, err error) {
	w.done = true
	err = w.flush()
	if err == nil {
		err = w.w.Close()
	}
	if err == nil && w.final {
		err = w.file.Sync()
	}
	var st os.FileInfo
	if err == nil {
		st, err = w.file.Stat()
	}
	if cerr := w.file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, 0, fmt.Errorf("write %s: %w", w.path, err)
	}
	return w.rows, st.Size(), nil
}

// abort closes a file close did not finish; the caller deletes it.
func (w *rowWriter) abort() {
	if !w.done {
		w.file.Close()
	}
}

// source reads the rows of one input file, converted to the target schema.
type source struct {
	path    string
	file    *os.File
	reader  *parquet.Reader
	conv    rowConverter
	raw     []parquet.Row
	pending []mergeRow
	head    mergeRow
}

// sourceBatch is how many rows a source reads at a time.
const sourceBatch = 256

func (m *merger) open(path string) (*source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	pf, err := parquet.OpenFile(f, st.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	conv, err := newRowConverter(m.target, pf.Schema())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return &source{path: path, file: f, reader: parquet.NewReader(pf), conv: conv, raw: make([]parquet.Row, sourceBatch)}, nil
}

// next moves head to the next row; it returns false at the end.
func (s *source) next() (bool, error) {
	if len(s.pending) == 0 {
		n, err := s.reader.ReadRows(s.raw)
		if n == 0 {
			if err == nil || errors.Is(err, io.EOF) {
				return false, nil
			}
			return false, fmt.Errorf("read %s: %w", s.path, err)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return false, fmt.Errorf("read %s: %w", s.path, err)
		}
		if s.pending, err = s.conv.convert(s.raw[:n]); err != nil {
			return false, fmt.Errorf("read %s: %w", s.path, err)
		}
	}
	s.head, s.pending = s.pending[0], s.pending[1:]
	return true, nil
}

func (s *source) close() {
	s.reader.Close()
	s.file.Close()
}

// sourceHeap orders sources by their head rows.
type sourceHeap []*source

func (h sourceHeap) Len() int           { return len(h) }
func (h sourceHeap) Less(i, j int) bool { return compareRows(&h[i].head, &h[j].head) < 0 }
func (h sourceHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *sourceHeap) Push(x any)        { *h = append(*h, x.(*source)) }
func (h *sourceHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// rowConverter converts rows of a file to the columns of a target schema,
// matching columns by name as a flush converts rows of older schema
// versions: a column the file lacks takes the field's default or null, an
// INT64 column becomes DOUBLE where the field was widened.
type rowConverter struct {
	cols      []colSource // per target column
	srcWidth  int
	keyIdx    []int // target columns of the entity key
	timeIdx   int
	offsetIdx int
}

type colSource struct {
	src      int           // the file's column, or -1: constant
	constant parquet.Value // when src < 0, levels set
	widen    bool          // INT64 to DOUBLE
	maxDef   int           // 1 if the target column is optional
	name     string
}

func newRowConverter(fs fileSchema, file *parquet.Schema) (rowConverter, error) {
	target := fs.schema
	srcCols := map[string]int{}
	srcKinds := map[string]parquet.Kind{}
	for i, f := range file.Fields() {
		if !f.Leaf() || f.Repeated() {
			return rowConverter{}, fmt.Errorf("column %q is nested or repeated; offline store files are flat", f.Name())
		}
		srcCols[f.Name()], srcKinds[f.Name()] = i, f.Type().Kind()
	}
	nf := len(target.Fields)
	c := rowConverter{srcWidth: len(file.Fields()), timeIdx: nf + 1, offsetIdx: nf + 4}
	for _, name := range target.KeyFields {
		i := target.Index(name)
		if i < 0 {
			return rowConverter{}, fmt.Errorf("key field %q is not in version %d of the schema", name, target.Version)
		}
		c.keyIdx = append(c.keyIdx, i)
	}
	for j, f := range fs.parquet.Fields() {
		col := colSource{name: f.Name(), src: -1}
		if f.Optional() {
			col.maxDef = 1
		}
		i, ok := srcCols[f.Name()]
		switch kind := f.Type().Kind(); {
		case ok && srcKinds[f.Name()] == kind:
			col.src = i
		case ok && srcKinds[f.Name()] == parquet.Int64 && kind == parquet.Double:
			col.src, col.widen = i, true
		case ok:
			return rowConverter{}, fmt.Errorf("column %q is %v, version %d of the schema makes it %v",
				f.Name(), srcKinds[f.Name()], target.Version, kind)
		case j >= nf:
			return rowConverter{}, fmt.Errorf("column %q is missing", f.Name())
		default:
			v, err := defaultValue(target, target.Fields[j])
			if err != nil {
				return rowConverter{}, err
			}
			def := 0
			if !v.IsNull() {
				def = col.maxDef
			}
			col.constant = v.Level(0, def, j)
		}
		c.cols = append(c.cols, col)
	}
	return c, nil
}

// defaultValue returns what a field holds in rows written before it was
// added: its default, else null.
func defaultValue(s *schemas.Schema, f schemas.Field) (parquet.Value, error) {
	switch x := f.Default.(type) {
	case nil:
		if f.Nullable {
			return parquet.NullValue(), nil
		}
	case string:
		if f.Type == schemas.String {
			return parquet.ByteArrayValue([]byte(x)), nil
		}
	case int64:
		switch f.Type {
		case schemas.Int64, schemas.Timestamp:
			return parquet.Int64Value(x), nil
		case schemas.Float64:
			return parquet.DoubleValue(float64(x)), nil
		}
	case float64:
		if f.Type == schemas.Float64 {
			return parquet.DoubleValue(x), nil
		}
	case bool:
		if f.Type == schemas.Bool {
			return parquet.BooleanValue(x), nil
		}
	}
	if f.Default == nil {
		return parquet.Value{}, &schemas.FieldError{Stream: s.Stream, Field: f.Name, Problem: fmt.Sprintf(
			"version %d added the field without a default and not nullable, so older files have no value for it", s.Version)}
	}
	return parquet.Value{}, &schemas.FieldError{Stream: s.Stream, Field: f.Name, Problem: fmt.Sprintf(
		"default %v of Go type %T does not fit type %v", f.Default, f.Default, f.Type)}
}

// convert converts raw rows of the file; the result owns its memory.
func (c *rowConverter) convert(raw []parquet.Row) ([]mergeRow, error) {
	width := len(c.cols)
	values := make([]parquet.Value, len(raw)*width)
	size := 0
	for _, r := range raw {
		for _, v := range r {
			if v.Kind() == parquet.ByteArray {
				size += len(v.ByteArray())
			}
		}
	}
	bytes := make([]byte, 0, size)
	out := make([]mergeRow, len(raw))
	for n, r := range raw {
		if len(r) != c.srcWidth {
			return nil, fmt.Errorf("row has %d values for %d columns", len(r), c.srcWidth)
		}
		row := values[n*width : (n+1)*width : (n+1)*width]
		for j, col := range c.cols {
			if col.src < 0 {
				row[j] = col.constant
				continue
			}
			v := r[col.src]
			switch {
			case v.IsNull():
				if col.maxDef == 0 {
					return nil, fmt.Errorf("column %q is null but required in the schema written", col.name)
				}
				row[j] = parquet.NullValue().Level(0, 0, j)
				continue
			case col.widen:
				v = parquet.DoubleValue(float64(v.Int64()))
			case v.Kind() == parquet.ByteArray:
				start := len(bytes)
				bytes = append(bytes, v.ByteArray()...)
				v = parquet.ByteArrayValue(bytes[start:len(bytes):len(bytes)])
			}
			row[j] = v.Level(0, col.maxDef, j)
		}
		out[n] = mergeRow{values: row, key: c.key(row), time: row[c.timeIdx].Int64(), offset: row[c.offsetIdx].Int64()}
	}
	return out, nil
}

// key returns a row's canonical entity key, as schemas.Schema.Key does.
func (c *rowConverter) key(row parquet.Row) string {
	part := func(v parquet.Value) string {
		switch {
		case v.IsNull():
			return ""
		case v.Kind() == parquet.ByteArray:
			return string(v.ByteArray())
		case v.Kind() == parquet.Int64:
			return strconv.FormatInt(v.Int64(), 10)
		}
		return ""
	}
	if len(c.keyIdx) == 1 {
		return part(row[c.keyIdx[0]])
	}
	parts := make([]string, len(c.keyIdx))
	for i, idx := range c.keyIdx {
		parts[i] = part(row[idx])
	}
	return schemas.JoinKey(parts)
}
