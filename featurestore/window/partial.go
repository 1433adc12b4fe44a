package window

import (
	"math"
	"slices"

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
	best Cell     // min, max, last, first
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

// add folds one event, at time t with seq, into p. c is the event's input
// (true for specs that read no field); the caller skips null inputs.
func (p *Partial) add(s *Spec, t, seq int64, c Cell) {
	if p.N == 0 || t > p.Latest {
		p.Latest = t
	}
	p.N++
	switch s.Agg {
	case CountTrue:
		if c.Kind == KindBool && c.Bool() {
			p.i++
		}
	case Sum, Mean, Stddev:
		x := 0.0
		switch c.Kind {
		case KindInt:
			p.i += c.Int()
			x = float64(c.Int())
		case KindFloat:
			x = c.Float()
		}
		p.sum.add(x)
		if s.Agg == Stddev {
			p.ext().sq.addProduct(x, x)
		}
	case Min:
		if p.N == 1 || lessCell(c, p.best) {
			p.best = c
		}
	case Max:
		if p.N == 1 || lessCell(p.best, c) {
			p.best = c
		}
	case Last:
		if p.N == 1 || later(t, seq, p.i, p.j) {
			p.best, p.i, p.j = c, t, seq
		}
	case First:
		if p.N == 1 || earlierFirst(t, seq, p.i, p.j) {
			p.best, p.i, p.j = c, t, seq
		}
	case LastN:
		p.addItems(s.N, Item{t, seq, c.Any()})
	case ApproxDistinct:
		p.addHash(distinctHash(c))
	}
}

// addRun folds events sorted by Time, then Seq, into p, as add would one
// at a time: count of events, last and first find their one event without
// looking at the others' values.
func (p *Partial) addRun(s *Spec, evs []Event) {
	switch {
	case s.Input < 0 && s.Agg == Count:
		if p.N == 0 || evs[len(evs)-1].Time > p.Latest {
			p.Latest = evs[len(evs)-1].Time
		}
		p.N += int64(len(evs))
		return
	case s.Agg != Last && s.Agg != First:
		for i := range evs {
			if c, ok := s.input(&evs[i]); ok {
				p.add(s, evs[i].Time, evs[i].Seq, c)
			}
		}
		return
	}
	// last takes the latest event with a value, first the earliest, except
	// that among equal times first also takes the higher seq.
	n, pick, latest := 0, -1, -1
	var c Cell
	for i := range evs {
		if v, ok := s.input(&evs[i]); ok {
			n, latest = n+1, i
			if pick < 0 || s.Agg == Last || evs[i].Time == evs[pick].Time {
				pick, c = i, v
			}
		}
	}
	if n == 0 {
		return
	}
	t, seq := evs[pick].Time, evs[pick].Seq
	if p.N == 0 || evs[latest].Time > p.Latest {
		p.Latest = evs[latest].Time
	}
	p.N += int64(n)
	if p.N == int64(n) || (s.Agg == Last && later(t, seq, p.i, p.j)) || (s.Agg == First && earlierFirst(t, seq, p.i, p.j)) {
		p.best, p.i, p.j = c, t, seq
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
		if first || lessCell(o.best, p.best) {
			p.best = o.best
		}
	case Max:
		if first || lessCell(p.best, o.best) {
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
func (p *Partial) result(s *Spec) outcome {
	o := outcome{time: p.Latest, hasTime: p.N > 0}
	switch s.Agg {
	case Count:
		o.c = IntCell(p.N)
	case CountTrue:
		o.c = IntCell(p.i)
	case Sum:
		if s.Type == schemas.Int64 {
			o.c = IntCell(p.i)
		} else {
			o.c = FloatCell(p.sum.value())
		}
	case Mean:
		if p.N > 0 {
			o.c = FloatCell(p.sum.value() / float64(p.N))
		}
	case Stddev:
		if p.N > 1 {
			o.c = FloatCell(stddev(p.N, &p.sum, &p.ext().sq))
		}
	case Min, Max:
		if p.N > 0 {
			o.c = p.best
		}
	case Last, First:
		if p.N > 0 {
			o.c, o.time = p.best, p.i
		}
	case LastN:
		if items := p.items(); len(items) > 0 {
			o.list = make([]any, len(items))
			for i, it := range items {
				o.list[i] = it.V
			}
		}
	case ApproxDistinct:
		if p.N > 0 {
			o.c = IntCell(p.distinct())
		}
	}
	return o
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
