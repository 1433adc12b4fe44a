package train

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/parquet-go/parquet-go"

	"github.com/sluicehq/sluice/schemas"
)

// pageRows is how many rows go to a column writer at once. Parquet-go ends
// a page only between two such writes, once the page has reached its buffer
// size; writing a row group's rows in runs of pageRows counted from its first
// row makes the pages, and so the files, the same however the rows were cut
// into blocks. Parquet-go's own row path writes runs of the same length.
const pageRows = 64

// columnEncoder turns one column's vectors into Parquet values.
type columnEncoder struct {
	col   Column
	index int             // the column's leaf index in the schema
	def   int             // the definition level of a present value, lists aside
	vals  []parquet.Value // scratch
}

func newColumnEncoders(cols []Column) []columnEncoder {
	enc := make([]columnEncoder, len(cols))
	for i, c := range cols {
		enc[i] = columnEncoder{col: c, index: i}
		if c.Nullable {
			enc[i].def = 1
		}
	}
	return enc
}

// encode writes rows [lo, hi) of b to the column writers of rg, which they
// fit in, and to the profile: each column is a task, and up to
// WriterOptions.Workers goroutines take them in turn.
func (w *Writer) encode(rg *rowGroup, b *Block, lo, hi int) error {
	cws := rg.w.ColumnWriters()
	errs := make([]error, len(w.enc))
	var next atomic.Int64
	work := func() {
		for {
			j := int(next.Add(1) - 1)
			if j >= len(w.enc) {
				return
			}
			v := &b.Cols[j]
			errs[j] = w.enc[j].write(cws[j], v, lo, hi, rg.rows)
			w.prof.observeColumn(j, v, lo, hi)
		}
	}
	var wg sync.WaitGroup
	for range min(w.opts.Workers, len(w.enc)) - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
	return errors.Join(errs...)
}

// write writes rows [lo, hi) of v to cw, the column's writer in a row group
// that holds filled rows already.
func (e *columnEncoder) write(cw *parquet.ColumnWriter, v *Vector, lo, hi, filled int) error {
	for lo < hi {
		end := min(hi, lo+pageRows-filled%pageRows)
		e.vals = e.values(e.vals[:0], v, lo, end)
		if _, err := cw.WriteRowValues(e.vals); err != nil {
			return fmt.Errorf("column %q: %w", e.col.Name, err)
		}
		filled += end - lo
		lo = end
	}
	clear(e.vals[:cap(e.vals)]) // hold no strings or lists of the caller's
	return nil
}

// values returns the Parquet values of rows [lo, hi) of v in out, reused.
func (e *columnEncoder) values(out []parquet.Value, v *Vector, lo, hi int) []parquet.Value {
	if e.col.List {
		for i := lo; i < hi; i++ {
			out = e.listValues(out, v, i)
		}
		return out
	}
	n := hi - lo
	out = slices.Grow(out, n)[:n]
	switch e.col.Type {
	case schemas.String:
		for k, x := range v.Str[lo:hi] {
			out[k] = stringValue(x)
		}
	case schemas.Float64:
		for k, x := range v.Float[lo:hi] {
			out[k] = parquet.DoubleValue(x)
		}
	case schemas.Bool:
		for k, x := range v.Bool[lo:hi] {
			out[k] = parquet.BooleanValue(x)
		}
	default:
		for k, x := range v.Int[lo:hi] {
			out[k] = parquet.Int64Value(x)
		}
	}
	for k := range out {
		if v.null(lo + k) {
			out[k] = parquet.NullValue()
		} else {
			out[k].SetDefinitionLevel(e.def)
		}
		out[k].SetColumnIndex(e.index)
	}
	return out
}

// listValues appends the Parquet values of row i of v, a list column's
// vector: a null list is one null value at level 0, an empty one a null
// value at the list's level, and items follow at the levels above it.
func (e *columnEncoder) listValues(out []parquet.Value, v *Vector, i int) []parquet.Value {
	if v.null(i) {
		return append(out, parquet.NullValue().Level(0, 0, e.index))
	}
	items := v.Lists[i]
	if len(items) == 0 {
		return append(out, parquet.NullValue().Level(0, e.def, e.index))
	}
	for k, item := range items {
		rep := min(k, 1)
		if item == nil {
			out = append(out, parquet.NullValue().Level(rep, e.def+1, e.index))
			continue
		}
		out = append(out, boxedLeaf(item).Level(rep, e.def+2, e.index))
	}
	return out
}

// boxedLeaf returns the Parquet value of x, a list item that fits its
// column's type.
func boxedLeaf(x any) parquet.Value {
	switch x := x.(type) {
	case string:
		return stringValue(x)
	case float64:
		return parquet.DoubleValue(x)
	case bool:
		return parquet.BooleanValue(x)
	case int64:
		return parquet.Int64Value(x)
	}
	panic(fmt.Sprintf("train: list item of Go type %T passed the checks", x))
}

// stringValue returns a BYTE_ARRAY value that references the bytes of s
// without copying them; column writers copy them into their buffers.
func stringValue(s string) parquet.Value {
	return parquet.ByteArrayValue(unsafe.Slice(unsafe.StringData(s), len(s)))
}
