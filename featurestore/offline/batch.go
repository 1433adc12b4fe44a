package offline

import (
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding"

	"github.com/sluicehq/sluice/schemas"
)

// Batch is the rows of one row group that a scan keeps, column by column:
// typed slices, one entry per row, with no value boxed. A reader that
// works a column at a time, or only on some fields, reads far faster from
// batches than from Rows.
type Batch struct {
	Len       int
	Worker    int // as Row.Worker
	EventID   []string
	EventTime []int64 // µs since the Unix epoch
	Arrival   []int64 // µs since the Unix epoch
	Partition []int32
	Offset    []int64
	// Fields holds one vector per schema field, in its order, with the
	// values Scan gives (defaults for a column the file lacks, widened and
	// converted as Scan describes).
	Fields []Vector
}

// Vector is one field's values in a batch. Which slice holds them follows
// Type: Int for int64 and timestamp (µs), Float for float64, Bool, Str.
type Vector struct {
	Type  schemas.Type
	Null  []bool // empty when no value is null
	Int   []int64
	Float []float64
	Bool  []bool
	Str   []string
}

// Value returns row i's value with the Go types of schemas.Event, boxed.
func (v *Vector) Value(i int) any {
	if i < len(v.Null) && v.Null[i] {
		return nil
	}
	switch v.Type {
	case schemas.String:
		return v.Str[i]
	case schemas.Float64:
		return v.Float[i]
	case schemas.Bool:
		return v.Bool[i]
	}
	return v.Int[i]
}

// reset empties v for a row group of n rows, keeping its memory.
func (v *Vector) reset(t schemas.Type, n int) {
	v.Type, v.Null = t, v.Null[:0]
	v.Int, v.Float, v.Bool, v.Str = v.Int[:0], v.Float[:0], v.Bool[:0], v.Str[:0]
	switch t {
	case schemas.String:
		v.Str = slices.Grow(v.Str, n)
	case schemas.Float64:
		v.Float = slices.Grow(v.Float, n)
	case schemas.Bool:
		v.Bool = slices.Grow(v.Bool, n)
	default:
		v.Int = slices.Grow(v.Int, n)
	}
}

// len is how many values v holds.
func (v *Vector) len() int {
	return max(len(v.Int), len(v.Float), len(v.Bool), len(v.Str))
}

// appendNull adds a null, marking the rows before it present.
func (v *Vector) appendNull() {
	n := v.len()
	if len(v.Null) < n {
		v.Null = append(v.Null, make([]bool, n-len(v.Null))...)
	}
	v.Null = append(v.Null, true)
	v.appendZero()
}

func (v *Vector) appendZero() {
	switch v.Type {
	case schemas.String:
		v.Str = append(v.Str, "")
	case schemas.Float64:
		v.Float = append(v.Float, 0)
	case schemas.Bool:
		v.Bool = append(v.Bool, false)
	default:
		v.Int = append(v.Int, 0)
	}
}

// Append adds a value with the Go types of schemas.Event, nil for null.
func (v *Vector) Append(x any) {
	if x == nil {
		v.appendNull()
		return
	}
	if len(v.Null) > 0 {
		v.Null = append(v.Null, false)
	}
	switch x := x.(type) {
	case string:
		v.Str = append(v.Str, x)
	case float64:
		v.Float = append(v.Float, x)
	case bool:
		v.Bool = append(v.Bool, x)
	case int64:
		v.Int = append(v.Int, x)
	}
}

// finish pads Null to the vector's length once any value is null.
func (v *Vector) finish() {
	if n := v.len(); len(v.Null) > 0 && len(v.Null) < n {
		v.Null = append(v.Null, make([]bool, n-len(v.Null))...)
	}
}

// keep drops the rows whose keep entry is false.
func (v *Vector) keep(keep []bool) {
	v.Null = keepRows(v.Null, keep)
	v.Int = keepRows(v.Int, keep)
	v.Float = keepRows(v.Float, keep)
	v.Bool = keepRows(v.Bool, keep)
	v.Str = keepRows(v.Str, keep)
}

