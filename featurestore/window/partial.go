package window

import (
	"math"
	"slices"
	"strconv"

	"github.com/axiomhq/hyperloglog"

	"github.com/sluicehq/sluice/schemas"
)

// Partial is one spec's aggregate over a set of events: a tile, or the
// merge of several. Every aggregation is mergeable and its result depends
// only on the set of events, never on the order in which they were added
// or partials merged; that is what lets the stream engine and the
// point-in-time engine build tiles in different orders and still agree.
//
// Tiles hold one Partial per spec, so it is kept small: what only some
// aggregations need lives behind x.
type Partial struct {
	N      int64 // included events: non-null inputs (every event for count)
	Latest int64 // event time of the latest included event, when N > 0
	// i is count_true's count of trues, the int64 sum of sum, mean and
	// stddev, or the chosen event's time for last and first; j is that
	// event's seq.
	i, j int64
	best any      // min, max, last, first
	sum  exactSum // float sum: sum, mean, stddev
	x    *partialExt
}

// partialExt holds the state of stddev, last_n and approx_distinct.
type partialExt struct {
	sq     exactSum            // sum of squares, for stddev
	items  []Item              // last_n: the latest n, oldest first
	hashes []uint64            // approx_distinct: sorted distinct hashes, until there are too many
	sketch *hyperloglog.Sketch // approx_distinct: dense sketch once hashes overflowed
}

// ext returns p's extension, creating it.
func (p *Partial) ext() *partialExt {
	if p.x == nil {
		p.x = &partialExt{}
	}
	return p.x
}

func (p *Partial) items() []Item {
	if p.x == nil {
		return nil
	}
	return p.x.items
}

func (p *Partial) hashes() []uint64 {
	if p.x == nil {
		return nil
	}
	return p.x.hashes
}

func (p *Partial) sketch() *hyperloglog.Sketch {
	if p.x == nil {
		return nil
	}
	return p.x.sketch
}

// Item is one value of last_n with its event's order.
type Item struct {
	Time, Seq int64
	V         any
}

// maxHashes bounds the exact hash set of an approx_distinct partial; past
// it the partial keeps a dense sketch.
const maxHashes = 256

// add folds one event into p. v is the event's input (true for specs that
// read no field); the caller skips null inputs.
func (p *Partial) add(s *Spec, e *Event, v any) {
	if p.N == 0 || e.Time > p.Latest {
		p.Latest = e.Time
	}
	p.N++
	switch s.Agg {
	case CountTrue:
		if b, _ := v.(bool); b {
			p.i++
		}
	case Sum, Mean, Stddev:
		x := 0.0
		switch n := v.(type) {
		case int64:
			p.i += n
			x = float64(n)
		case float64:
			x = n
		}
		p.sum.add(x)
		if s.Agg == Stddev {
			p.ext().sq.addProduct(x, x)
		}
	case Min:
		if p.N == 1 || less(v, p.best) {
			p.best = v
		}
	case Max:
		if p.N == 1 || less(p.best, v) {
			p.best = v
		}
	case Last:
		if p.N == 1 || later(e.Time, e.Seq, p.i, p.j) {
			p.best, p.i, p.j = v, e.Time, e.Seq
		}
	case First:
		if p.N == 1 || earlierFirst(e.Time, e.Seq, p.i, p.j) {
			p.best, p.i, p.j = v, e.Time, e.Seq
		}
	case LastN:
		p.addItems(s.N, Item{e.Time, e.Seq, v})
	case ApproxDistinct:
		p.addHash(distinctHash(v))
	}
}

// later reports whether (t, seq) orders after (bt, bseq).
func later(t, seq, bt, bseq int64) bool { return t > bt || (t == bt && seq > bseq) }

// earlierFirst reports whether (t, seq) beats (bt, bseq) for first: the
// earliest time wins, and among equal times the higher seq, as for last.
func earlierFirst(t, seq, bt, bseq int64) bool { return t < bt || (t == bt && seq > bseq) }

// merge folds o into p.
func (p *Partial) merge(s *Spec, o *Partial) {
	if o.N == 0 {
		return
	}
	if p.N == 0 || o.Latest > p.Latest {
		p.Latest = o.Latest
	}
	first := p.N == 0
	p.N += o.N
	switch s.Agg {
	case CountTrue:
		p.i += o.i
	case Sum, Mean, Stddev:
		p.i += o.i
		p.sum.merge(&o.sum)
		if o.x != nil {
			p.ext().sq.merge(&o.x.sq)
		}
	case Min:
		if first || less(o.best, p.best) {
			p.best = o.best
		}
	case Max:
		if first || less(p.best, o.best) {
			p.best = o.best
		}
	case Last:
		if first || later(o.i, o.j, p.i, p.j) {
			p.best, p.i, p.j = o.best, o.i, o.j
		}
	case First:
		if first || earlierFirst(o.i, o.j, p.i, p.j) {
			p.best, p.i, p.j = o.best, o.i, o.j
		}
	case LastN:
		for _, it := range o.items() {
			p.addItems(s.N, it)
		}
	case ApproxDistinct:
		for _, h := range o.hashes() {
			p.addHash(h)
		}
		if sk := o.sketch(); sk != nil {
			p.toSketch()
			_ = p.x.sketch.Merge(sk) // same precision: cannot fail
		}
	}
}

