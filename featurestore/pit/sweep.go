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
	out []window.Value
	// last is the horizon the state was last trimmed to.
	last int64
}

func (r *run) newSweeper(vi int) *sweeper {
	v := &r.q.Views[vi]
	return &sweeper{r: r, vi: vi, v: v, l: v.CV.Layout, st: v.CV.Layout.NewState(), out: make([]window.Value, len(v.Which))}
}

// sweep evaluates one entity: its spine rows in time order, adding each
// event to the tiles once, before the first row it is visible to. A row at
// t sees events before t (event_time) or, as_served, events that had also
// arrived before t, with the online store's late-event rule.
func (s *sweeper) sweep(e *entity) error {
	r, l, st := s.r, s.l, s.st
	l.Reset(st)
	s.last = math.MinInt64
	evs, err := e.decode(len(s.v.CV.Inputs))
	if err != nil {
		return fmt.Errorf("view %q: %w", s.v.CV.View.Name, err)
	}
	slices.SortFunc(evs, byTime)
	if r.q.Mode == window.EventTime {
		// Every event the state holds is before t, so a read needs raw
		// events only for the tile that a first's ttl cuts.
		raw := window.RawOf(evs)
		j := 0
		for _, row := range e.rows {
			t := r.q.Times[row]
			s.trim(t)
			for ; j < len(evs) && evs[j].Time < t; j++ {
				l.Add(st, &evs[j], true)
			}
			l.EvalSpecs(t, st, raw, s.v.Which, s.out)
			if err := r.store(s.vi, row, s.out); err != nil {
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
				l.Add(st, ev, !late(l, ev))
			}
			// A tile that t cuts is read from the events that had arrived,
			// without those too late for it, as the online store keeps them.
			raw := func(start, end int64) []window.Event {
				var vis []window.Event
				for _, ev := range all(start, end) {
					if ev.Arrival < t && !late(l, &ev) {
						vis = append(vis, ev)
					}
				}
				return vis
			}
			l.EvalSpecs(t, st, raw, s.v.Which, s.out)
			if err := r.store(s.vi, row, s.out); err != nil {
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

func (r *run) store(vi int, row int32, out []window.Value) error {
	for k, val := range out {
		if err := r.res[vi][k].set(int(row), val.V); err != nil {
			v := r.q.Views[vi]
			return fmt.Errorf("view %q, feature %q: %w", v.CV.View.Name, v.CV.View.Features[v.Which[k]].Name, err)
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
