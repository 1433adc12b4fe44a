package window

import (
	"math"
)

// RawFunc returns an entity's events with start <= Time < end, sorted by
// Event.Before. A read calls it only for a tile that its tile bounds cut:
// the head tile when it holds events at or after t, and the tail tile of a
// first with a ttl.
type RawFunc func(start, end int64) []Event

// Eval computes the value at t of every spec of l from st, writing out[i]
// for Specs[i]; len(out) must be len(l.Specs). raw may be nil when st holds
// no event at or after t (the point-in-time engine builds states that way).
//
// This is the time rule of the design, section 4: windowed values merge
// the tiles of [floor(t-w, h), floor(t, h)) and the head [floor(t, h), t);
// lifetime values add the base; last and first take the latest or earliest
// event before t within their ttl.
func (l *Layout) Eval(t int64, st *State, raw RawFunc, out []Value) {
	l.EvalSpecs(t, st, raw, nil, out)
}

// EvalSpecs is Eval for some specs: out[i] is the value of
// Specs[which[i]]; which nil means every spec.
func (l *Layout) EvalSpecs(t int64, st *State, raw RawFunc, which []int, out []Value) {
	l.eval(t, st, raw, which, func(k int, o outcome) {
		v := Value{Status: o.status, Time: o.time, HasTime: o.hasTime, V: o.c.Any()}
		if o.list != nil {
			v.V = o.list
		}
		out[k] = v
	})
}

// EvalCells is EvalSpecs for a caller that holds values unboxed, as the
// point-in-time engine does: out[i] is the value of Specs[which[i]], null
// when there is none, except that a list (last_n) goes to lists[i], boxed,
// its cell null.
func (l *Layout) EvalCells(t int64, st *State, raw RawFunc, which []int, out []Cell, lists [][]any) {
	l.eval(t, st, raw, which, func(k int, o outcome) { out[k], lists[k] = o.c, o.list })
}

func (l *Layout) eval(t int64, st *State, raw RawFunc, which []int, emit func(k int, o outcome)) {
	seen := st.HasSeen && st.Seen < t
	r := reader{l: l, st: st, raw: raw, t: t}
	n := len(l.Specs)
	if which != nil {
		n = len(which)
	}
	for k := range n {
		i := k
		if which != nil {
			i = which[k]
		}
		emit(k, r.value(i, seen))
	}
}

// outcome is a value before it is boxed: a cell, or a list for last_n.
type outcome struct {
	c       Cell
	list    []any
	status  Status
	time    int64
	hasTime bool
}

func (o *outcome) null() bool { return o.list == nil && o.c.Null() }

// value computes spec i at r.t.
func (r *reader) value(i int, seen bool) outcome {
	s := &r.l.Specs[i]
	switch s.Agg {
	case Last:
		return r.last(i)
	case First:
		return r.first(i)
	}
	var lo int64 = math.MinInt64
	if s.Window > 0 {
		lo = Floor(r.t-s.Window, s.hop())
	}
	p := r.span(i, lo, r.t)
	v := p.result(s)
	switch {
	case !v.null() && (p.N > 0 || seen):
		v.status = Present
	case !seen:
		v.status = NotFound
	default:
		v.status = NullValue
	}
	return v
}

// reader evaluates one state at one t.
type reader struct {
	l   *Layout
	st  *State
	raw RawFunc
	t   int64
}

// span returns spec i's partial over the events of [from, t); from is
// math.MinInt64 for no lower bound, else aligned to the spec's grid or cut
// by raw events.
func (r *reader) span(i int, from, to int64) Partial {
	sl := r.l.slot[i]
	s := &r.l.Specs[i]
	var acc Partial
	if sl.grid == r.l.Long && from < r.st.Horizon {
		acc = r.st.Base[sl.index].clone()
	}
	w := r.l.Grids[sl.grid].Width
	tiles := r.st.Tiles[sl.grid]
	k, _ := findTile(tiles, Floor(max(from, math.MinInt64+w), w))
	for ; k < len(tiles) && tiles[k].Start < to; k++ {
		tile := tiles[k]
		if tile.Deleted {
			continue
		}
		if tile.Min >= from && tile.Max < to {
			acc.merge(s, &tile.Parts[sl.index])
			continue
		}
		r.addRaw(i, &acc, tile.Start, tile.Start+w, from, to)
	}
	return acc
}

// addRaw adds spec i's inputs of the raw events of [start, end) that also
// lie in [from, to).
func (r *reader) addRaw(i int, acc *Partial, start, end, from, to int64) {
	if r.raw == nil {
		return
	}
	s := &r.l.Specs[i]
	for _, e := range r.raw(max(start, from), min(end, to)) {
		if e.Time < from || e.Time >= to {
			continue
		}
		if s.hop() > 0 && r.l.Late(&e) {
			continue // as its tiles did
		}
		if c, ok := s.input(&e); ok {
			acc.add(s, e.Time, e.Seq, c)
		}
	}
}

// last returns the latest event before t within the ttl.
func (r *reader) last(i int) outcome {
	p := r.latest(i, r.t)
	return r.pick(&r.l.Specs[i], &p)
}

// latest returns spec i's partial holding its latest non-null input
// before t: the one of the latest tile that has any, else the base's.
func (r *reader) latest(i int, t int64) Partial {
	sl := r.l.slot[i]
	w := r.l.Grids[sl.grid].Width
	var found Partial
	tiles := r.st.Tiles[sl.grid]
	k, _ := findTile(tiles, Floor(t, w)+1)
	for k--; k >= 0 && found.N == 0; k-- {
		tile := tiles[k]
		switch {
		case tile.Deleted:
		case tile.Max < t:
			found = tile.Parts[sl.index]
		default:
			r.addRaw(i, &found, tile.Start, tile.Start+w, math.MinInt64, t)
		}
	}
	if found.N == 0 && r.st.Base != nil {
		found = r.st.Base[sl.index]
	}
	return found
}

// first returns the earliest event of [t - ttl, t), or of all before t
// without a ttl.
func (r *reader) first(i int) outcome {
	sl := r.l.slot[i]
	s := &r.l.Specs[i]
	from := int64(math.MinInt64)
	var found Partial
	if s.TTL > 0 {
		from = r.t - s.TTL
	} else if r.st.Base != nil {
		found = r.st.Base[sl.index]
	}
	w := r.l.Grids[sl.grid].Width
	tiles := r.st.Tiles[sl.grid]
	k, _ := findTile(tiles, Floor(max(from, math.MinInt64+w), w))
	for ; k < len(tiles) && found.N == 0 && tiles[k].Start < r.t; k++ {
		tile := tiles[k]
		switch {
		case tile.Deleted:
		case tile.Min >= from && tile.Max < r.t:
			found = tile.Parts[sl.index]
		default:
			r.addRaw(i, &found, tile.Start, tile.Start+w, from, r.t)
		}
	}
	if found.N > 0 || s.TTL <= 0 {
		return r.pick(s, &found)
	}
	// Nothing within the ttl: was there a value before it?
	if older := r.latest(i, from); older.N > 0 {
		return outcome{status: OutsideMaxAge}
	}
	return outcome{status: NotFound}
}

// pick turns the chosen last or first partial into a value with its status.
func (r *reader) pick(s *Spec, p *Partial) outcome {
	if p.N == 0 {
		return outcome{status: NotFound}
	}
	if s.TTL > 0 && p.i < r.t-s.TTL {
		return outcome{status: OutsideMaxAge}
	}
	v := p.result(s)
	v.status = Present
	return v
}
