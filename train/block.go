package train

import (
	"errors"
	"fmt"
	"slices"

	"github.com/sluicehq/sluice/schemas"
)

// Block is a run of rows held column by column, which Writer.WriteBlock
// writes without boxing a value: one Vector per dataset column, in column
// order, each holding Rows values.
type Block struct {
	Rows int
	Cols []Vector
}

// Vector holds one column's values for the rows of a Block, in the slice
// that the column's type names: Int for int64 and timestamp (microseconds
// since the Unix epoch), Float for float64, Bool, Str for string, and Lists
// for a list column, whose items are values of the column's type as
// Writer.Write takes them, or nil; a nil list is an empty one. The other
// slices are ignored.
//
// Null, when not nil, marks the rows that are null; a null row's slot in the
// typed slice is ignored.
type Vector struct {
	Null  []bool
	Int   []int64
	Float []float64
	Bool  []bool
	Str   []string
	Lists [][]any
}

// len returns the number of values v holds for column c.
func (v *Vector) len(c Column) int {
	switch {
	case c.List:
		return len(v.Lists)
	case c.Type == schemas.String:
		return len(v.Str)
	case c.Type == schemas.Float64:
		return len(v.Float)
	case c.Type == schemas.Bool:
		return len(v.Bool)
	}
	return len(v.Int)
}

// null reports whether row i is null.
func (v *Vector) null(i int) bool { return v.Null != nil && v.Null[i] }

// slice returns rows [lo, hi) of v, sharing its memory.
func (v Vector) slice(lo, hi int) Vector {
	return Vector{
		Null:  part(v.Null, lo, hi),
		Int:   part(v.Int, lo, hi),
		Float: part(v.Float, lo, hi),
		Bool:  part(v.Bool, lo, hi),
		Str:   part(v.Str, lo, hi),
		Lists: part(v.Lists, lo, hi),
	}
}

// part returns s[lo:hi], or nil for a nil s.
func part[T any](s []T, lo, hi int) []T {
	if s == nil {
		return nil
	}
	return s[lo:hi]
}

// slice returns rows [lo, hi) of b, sharing its memory.
func (b Block) slice(lo, hi int) Block {
	out := Block{Rows: hi - lo, Cols: make([]Vector, len(b.Cols))}
	for i := range b.Cols {
		out.Cols[i] = b.Cols[i].slice(lo, hi)
	}
	return out
}

// check reports the first thing of b that cols refuse: a vector of the wrong
// length, a null where none may be, a list item of the wrong type. first is
// the dataset row of b's first row, which errors name.
func (b *Block) check(cols []Column, first int64) error {
	if len(b.Cols) != len(cols) {
		return fmt.Errorf("write block at row %d: got %d vectors for the %d columns", first, len(b.Cols), len(cols))
	}
	if b.Rows < 0 {
		return fmt.Errorf("write block at row %d: %d rows", first, b.Rows)
	}
	for i, c := range cols {
		v := &b.Cols[i]
		if n := v.len(c); n != b.Rows {
			return fmt.Errorf("write block at row %d: column %q: %d values for %d rows (fill the Vector's %s slice)",
				first, c.Name, n, b.Rows, vectorField(c))
		}
		if v.Null != nil && len(v.Null) != b.Rows {
			return fmt.Errorf("write block at row %d: column %q: %d null flags for %d rows", first, c.Name, len(v.Null), b.Rows)
		}
		if !c.List && (c.Nullable || v.Null == nil) {
			continue // any value of the slice fits
		}
		for r := range b.Rows {
			if err := v.checkRow(c, r); err != nil {
				return fmt.Errorf("write row %d: column %q: %w", first+int64(r), c.Name, err)
			}
		}
	}
	return nil
}

// checkRow checks row r of a vector of column c: not null unless c is
// nullable, and for a list, each item of c's type.
func (v *Vector) checkRow(c Column, r int) error {
	if v.null(r) {
		if !c.Nullable {
			return errNotNullable
		}
		return nil
	}
	if !c.List {
		return nil
	}
	for k, item := range v.Lists[r] {
		if item != nil && !fits(c.Type, item) {
			return fmt.Errorf("item %d: %w", k, misfit(c.Type, item))
		}
	}
	return nil
}

