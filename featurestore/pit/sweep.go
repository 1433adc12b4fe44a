package pit

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/sluicehq/sluice/featurestore/window"
)

// sweep evaluates one entity of view vi: its spine rows in time order,
// adding each event to the tiles once, before the first row it is visible
// to. A row at t sees events before t (event_time) or, as_served, events
// that had also arrived before t, with the online store's late-event rule.
func (r *run) sweep(vi int, e *entity, out []window.Value) error {
	v := &r.q.Views[vi]
	l := v.CV.Layout
	st := l.NewState()
	evs, err := e.decode(len(v.CV.Inputs))
	if err != nil {
		return fmt.Errorf("view %q: %w", v.CV.View.Name, err)
	}
	slices.SortFunc(evs, byTime)
	if r.q.Mode == window.EventTime {
		raw := window.RawOf(evs)
		j := 0
		for _, row := range e.rows {
			t := r.q.Times[row]
			for ; j < len(evs) && evs[j].Time < t; j++ {
				l.Add(st, &evs[j], true)
			}
			l.EvalSpecs(t, st, raw, v.Which, out)
			r.store(vi, row, out)
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
			l.EvalSpecs(t, st, raw, v.Which, out)
			r.store(vi, row, out)
		}
	}
	// Report progress about every 64k rows.
	n := int64(len(e.rows))
	if done := r.spineN.Add(n); done/65536 != (done-n)/65536 {
		r.progress()
	}
	return nil
}

// late reports whether an event arrived after its view's retention, which
// online drops from windowed features.
func late(l *window.Layout, ev *window.Event) bool { return ev.Time < ev.Arrival-l.Retention }

func (r *run) store(vi int, row int32, out []window.Value) {
	for k, val := range out {
		r.res[vi][k][row] = val.V
	}
}

func byTime(a, b window.Event) int {
	if c := cmp.Compare(a.Time, b.Time); c != 0 {
		return c
	}
	return cmp.Compare(a.Seq, b.Seq)
}