// addItems inserts it in order and keeps the latest n.
func (p *Partial) addItems(n int, it Item) {
	x := p.ext()
	i, _ := slices.BinarySearchFunc(x.items, it, func(a, b Item) int {
		switch {
		case later(b.Time, b.Seq, a.Time, a.Seq):
			return -1
		case later(a.Time, a.Seq, b.Time, b.Seq):
			return 1
		}
		return 0
	})
	if len(x.items) >= n && i == 0 {
		return // older than every kept item
	}
	x.items = slices.Insert(x.items, i, it)
	if len(x.items) > n {
		x.items = slices.Delete(x.items, 0, len(x.items)-n)
	}
}

func (p *Partial) addHash(h uint64) {
	x := p.ext()
	if x.sketch != nil {
		x.sketch.InsertHash(h)
		return
	}
	i, found := slices.BinarySearch(x.hashes, h)
	if found {
		return
	}
	x.hashes = slices.Insert(x.hashes, i, h)
	if len(x.hashes) > maxHashes {
		p.toSketch()
	}
}

// toSketch moves the exact hash set into a dense sketch.
func (p *Partial) toSketch() {
	x := p.ext()
	if x.sketch == nil {
		x.sketch = hyperloglog.NewNoSparse()
	}
	for _, h := range x.hashes {
		x.sketch.InsertHash(h)
	}
	x.hashes = nil
}

// result turns the merged partial into a value (status left to the caller).
func (p *Partial) result(s *Spec) Value {
	val := Value{Time: p.Latest, HasTime: p.N > 0}
	switch s.Agg {
	case Count:
		val.V = p.N
	case CountTrue:
		val.V = p.i
	case Sum:
		if s.Type == schemas.Int64 {
			val.V = p.i
		} else {
			val.V = p.sum.value()
		}
	case Mean:
		if p.N > 0 {
			val.V = p.sum.value() / float64(p.N)
		}
	case Stddev:
		if p.N > 1 {
			val.V = stddev(p.N, &p.sum, &p.ext().sq)
		}
	case Min, Max:
		if p.N > 0 {
			val.V = p.best
		}
	case Last, First:
		if p.N > 0 {
			val.V, val.Time = p.best, p.i
		}
	case LastN:
		if items := p.items(); len(items) > 0 {
			vs := make([]any, len(items))
			for i, it := range items {
				vs[i] = it.V
			}
			val.V = vs
		}
	case ApproxDistinct:
		if p.N > 0 {
			val.V = p.distinct()
		}
	}
	return val
}

// stddev is the sample standard deviation from exact sums: n·Σx² − (Σx)² is
// formed exactly and rounded once, so it is both order-independent and
// free of the cancellation of the textbook formula.
func stddev(n int64, sum, sq *exactSum) float64 {
	_, spec1 := sum.special()
	_, spec2 := sq.special()
	if spec1 || spec2 {
		return math.NaN()
	}
	var num exactSum
	nf := float64(n)
	for _, q := range sq.parts() {
		num.addProduct(nf, q)
	}
	for _, a := range sum.parts() {
		for _, b := range sum.parts() {
			num.addProduct(-a, b)
		}
	}
	v := num.value() / (nf * float64(n-1))
	if v < 0 {
		v = 0
	}
	return math.Sqrt(v)
}

// distinct estimates the number of distinct hashes. The estimate is built
// the same way from the same set however the partial came about: exact
// hashes inserted in sorted order into a fresh sketch, merged with the
// dense sketch of overflowed tiles.
func (p *Partial) distinct() int64 {
	sk := hyperloglog.New14()
	for _, h := range p.hashes() {
		sk.InsertHash(h)
	}
	if dense := p.sketch(); dense != nil {
		_ = sk.Merge(dense)
	}
	return int64(sk.Estimate())
}

// clone returns a deep copy of p that shares nothing mutable with it.
func (p *Partial) clone() Partial {
	c := *p
	c.sum = p.sum.clone()
	if p.x != nil {
		x := partialExt{sq: p.x.sq.clone(), items: slices.Clone(p.x.items), hashes: slices.Clone(p.x.hashes)}
		if p.x.sketch != nil {
			x.sketch = p.x.sketch.Clone()
		}
		c.x = &x
	}
	return c
}

// less orders two non-null values of one type.
func less(a, b any) bool {
	switch x := a.(type) {
	case int64:
		return x < b.(int64)
	case float64:
		return x < b.(float64)
	case string:
		return x < b.(string)
	case bool:
		return !x && b.(bool)
	}
	return false
}

// distinctHash hashes a value's canonical text with 64-bit FNV-1a and a
// final avalanche, so that HyperLogLog sees well-spread bits.
func distinctHash(v any) uint64 {
	var buf [32]byte
	var b []byte
	switch x := v.(type) {
	case string:
		return mix(fnv(nil, x))
	case int64:
		b = strconv.AppendInt(buf[:0], x, 10)
	case float64:
		b = strconv.AppendFloat(buf[:0], x, 'g', -1, 64)
	case bool:
		b = strconv.AppendBool(buf[:0], x)
	}
	return mix(fnv(b, ""))
}

func fnv(b []byte, s string) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h = (h ^ uint64(c)) * 1099511628211
	}
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * 1099511628211
	}
	return h
}

// mix is a 64-bit finalizer (xor-shift-multiply) that spreads every input
// bit over the whole word.
func mix(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}
