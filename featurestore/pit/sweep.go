package pit

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/sluicehq/sluice/featurestore/window"
)

// sweeper evaluates the entities of one view, one at a time, reusing its
// states: a worker has one per view.
type sweeper struct {
	r     *run
	vi    int
	v     *View
	parts []*part
	// out and lists receive a row's values, one per feature asked.
	out   []window.Cell
	lists [][]any
	// evs and cells hold the entity being swept, decoded; spare and ends
	// are for sorting them.
	evs, spare []window.Event
	cells      []window.Cell
	ends       []int
}

// part is some of the features asked of a view, with a layout and a state
// of their own.
type part struct {
	l  *window.Layout
	st *window.State
	at []int // where each of the layout's specs goes in sweeper.out
	// out and lists receive the part's values of a row.
	out   []window.Cell
	lists [][]any
	// last is the horizon the state was last trimmed to.
	last int64
}

// allTime is the long tile of a point-in-time state that holds only events
// before the rows it is read at: one tile then serves every read.
const allTime = int64(1) << 52 // µs, about 142 years

// newSweeper returns a sweeper of view vi whose tiles hold only the
// features asked of it; the view's own layout still decides which events
// arrived too late (as_served), as online. In event_time, last, lifetime
// aggregates and a first without ttl keep all their events in one tile:
// every event a state holds is before the row it is read at, so no read
// of theirs cuts it. A first with a ttl, which would read the raw events
// of its whole ttl from such a tile, and the windowed features, which need
// their grids, share a state of their own.
func (r *run) newSweeper(vi int) *sweeper {
	v := &r.q.Views[vi]
	s := &sweeper{r: r, vi: vi, v: v, out: make([]window.Cell, len(v.Which)), lists: make([][]any, len(v.Which))}
	var long, grid []int // positions in v.Which
	for k, w := range v.Which {
		spec := &v.CV.Specs[w]
		if r.q.Mode == window.EventTime && !spec.Windowed() && !(spec.Agg == window.First && spec.TTL > 0) {
			long = append(long, k)
		} else {
			grid = append(grid, k)
		}
	}
	s.addPart(long, allTime)
	s.addPart(grid, 0)
	return s
}

// addPart adds a part for the features at positions at of v.Which, if any.
func (s *sweeper) addPart(at []int, longTile int64) {
	if len(at) == 0 {
		return
	}
	which := make([]int, len(at))
	for x, k := range at {
		which[x] = s.v.Which[k]
	}
	l := s.v.CV.Layout.Sub(which, longTile)
	s.parts = append(s.parts, &part{l: l, st: l.NewState(), at: at, out: make([]window.Cell, len(at)), lists: make([][]any, len(at))})
}

// eval reads the part's values at t into s.out.
func (s *sweeper) eval(p *part, t int64, raw window.RawFunc) {
	p.l.EvalCells(t, p.st, raw, nil, p.out, p.lists)
	for x, k := range p.at {
		s.out[k], s.lists[k] = p.out[x], p.lists[x]
	}
}

// sweep evaluates one entity: its spine rows in time order, adding each
// event to the tiles once, before the first row it is visible to. A row at
// t sees events before t (event_time) or, as_served, events that had also
// arrived before t, with the online store's late-event rule.
func (s *sweeper) sweep(e *entity) error {
	r := s.r
	if len(s.parts) == 0 {
		return nil // no feature asked of the view
	}
	for _, p := range s.parts {
		p.l.Reset(p.st)
		p.last = math.MinInt64
	}
	if err := s.decode(e); err != nil {
		return fmt.Errorf("view %q: %w", s.v.CV.View.Name, err)
	}
	evs := s.sort()
	if r.q.Mode == window.EventTime {
		// Every event a state holds is before t, so a read needs raw
		// events only for the tile that a first's ttl cuts.
		raw := window.RawOf(evs)
		j := 0
		for _, row := range e.rows {
			t := r.q.Times[row]
			k := j
			for k < len(evs) && evs[k].Time < t {
				k++
			}
			for _, p := range s.parts {
				p.trim(t)
				p.l.AddRun(p.st, evs[j:k], true)
				s.eval(p, t, raw)
			}
			j = k
			if err := s.store(row); err != nil {
				return err
			}
		}
	} else if err := s.sweepServed(e, evs); err != nil {
		return err
	}
	// Report progress about every 64k rows.
	n := int64(len(e.rows))
	if done := r.spineN.Add(n); done/65536 != (done-n)/65536 {
		r.progress()
	}
	return nil
}

