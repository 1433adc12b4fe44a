package window

import "sort"

// Eval computes the value at t of each spec over events, writing out[i] for
// specs[i]. events holds one entity's events sorted by Event.Before; events
// at or after t (or, AsServed, not yet arrived at t) are ignored, so callers
// may pass a superset. len(out) must be len(specs).
//
// It builds the tiles of the events that t may see and reads them with
// Layout.Eval: the one implementation of the time rule.
func Eval(t int64, mode Mode, specs []Spec, events []Event, out []Value) {
	l := NewLayout(specs, 0)
	st := l.NewState()
	end := sort.Search(len(events), func(i int) bool { return events[i].Time >= t })
	visible := events[:end]
	if mode == AsServed {
		visible = nil
		for i := range events[:end] {
			if events[i].Arrival < t {
				visible = append(visible, events[i])
			}
		}
	}
	for i := range visible {
		l.Add(st, &visible[i], true)
	}
	l.Eval(t, st, RawOf(visible), out)
}

// RawOf serves a RawFunc from one entity's events sorted by Event.Before.
func RawOf(events []Event) RawFunc {
	return func(start, end int64) []Event {
		i := sort.Search(len(events), func(i int) bool { return events[i].Time >= start })
		j := sort.Search(len(events), func(i int) bool { return events[i].Time >= end })
		return events[i:j]
	}
}