// vectorField names the slice of a Vector that holds column c's values.
func vectorField(c Column) string {
	switch {
	case c.List:
		return "Lists"
	case c.Type == schemas.String:
		return "Str"
	case c.Type == schemas.Float64:
		return "Float"
	case c.Type == schemas.Bool:
		return "Bool"
	}
	return "Int"
}

// errNotNullable refuses a null in a column that is not nullable.
var errNotNullable = errors.New("is null but the column is not nullable")

// fits reports whether x, not nil, is a value of type t as Write takes it.
func fits(t schemas.Type, x any) bool {
	switch x.(type) {
	case string:
		return t == schemas.String
	case int64:
		return t == schemas.Int64 || t == schemas.Timestamp
	case float64:
		return t == schemas.Float64
	case bool:
		return t == schemas.Bool
	}
	return false
}

func misfit(t schemas.Type, x any) error {
	return fmt.Errorf("value %v of Go type %T does not fit type %v", x, x, t)
}

// add appends x, a value of column c as Write takes it, to v, which keeps
// its Null slice as long as its values. It refuses a value of the wrong
// type and leaves v as it was.
func (v *Vector) add(c Column, x any) error {
	if x == nil {
		if !c.Nullable {
			return errNotNullable
		}
		v.addZero(c)
		v.Null = append(v.Null, true)
		return nil
	}
	if c.List {
		items, ok := x.([]any)
		if !ok {
			return fmt.Errorf("value %v of Go type %T is not a list ([]any) of %v", x, x, c.Type)
		}
		for k, item := range items {
			if item != nil && !fits(c.Type, item) {
				return fmt.Errorf("item %d: %w", k, misfit(c.Type, item))
			}
		}
		v.Lists = append(v.Lists, items)
		v.Null = append(v.Null, false)
		return nil
	}
	if !fits(c.Type, x) {
		return misfit(c.Type, x)
	}
	switch x := x.(type) {
	case string:
		v.Str = append(v.Str, x)
	case int64:
		v.Int = append(v.Int, x)
	case float64:
		v.Float = append(v.Float, x)
	case bool:
		v.Bool = append(v.Bool, x)
	}
	v.Null = append(v.Null, false)
	return nil
}

// reserve makes room in v, a vector of column c, for n more rows.
func (v *Vector) reserve(c Column, n int) {
	v.Null = slices.Grow(v.Null, n)
	switch {
	case c.List:
		v.Lists = slices.Grow(v.Lists, n)
	case c.Type == schemas.String:
		v.Str = slices.Grow(v.Str, n)
	case c.Type == schemas.Float64:
		v.Float = slices.Grow(v.Float, n)
	case c.Type == schemas.Bool:
		v.Bool = slices.Grow(v.Bool, n)
	default:
		v.Int = slices.Grow(v.Int, n)
	}
}

// addZero appends the zero value of column c's type.
func (v *Vector) addZero(c Column) {
	switch {
	case c.List:
		v.Lists = append(v.Lists, nil)
	case c.Type == schemas.String:
		v.Str = append(v.Str, "")
	case c.Type == schemas.Float64:
		v.Float = append(v.Float, 0)
	case c.Type == schemas.Bool:
		v.Bool = append(v.Bool, false)
	default:
		v.Int = append(v.Int, 0)
	}
}

// truncate cuts v, a vector of column c, to its first n rows; it clears
// the rows dropped so they hold no memory.
func (v *Vector) truncate(c Column, n int) {
	v.Null = v.Null[:min(n, len(v.Null))]
	switch {
	case c.List:
		clear(v.Lists[n:])
		v.Lists = v.Lists[:n]
	case c.Type == schemas.String:
		clear(v.Str[n:])
		v.Str = v.Str[:n]
	case c.Type == schemas.Float64:
		v.Float = v.Float[:n]
	case c.Type == schemas.Bool:
		v.Bool = v.Bool[:n]
	default:
		v.Int = v.Int[:n]
	}
}
