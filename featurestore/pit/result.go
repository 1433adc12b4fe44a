package pit

import (
	"fmt"

	"github.com/sluicehq/sluice/featurestore/window"
	"github.com/sluicehq/sluice/schemas"
)

// Result holds, per query view and per feature asked of it, one value per
// spine row.
type Result [][]*Column

// Column is one feature's values, one per spine row, typed as
// window.Spec.ResultType says: Int for int64 and timestamps, Float, Bool,
// Str, or Lists for last_n. Held unboxed, a million rows of a float
// feature take 9 MB and nothing for the garbage collector to trace.
type Column struct {
	Type  schemas.Type
	List  bool
	Null  []bool
	Int   []int64
	Float []float64
	Bool  []bool
	Str   []string
	Lists [][]any
}

func newColumn(s *window.Spec, rows int) *Column {
	t, list := s.ResultType()
	c := &Column{Type: t, List: list, Null: make([]bool, rows)}
	switch {
	case list:
		c.Lists = make([][]any, rows)
	case t == schemas.String:
		c.Str = make([]string, rows)
	case t == schemas.Float64:
		c.Float = make([]float64, rows)
	case t == schemas.Bool:
		c.Bool = make([]bool, rows)
	default:
		c.Int = make([]int64, rows)
	}
	return c
}

// Value returns row i's value boxed: int64, float64, bool, string, []any
// or nil.
func (c *Column) Value(i int) any {
	switch {
	case c.Null[i]:
		return nil
	case c.List:
		return c.Lists[i]
	case c.Type == schemas.String:
		return c.Str[i]
	case c.Type == schemas.Float64:
		return c.Float[i]
	case c.Type == schemas.Bool:
		return c.Bool[i]
	}
	return c.Int[i]
}

// set stores row i's value: c, or list for a column of lists.
func (c *Column) set(i int, v window.Cell, list []any) error {
	ok := true
	switch {
	case c.List:
		ok = v.Null()
		c.Lists[i], c.Null[i] = list, list == nil
	case v.Null():
		c.Null[i] = true
	case v.Kind == window.KindFloat:
		ok = c.Float != nil
		if ok {
			c.Float[i] = v.Float()
		}
	case v.Kind == window.KindInt:
		ok = c.Int != nil
		if ok {
			c.Int[i] = v.Int()
		}
	case v.Kind == window.KindString:
		ok = c.Str != nil
		if ok {
			c.Str[i] = v.Str
		}
	case v.Kind == window.KindBool:
		ok = c.Bool != nil
		if ok {
			c.Bool[i] = v.Bool()
		}
	}
	if !ok || (list != nil && !c.List) {
		return fmt.Errorf("a %v value for a column of %v (list %t)", v.Kind, c.Type, c.List)
	}
	return nil
}
