package window

import (
	"math"
	"strconv"
)

// Kind is the type of a Cell's value.
type Kind uint8

// The kinds of a Cell; the zero Cell is null.
const (
	KindNull Kind = iota
	KindInt
	KindFloat
	KindBool
	KindString
)

func (k Kind) String() string {
	switch k {
	case KindInt:
		return "int64"
	case KindFloat:
		return "float64"
	case KindBool:
		return "bool"
	case KindString:
		return "string"
	}
	return "null"
}

// Cell is one input value held unboxed: what tiles keep for min, max, last
// and first, and what the point-in-time engine decodes events into, so
// that neither allocates per value. Num holds an int64, a float64's bits
// or a bool (1 for true); Str holds a string.
type Cell struct {
	Num  uint64
	Str  string
	Kind Kind
}

// IntCell, FloatCell, BoolCell and StringCell make a Cell of a value whose
// type the caller knows.
func IntCell(x int64) Cell { return Cell{Num: uint64(x), Kind: KindInt} }

func FloatCell(x float64) Cell { return Cell{Num: math.Float64bits(x), Kind: KindFloat} }

func BoolCell(x bool) Cell {
	c := Cell{Kind: KindBool}
	if x {
		c.Num = 1
	}
	return c
}

func StringCell(x string) Cell { return Cell{Str: x, Kind: KindString} }

// CellOf unboxes v: nil, int64, float64, bool or string (any other type is
// null).
func CellOf(v any) Cell {
	switch x := v.(type) {
	case int64:
		return IntCell(x)
	case float64:
		return FloatCell(x)
	case bool:
		return BoolCell(x)
	case string:
		return StringCell(x)
	}
	return Cell{}
}

// Any boxes the value: nil, int64, float64, bool or string.
func (c Cell) Any() any {
	switch c.Kind {
	case KindInt:
		return int64(c.Num)
	case KindFloat:
		return math.Float64frombits(c.Num)
	case KindBool:
		return c.Num == 1
	case KindString:
		return c.Str
	}
	return nil
}

// Null reports whether the cell holds no value.
func (c Cell) Null() bool { return c.Kind == KindNull }

// Int, Float and Bool read a cell of that kind.
func (c Cell) Int() int64 { return int64(c.Num) }

func (c Cell) Float() float64 { return math.Float64frombits(c.Num) }

func (c Cell) Bool() bool { return c.Num == 1 }

// lessCell orders two non-null cells of one kind. NaN orders above every
// other float, as SQL engines order it, so that min and max are the same
// however events are split into tiles.
func lessCell(a, b Cell) bool {
	switch a.Kind {
	case KindInt:
		return int64(a.Num) < int64(b.Num)
	case KindFloat:
		x, y := a.Float(), b.Float()
		return x < y || (math.IsNaN(y) && !math.IsNaN(x))
	case KindString:
		return a.Str < b.Str
	case KindBool:
		return a.Num < b.Num
	}
	return false
}

// distinctHash hashes a value's canonical text with 64-bit FNV-1a and a
// final avalanche, so that HyperLogLog sees well-spread bits.
func distinctHash(c Cell) uint64 {
	var buf [32]byte
	var b []byte
	switch c.Kind {
	case KindString:
		return mix(fnv(nil, c.Str))
	case KindInt:
		b = strconv.AppendInt(buf[:0], c.Int(), 10)
	case KindFloat:
		b = strconv.AppendFloat(buf[:0], c.Float(), 'g', -1, 64)
	case KindBool:
		b = strconv.AppendBool(buf[:0], c.Bool())
	}
	return mix(fnv(b, ""))
}

// AppendCell appends the stored form of c, as AppendValue does for c.Any().
func AppendCell(dst []byte, c Cell) []byte {
	switch c.Kind {
	case KindString:
		return AppendString(dst, c.Str)
	case KindInt:
		return AppendInt(dst, c.Int())
	case KindFloat:
		return AppendFloat(dst, c.Float())
	case KindBool:
		return AppendBool(dst, c.Bool())
	}
	return AppendNull(dst)
}

// input returns the spec's input from e (true for a spec that reads no
// field: every event counts), and false when it is null, which the spec
// skips.
func (s *Spec) input(e *Event) (Cell, bool) {
	if s.Input < 0 {
		return Cell{Num: 1, Kind: KindBool}, true
	}
	var c Cell
	if e.Cells != nil {
		c = e.Cells[s.Input]
	} else {
		c = CellOf(e.Values[s.Input])
	}
	return c, !c.Null()
}
