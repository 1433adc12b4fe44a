package window

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/axiomhq/hyperloglog"
)

// ErrCorrupt says stored state could not be decoded.
var ErrCorrupt = errors.New("corrupt stored state")

// Value tags of the stored value encoding.
const (
	tagNull byte = iota
	tagString
	tagInt
	tagFloat
	tagTrue
	tagFalse
)

// AppendValue appends the stored form of one value: nil, string, int64,
// float64 or bool.
func AppendValue(dst []byte, v any) []byte { return AppendCell(dst, CellOf(v)) }

// AppendString, AppendInt, AppendFloat, AppendBool and AppendNull are
// AppendValue for a value whose type the caller knows, unboxed.
func AppendString(dst []byte, x string) []byte {
	dst = append(dst, tagString)
	dst = binary.AppendUvarint(dst, uint64(len(x)))
	return append(dst, x...)
}

func AppendInt(dst []byte, x int64) []byte {
	return binary.AppendVarint(append(dst, tagInt), x)
}

func AppendFloat(dst []byte, x float64) []byte {
	n := len(dst)
	dst = append(dst, tagFloat, 0, 0, 0, 0, 0, 0, 0, 0)
	binary.LittleEndian.PutUint64(dst[n+1:], math.Float64bits(x))
	return dst
}

func AppendBool(dst []byte, x bool) []byte {
	if x {
		return append(dst, tagTrue)
	}
	return append(dst, tagFalse)
}

func AppendNull(dst []byte) []byte { return append(dst, tagNull) }

// Decoder reads what the Append functions of this package wrote.
type Decoder struct {
	b   []byte
	err error
}

// NewDecoder reads b.
func NewDecoder(b []byte) *Decoder { return &Decoder{b: b} }

// Err returns the first error, or ErrCorrupt when bytes are left over.
func (d *Decoder) Err() error {
	if d.err == nil && len(d.b) != 0 {
		return ErrCorrupt
	}
	return d.err
}

// More reports whether bytes are left to read and nothing failed.
func (d *Decoder) More() bool { return d.err == nil && len(d.b) > 0 }

func (d *Decoder) fail() { d.err, d.b = ErrCorrupt, nil }

// Varint reads a signed varint.
func (d *Decoder) Varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// Uvarint reads an unsigned varint.
func (d *Decoder) Uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a length that must fit in what is left.
func (d *Decoder) count() int {
	n := d.Uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *Decoder) bytes(n int) []byte {
	if n > len(d.b) {
		d.fail()
		return nil
	}
	b := d.b[:n]
	d.b = d.b[n:]
	return b
}

func (d *Decoder) float() float64 {
	b := d.bytes(8)
	if b == nil {
		return 0
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(b))
}

// Value reads a value written by AppendValue.
func (d *Decoder) Value() any { return d.Cell().Any() }

// Cell reads a value as Value does, unboxed.
func (d *Decoder) Cell() Cell {
	if len(d.b) == 0 {
		d.fail()
		return Cell{}
	}
	tag := d.b[0]
	d.b = d.b[1:]
	switch tag {
	case tagFloat:
		if len(d.b) < 8 {
			d.fail()
			return Cell{}
		}
		c := Cell{Num: binary.LittleEndian.Uint64(d.b), Kind: KindFloat}
		d.b = d.b[8:]
		return c
	case tagInt:
		return IntCell(d.Varint())
	case tagNull:
		return Cell{}
	case tagString:
		return StringCell(string(d.bytes(d.count())))
	case tagTrue:
		return BoolCell(true)
	case tagFalse:
		return BoolCell(false)
	}
	d.fail()
	return Cell{}
}

// AppendTile appends the stored form of a tile of grid g (its start is
// part of the key, not of the value).
func (l *Layout) AppendTile(dst []byte, g int, t *Tile) []byte {
	dst = binary.AppendVarint(dst, t.Min)
	dst = binary.AppendVarint(dst, t.Max)
	for j, si := range l.Grids[g].Specs {
		dst = appendPartial(dst, &l.Specs[si], &t.Parts[j])
	}
	return dst
}

// DecodeTile reads a tile of grid g starting at start.
func (l *Layout) DecodeTile(b []byte, g int, start int64) (*Tile, error) {
	if g < 0 || g >= len(l.Grids) {
		return nil, fmt.Errorf("tile of grid %d: %w", g, ErrCorrupt)
	}
	d := NewDecoder(b)
	t := &Tile{Start: start, Min: d.Varint(), Max: d.Varint(), Parts: make([]Partial, len(l.Grids[g].Specs))}
	for j, si := range l.Grids[g].Specs {
		d.partial(&l.Specs[si], &t.Parts[j])
	}
	if err := d.Err(); err != nil {
		return nil, fmt.Errorf("tile at %d: %w", start, err)
	}
	return t, nil
}

