package pit

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/sluicehq/sluice/featurestore/window"
)

// sweeper evaluates the entities of one view, one at a time, reusing one
// state: a worker has one per view.
type sweeper struct {
	r   *run
	vi  int
	v   *View
	l   *window.Layout
	st  *window.State
	// out and lists receive a row's values.
	out   []window.Cell
	lists [][]any
	// last is the horizon the state was last trimmed to.
	last int64
	// evs and cells hold the entity being swept, decoded; spare and ends
	// are for sorting them.
	evs, spare []window.Event
	cells      []window.Cell
	ends       []int
}

// newSweeper returns a sweeper of view vi whose tiles hold only the
// features asked of it; the view's own layout still decides which events
// arrived too late (as_served), as online.
func (r *run) newSweeper(vi int) *sweeper {
	v := &r.q.Views[vi]
	l := v.CV.Layout.Sub(v.Which)
	return &sweeper{r: r, vi: vi, v: v, l: l, st: l.NewState(), out: make([]window.Cell, len(v.Which)), lists: make([][]any, len(v.Which))}
}

// sweep evaluates one entity: its spine rows in time order, adding each
// event to the tiles once, before the first row it is visible to. A row at
// t sees events before t (event_time) or, as_served, events that had also
// arrived before t, with the online store's late-event rule.
func (s *sweeper) sweep(e *entity) error {
	r, l, st := s.r, s.l, s.st
	l.Reset(st)
	s.last = math.MinInt64
	evs, cells, ends, err := e.decode(len(s.v.CV.Inputs), s.evs, s.cells, s.ends)
	if err != nil {
		return fmt.Errorf("view %q: %w", s.v.CV.View.Name, err)
	}
	s.cells, s.ends = cells, ends
	evs = s.sort(evs, ends)
	if r.q.Mode == window.EventTime {
		// Every event the state holds is before t, so a read needs raw
		// events only for the tile that a first's ttl cuts.
		raw := window.RawOf(evs)
		j := 0
		for _, row := range e.rows {
			t := r.q.Times[row]
			s.trim(t)
			k := j
			for k < len(evs) && evs[k].Time < t {
				k++
			}
			l.AddRun(st, evs[j:k], true)
			j = k
			l.EvalCells(t, st, raw, nil, s.out, s.lists)
			if err := s.store(row); err != nil {
				return err
			}
		}
	} else {
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
			s.trim(t)
			for ; j < len(arrived) && arrived[j].Arrival < t; j++ {
				ev := &arrived[j]
				l.Add(st, ev, !late(s.v.CV.Layout, ev))
			}
			// A tile that t cuts is read from the events that had arrived,
			// without those too late for it, as the online store keeps them.
			raw := func(start, end int64) []window.Event {
				var vis []window.Event
				for _, ev := range all(start, end) {
					if ev.Arrival < t && !late(s.v.CV.Layout, &ev) {
						vis = append(vis, ev)
					}
				}
				return vis
			}
			l.EvalCells(t, st, raw, nil, s.out, s.lists)
			if err := s.store(row); err != nil {
				return err
			}
		}
	}
	// Report progress about every 64k rows.
	n := int64(len(e.rows))
	if done := r.spineN.Add(n); done/65536 != (done-n)/65536 {
		r.progress()
	}
	return nil
}

// sort orders evs by time, then seq. Each history worker's events, which
// end at ends, are usually in order already: a worker reads files in date
// order, and a file holds an entity's events in time order. Those runs are
// merged, which is cheaper than sorting; evs and s.spare take turns
// holding the result, which it returns.
func (s *sweeper) sort(evs []window.Event, ends []int) []window.Event {
	start := 0
	for _, end := range ends {
		if !slices.IsSortedFunc(evs[start:end], byTime) {
			slices.SortFunc(evs, byTime)
			s.evs = evs
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
func (s *sweeper) trim(t int64) {
	h := t - s.l.Retention
	if len(s.l.Grids) == 0 || h < s.last+s.l.MinWidth() {
		return
	}
	s.l.Trim(s.st, h)
	s.last = h
}

// late reports whether an event arrived after its view's retention, which
// online drops from windowed features.
func late(l *window.Layout, ev *window.Event) bool { return ev.Time < ev.Arrival-l.Retention }

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