func keepRows[T any](s []T, keep []bool) []T {
	if len(s) == 0 {
		return s
	}
	n := 0
	for i, k := range keep {
		if k {
			s[n] = s[i]
			n++
		}
	}
	return s[:n]
}

// readColumn appends a column chunk's values to v, converted as kind says.
func readColumn(cc parquet.ColumnChunk, kind decodeKind, v *Vector, buf *[]parquet.Value) error {
	pages := cc.Pages()
	defer pages.Close()
	for {
		pg, err := pages.ReadPage()
		if errors.Is(err, io.EOF) {
			v.finish()
			return nil
		}
		if err != nil {
			return err
		}
		err = readPage(pg, kind, v, buf)
		parquet.Release(pg)
		if err != nil {
			return err
		}
	}
}

// readPage appends one page's values to v: straight from the page's
// decoded data where it is plain, else value by value.
func readPage(pg parquet.Page, kind decodeKind, v *Vector, buf *[]parquet.Value) error {
	levels := pg.DefinitionLevels()
	if pg.Dictionary() != nil || pg.RepetitionLevels() != nil {
		return readValues(pg, kind, v, buf)
	}
	data := pg.Data()
	present := int(pg.NumValues() - pg.NumNulls())
	if levels == nil && pg.NumNulls() > 0 {
		return readValues(pg, kind, v, buf)
	}
	switch kind {
	case decodeFloat64:
		if data.Kind() != encoding.Double || len(data.Double()) != present {
			return readValues(pg, kind, v, buf)
		}
		spread(v, levels, data.Double(), func(x float64) { v.Float = append(v.Float, x) })
	case decodeInt64, decodeWiden, decodeMillis, decodeNanos:
		if data.Kind() != encoding.Int64 || len(data.Int64()) != present {
			return readValues(pg, kind, v, buf)
		}
		spread(v, levels, data.Int64(), func(x int64) {
			switch kind {
			case decodeWiden:
				v.Float = append(v.Float, float64(x))
			case decodeMillis:
				v.Int = append(v.Int, x*1000)
			case decodeNanos:
				v.Int = append(v.Int, floorDiv(x, 1000))
			default:
				v.Int = append(v.Int, x)
			}
		})
	case decodeInt32:
		if data.Kind() != encoding.Int32 || len(data.Int32()) != present {
			return readValues(pg, kind, v, buf)
		}
		spread(v, levels, data.Int32(), func(x int32) { v.Int = append(v.Int, int64(x)) })
	case decodeString:
		b, offs := data.ByteArray()
		if data.Kind() != encoding.ByteArray || len(offs) != present+1 {
			return readValues(pg, kind, v, buf)
		}
		// One string holds the page; each value is a slice of it.
		all := string(b[offs[0]:offs[present]])
		base := offs[0]
		i := 0
		// offs[:present] stands for the present values, one offset each.
		spread(v, levels, offs[:present], func(uint32) {
			v.Str = append(v.Str, all[offs[i]-base:offs[i+1]-base])
			i++
		})
	default:
		return readValues(pg, kind, v, buf)
	}
	return nil
}

// spread appends the page's present values through add, and a null for
// each definition level of 0; levels nil means every value is present.
func spread[T any](v *Vector, levels []byte, values []T, add func(T)) {
	if levels == nil {
		for _, x := range values {
			add(x)
		}
		return
	}
	k := 0
	for _, l := range levels {
		if l == 0 {
			v.appendNull()
			continue
		}
		add(values[k])
		k++
	}
}

// readValues appends a page's values one parquet.Value at a time: for
// dictionary-encoded pages and any layout the fast path does not know.
func readValues(pg parquet.Page, kind decodeKind, v *Vector, buf *[]parquet.Value) error {
	if cap(*buf) == 0 {
		*buf = make([]parquet.Value, scanBatch)
	}
	r := pg.Values()
	d := fieldDecoder{kind: kind}
	for {
		n, err := r.ReadValues((*buf)[:cap(*buf)])
		for _, pv := range (*buf)[:n] {
			v.Append(d.decodeValue(pv))
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read page: %w", err)
		}
	}
}