// AppendBase appends the stored form of a state's base: its first event
// time, horizon and the long grid's folded partials.
func (l *Layout) AppendBase(dst []byte, st *State) []byte {
	if st.HasSeen {
		dst = append(dst, 1)
		dst = binary.AppendVarint(dst, st.Seen)
	} else {
		dst = append(dst, 0)
	}
	dst = binary.AppendVarint(dst, st.Horizon)
	if l.Long >= 0 {
		for j, si := range l.Grids[l.Long].Specs {
			dst = appendPartial(dst, &l.Specs[si], &st.Base[j])
		}
	}
	return dst
}

// DecodeBase reads a base into st.
func (l *Layout) DecodeBase(b []byte, st *State) error {
	d := NewDecoder(b)
	if has := d.bytes(1); has != nil && has[0] == 1 {
		st.Seen, st.HasSeen = d.Varint(), true
	}
	st.Horizon = d.Varint()
	if l.Long >= 0 {
		for j, si := range l.Grids[l.Long].Specs {
			d.partial(&l.Specs[si], &st.Base[j])
		}
	}
	if err := d.Err(); err != nil {
		return fmt.Errorf("state base: %w", err)
	}
	return nil
}

func appendPartial(dst []byte, s *Spec, p *Partial) []byte {
	dst = binary.AppendUvarint(dst, uint64(p.N))
	if p.N == 0 {
		return dst
	}
	dst = binary.AppendVarint(dst, p.Latest)
	switch s.Agg {
	case CountTrue:
		dst = binary.AppendVarint(dst, p.i)
	case Sum, Mean, Stddev:
		dst = binary.AppendVarint(dst, p.i)
		dst = appendSum(dst, &p.sum)
		var sq exactSum
		if p.x != nil {
			sq = p.x.sq
		}
		dst = appendSum(dst, &sq)
	case Min, Max:
		dst = AppendCell(dst, p.best)
	case Last, First:
		dst = AppendCell(dst, p.best)
		dst = binary.AppendVarint(dst, p.i)
		dst = binary.AppendVarint(dst, p.j)
	case LastN:
		items := p.items()
		dst = binary.AppendUvarint(dst, uint64(len(items)))
		for _, it := range items {
			dst = binary.AppendVarint(dst, it.Time)
			dst = binary.AppendVarint(dst, it.Seq)
			dst = AppendValue(dst, it.V)
		}
	case ApproxDistinct:
		hashes := p.hashes()
		dst = binary.AppendUvarint(dst, uint64(len(hashes)))
		for _, h := range hashes {
			dst = binary.LittleEndian.AppendUint64(dst, h)
		}
		if p.sketch() == nil {
			return binary.AppendUvarint(dst, 0)
		}
		sk, _ := p.sketch().MarshalBinary() // cannot fail
		dst = binary.AppendUvarint(dst, uint64(len(sk)))
		dst = append(dst, sk...)
	}
	return dst
}

func appendSum(dst []byte, s *exactSum) []byte {
	parts := s.parts()
	dst = binary.AppendUvarint(dst, uint64(len(parts)))
	for _, x := range parts {
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(x))
	}
	if sp, ok := s.special(); ok {
		dst = append(dst, 1)
		return binary.LittleEndian.AppendUint64(dst, math.Float64bits(sp))
	}
	return append(dst, 0)
}

func (d *Decoder) partial(s *Spec, p *Partial) {
	p.N = int64(d.Uvarint())
	if p.N == 0 || d.err != nil {
		return
	}
	p.Latest = d.Varint()
	switch s.Agg {
	case CountTrue:
		p.i = d.Varint()
	case Sum, Mean, Stddev:
		p.i = d.Varint()
		d.sum(&p.sum)
		var sq exactSum
		if d.sum(&sq); len(sq.parts()) > 0 || sq.big != nil {
			p.ext().sq = sq
		}
	case Min, Max:
		p.best = d.Cell()
	case Last, First:
		p.best = d.Cell()
		p.i, p.j = d.Varint(), d.Varint()
	case LastN:
		n := d.count()
		x := p.ext()
		x.items = make([]Item, 0, n)
		for range n {
			x.items = append(x.items, Item{Time: d.Varint(), Seq: d.Varint(), V: d.Value()})
		}
	case ApproxDistinct:
		n := d.count()
		x := p.ext()
		x.hashes = make([]uint64, 0, n)
		for range n {
			if b := d.bytes(8); b != nil {
				x.hashes = append(x.hashes, binary.LittleEndian.Uint64(b))
			}
		}
		if n := d.count(); n > 0 {
			x.sketch = hyperloglog.NewNoSparse()
			if err := x.sketch.UnmarshalBinary(d.bytes(n)); err != nil {
				d.fail()
			}
		}
	}
}

func (d *Decoder) sum(s *exactSum) {
	n := d.count()
	ps := make([]float64, 0, n)
	for range n {
		ps = append(ps, d.float())
	}
	s.store(ps)
	if flag := d.bytes(1); flag != nil && flag[0] == 1 {
		s.addSpecial(d.float())
	}
}
