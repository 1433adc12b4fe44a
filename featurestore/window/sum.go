package window

import "math"

// exactSum is the exact sum of float64 values, held as a list of
// non-overlapping partial sums in increasing magnitude (a floating-point
// expansion). Adding and merging lose nothing, and Value rounds the exact
// sum once, correctly, so the result does not depend on the order in which
// values were added or partial sums merged: online tiles built in arrival
// order and training sets built in time order agree to the last bit.
type exactSum struct {
	parts   []float64
	special float64 // the sum of infinities and NaNs seen, which expansions cannot hold
	hasSpec bool
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
		s.special += x
		s.hasSpec = true
		return
	}
	n := 0
	for _, p := range s.parts {
		hi, lo := twoSum(x, p)
		if math.IsInf(hi, 0) {
			// The running sum overflows float64: keep it as a special
			// value rather than corrupting the expansion.
			s.special += hi
			s.hasSpec = true
			return
		}
		if lo != 0 {
			s.parts[n] = lo
			n++
		}
		x = hi
	}
	s.parts = append(s.parts[:n], x)
}

// merge adds every partial sum of o.
func (s *exactSum) merge(o *exactSum) {
	for _, p := range o.parts {
		s.add(p)
	}
	if o.hasSpec {
		s.special += o.special
		s.hasSpec = true
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
	if s.hasSpec {
		return s.special
	}
	n := len(s.parts)
	if n == 0 {
		return 0
	}
	// Sum from the largest part down until the remainder stops being
	// exact; then round half-way cases by the sign of what lies below.
	hi := s.parts[n-1]
	lo := 0.0
	i := n - 2
	for ; i >= 0; i-- {
		x, y := hi, s.parts[i]
		hi = x + y
		lo = y - (hi - x)
		if lo != 0 {
			break
		}
	}
	if i > 0 && ((lo < 0 && s.parts[i-1] < 0) || (lo > 0 && s.parts[i-1] > 0)) {
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
	s.parts = append([]float64(nil), s.parts...)
	return s
}
