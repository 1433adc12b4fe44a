package window

import "math"

// exactSum is the exact sum of float64 values, held as a list of
// non-overlapping partial sums in increasing magnitude (a floating-point
// expansion). Adding and merging lose nothing, and Value rounds the exact
// sum once, correctly, so the result does not depend on the order in which
// values were added or partial sums merged: online tiles built in arrival
// order and training sets built in time order agree to the last bit.
//
// Up to two partial sums, the usual case, live inside the struct, so a sum
// costs no allocation and little memory.
type exactSum struct {
	small [2]float64
	n     uint8   // partial sums in small, while big is nil
	big   *bigSum // every partial sum once there were more than two, and special values
}

type bigSum struct {
	parts   []float64
	special float64 // the sum of infinities and NaNs seen, which expansions cannot hold
	hasSpec bool
}

// parts returns the partial sums, smallest first; the slice must not be
// kept past the next change of s.
func (s *exactSum) parts() []float64 {
	if s.big != nil {
		return s.big.parts
	}
	return s.small[:s.n]
}

// grow moves the partial sums out of small.
func (s *exactSum) grow() *bigSum {
	if s.big == nil {
		s.big = &bigSum{parts: append([]float64(nil), s.small[:s.n]...)}
		s.n = 0
	}
	return s.big
}

// store replaces the partial sums with ps.
func (s *exactSum) store(ps []float64) {
	if s.big == nil && len(ps) <= len(s.small) {
		s.n = uint8(copy(s.small[:], ps))
		return
	}
	b := s.grow()
	b.parts = append(b.parts[:0], ps...)
}

// addSpecial adds an infinity or NaN, or an overflowed sum.
func (s *exactSum) addSpecial(x float64) {
	b := s.grow()
	b.special += x
	b.hasSpec = true
}

// special returns the sum of special values, and whether there were any.
func (s *exactSum) special() (float64, bool) {
	if s.big == nil {
		return 0, false
	}
	return s.big.special, s.big.hasSpec
}

// twoSum returns a+b rounded and the exact rounding error.
func twoSum(a, b float64) (hi, lo float64) {
	hi = a + b
	bv := hi - a
	av := hi - bv
	return hi, (a - av) + (b - bv)
}

// add adds x exactly.
func (s *exactSum) add(x float64) {
	if math.IsInf(x, 0) || math.IsNaN(x) {
		s.addSpecial(x)
		return
	}
	cur := s.parts()
	var buf [8]float64
	out := buf[:0]
	if len(cur)+1 > len(buf) {
		out = make([]float64, 0, len(cur)+1)
	}
	for _, p := range cur {
		hi, lo := twoSum(x, p)
		if math.IsInf(hi, 0) {
			// The running sum overflows float64: keep it as a special
			// value rather than corrupting the expansion.
			s.addSpecial(hi)
			return
		}
		if lo != 0 {
			out = append(out, lo)
		}
		x = hi
	}
	s.store(append(out, x))
}

// merge adds every partial sum of o.
func (s *exactSum) merge(o *exactSum) {
	for _, p := range o.parts() {
		s.add(p)
	}
	if sp, ok := o.special(); ok {
		s.addSpecial(sp)
	}
}

// addProduct adds a*b exactly (its rounded product and the rounding error).
func (s *exactSum) addProduct(a, b float64) {
	p := a * b
	s.add(p)
	s.add(math.FMA(a, b, -p))
}

// value returns the exact sum correctly rounded to float64 (ties to even).
func (s *exactSum) value() float64 {
	if sp, ok := s.special(); ok {
		return sp
	}
	parts := s.parts()
	n := len(parts)
	if n == 0 {
		return 0
	}
	// Sum from the largest part down until the remainder stops being
	// exact; then round half-way cases by the sign of what lies below.
	hi := parts[n-1]
	lo := 0.0
	i := n - 2
	for ; i >= 0; i-- {
		x, y := hi, parts[i]
		hi = x + y
		lo = y - (hi - x)
		if lo != 0 {
			break
		}
	}
	if i > 0 && ((lo < 0 && parts[i-1] < 0) || (lo > 0 && parts[i-1] > 0)) {
		y := lo * 2
		x := hi + y
		if y == x-hi {
			hi = x
		}
	}
	return hi
}

// clone returns an independent copy.
func (s exactSum) clone() exactSum {
	if s.big != nil {
		b := *s.big
		b.parts = append([]float64(nil), b.parts...)
		s.big = &b
	}
	return s
}