// sweepServed is sweep's as_served half: events join the state in the
// order they arrived, which has one part.
func (s *sweeper) sweepServed(e *entity, evs []window.Event) error {
	r, p := s.r, s.parts[0]
	arrived := slices.Clone(evs)
	slices.SortFunc(arrived, func(a, b window.Event) int {
		if c := cmp.Compare(a.Arrival, b.Arrival); c != 0 {
			return c
		}
		return byTime(a, b)
	})
	all := window.RawOf(evs)
	j := 0
	for _, row := range e.rows {
		t := r.q.Times[row]
		p.trim(t)
		for ; j < len(arrived) && arrived[j].Arrival < t; j++ {
			ev := &arrived[j]
			p.l.Add(p.st, ev, !s.v.CV.Layout.Late(ev))
		}
		// A tile that t cuts is read from the events that had arrived,
		// without those too late for it, as the online store keeps them.
		raw := func(start, end int64) []window.Event {
			var vis []window.Event
			for _, ev := range all(start, end) {
				if ev.Arrival < t && !s.v.CV.Layout.Late(&ev) {
					vis = append(vis, ev)
				}
			}
			return vis
		}
		s.eval(p, t, raw)
		if err := s.store(row); err != nil {
			return err
		}
	}
	return nil
}

// decode puts the entity's events in s.evs, their inputs in s.cells, and
// where each history worker's events end in s.ends, and lets go of the
// encoded form.
func (s *sweeper) decode(e *entity) error {
	n, inputs := e.events(), len(s.v.CV.Inputs)
	evs, ends := slices.Grow(s.evs[:0], n), s.ends[:0]
	if cap(s.cells) < n*inputs {
		s.cells = make([]window.Cell, n*inputs)
	}
	cells := s.cells[:n*inputs]
	for k := range e.chunks {
		for _, span := range e.chunks[k].spans {
			d := window.NewDecoder(span)
			for d.More() {
				if len(evs) == n {
					return window.ErrCorrupt
				}
				i := len(evs)
				ev := window.Event{Time: d.Varint(), Arrival: d.Varint(), Seq: d.Varint(), Cells: cells[i*inputs : (i+1)*inputs : (i+1)*inputs]}
				for k := range ev.Cells {
					ev.Cells[k] = d.Cell()
				}
				evs = append(evs, ev)
			}
			if err := d.Err(); err != nil {
				return err
			}
		}
		e.chunks[k] = chunk{}
		ends = append(ends, len(evs))
	}
	if len(evs) != n {
		return window.ErrCorrupt
	}
	s.evs, s.ends = evs, ends
	return nil
}

// sort orders s.evs by time, then seq, and returns them. Each history
// worker's events, which end at s.ends, are usually in order already: a
// worker reads files in date order, and a file holds an entity's events in
// time order. Those runs are merged, which is cheaper than sorting; s.evs
// and s.spare take turns holding the result.
func (s *sweeper) sort() []window.Event {
	evs, ends := s.evs, s.ends
	start := 0
	for _, end := range ends {
		if !slices.IsSortedFunc(evs[start:end], byTime) {
			slices.SortFunc(evs, byTime)
			return evs
		}
		start = end
	}
	for len(ends) > 1 {
		out := slices.Grow(s.spare[:0], len(evs))
		merged := ends[:0]
		start = 0
		for k := 0; k < len(ends); k += 2 {
			if k+1 == len(ends) {
				out = append(out, evs[start:ends[k]]...)
			} else {
				out = merge(out, evs[start:ends[k]], evs[ends[k]:ends[k+1]])
			}
			start = ends[min(k+1, len(ends)-1)]
			merged = append(merged, len(out))
		}
		evs, s.spare, ends = out, evs, merged
	}
	s.evs = evs
	return evs
}

// merge appends to out the events of a and b, each sorted, in order.
func merge(out, a, b []window.Event) []window.Event {
	for len(a) > 0 && len(b) > 0 {
		if b[0].Before(&a[0]) {
			out, b = append(out, b[0]), b[1:]
		} else {
			out, a = append(out, a[0]), a[1:]
		}
	}
	out = append(out, a...)
	return append(out, b...)
}

// trim drops, before the row at t takes its events, the tiles that no row
// at t or later reads, once the horizon has moved by a tile or more: the
// state then holds about one retention of tiles however long the entity's
// history is, and older events go straight to the base.
func (p *part) trim(t int64) {
	h := t - p.l.Retention
	if len(p.l.Grids) == 0 || h < p.last+p.l.MinWidth() {
		return
	}
	p.l.Trim(p.st, h)
	p.last = h
}

// store files a row's values.
func (s *sweeper) store(row int32) error {
	for k, c := range s.out {
		if err := s.r.res[s.vi][k].set(int(row), c, s.lists[k]); err != nil {
			return fmt.Errorf("view %q, feature %q: %w", s.v.CV.View.Name, s.v.CV.View.Features[s.v.Which[k]].Name, err)
		}
	}
	return nil
}

func byTime(a, b window.Event) int {
	if c := cmp.Compare(a.Time, b.Time); c != 0 {
		return c
	}
	return cmp.Compare(a.Seq, b.Seq)
}
