package window

import (
	"math"
	"sort"
	"strconv"

	"github.com/axiomhq/hyperloglog"

	"github.com/sluicehq/sluice/schemas"
)

// Eval computes the value at t of each spec over events, writing out[i] for
// specs[i]. events holds one entity's events sorted by Event.Before; events
// at or after t (or, AsServed, not yet arrived at t) are ignored, so callers
// may pass a superset. len(out) must be len(specs).
func Eval(t int64, mode Mode, specs []Spec, events []Event, out []Value) {
	end := sort.Search(len(events), func(i int) bool { return events[i].Time >= t })
	visible := events[:end]
	seen := false
	for i := range visible {
		if mode == EventTime || visible[i].Arrival < t {
			seen = true
			break
		}
	}
	for i, s := range specs {
		out[i] = evalOne(t, mode, s, visible, seen)
	}
}

// evalOne computes one spec over events that all have Time < t.
func evalOne(t int64, mode Mode, s Spec, events []Event, seen bool) Value {
	lo, bounded := s.Lower(t)
	start := 0
	if bounded {
		start = sort.Search(len(events), func(i int) bool { return events[i].Time >= lo })
	}
	in := events[start:]
	arrived := func(e *Event) bool { return mode == EventTime || e.Arrival < t }

	var acc accumulator
	acc.init(s)
	for i := range in {
		e := &in[i]
		if !arrived(e) {
			continue
		}
		var v any = true
		if s.Input >= 0 {
			v = e.Values[s.Input]
			if v == nil {
				continue
			}
		}
		acc.add(e, v)
	}
	val := acc.result()
	switch {
	case val.V != nil && (acc.n > 0 || seen):
		val.Status = Present
	case !seen:
		val.Status = NotFound
	case s.Agg == Last || s.Agg == First:
		val.Status = NotFound
		for i := range events[:start] {
			e := &events[i]
			if arrived(e) && (s.Input < 0 || e.Values[s.Input] != nil) {
				val.Status = OutsideMaxAge
				break
			}
		}
	default:
		val.Status = NullValue
	}
	return val
}

// accumulator folds one spec's inputs in event order.
type accumulator struct {
	spec   Spec
	n      int64
	isum   int64
	fsum   float64
	mean   float64 // Welford running mean and sum of squares
	m2     float64
	best   any
	bestEv *Event
	latest int64 // event time of the latest included event, when has
	has    bool
	lastN  []any
	hll    *hyperloglog.Sketch
}

func (a *accumulator) init(s Spec) {
	a.spec = s
	if s.Agg == ApproxDistinct {
		a.hll = hyperloglog.New14()
	}
}

func (a *accumulator) add(e *Event, v any) {
	s := a.spec
	if !a.has || e.Time > a.latest {
		a.latest, a.has = e.Time, true
	}
	switch s.Agg {
	case CountTrue:
		if b, _ := v.(bool); !b {
			return // included, but counts nothing
		}
	case Sum, Mean, Stddev:
		switch x := v.(type) {
		case int64:
			a.isum += x
			a.fsum += float64(x)
			a.welford(float64(x))
		case float64:
			a.fsum += x
			a.welford(x)
		}
	case Min:
		if a.best == nil || less(v, a.best) {
			a.best = v
		}
	case Max:
		if a.best == nil || less(a.best, v) {
			a.best = v
		}
	case Last:
		// Events arrive sorted by (Time, Seq): the latest wins ties.
		a.best, a.bestEv = v, e
	case First:
		// The earliest time wins; among equal times, the higher Seq.
		if a.bestEv == nil || e.Time == a.bestEv.Time {
			a.best, a.bestEv = v, e
		}
	case LastN:
		a.lastN = append(a.lastN, v)
		if len(a.lastN) > s.N {
			a.lastN = a.lastN[1:]
		}
	case ApproxDistinct:
		a.hll.Insert([]byte(distinctKey(v)))
	}
	a.n++
}

func (a *accumulator) welford(x float64) {
	k := float64(a.n + 1)
	d := x - a.mean
	a.mean += d / k
	a.m2 += d * (x - a.mean)
}

func (a *accumulator) result() Value {
	s := a.spec
	val := Value{Time: a.latest, HasTime: a.has}
	switch s.Agg {
	case Count, CountTrue:
		val.V = a.n
	case Sum:
		if s.Type == schemas.Int64 {
			val.V = a.isum
		} else {
			val.V = a.fsum
		}
	case Mean:
		if a.n > 0 {
			val.V = a.fsum / float64(a.n)
		}
	case Stddev:
		if a.n > 1 {
			val.V = math.Sqrt(a.m2 / float64(a.n-1))
		}
	case Min, Max:
		val.V = a.best
	case Last, First:
		val.V = a.best
		if a.bestEv != nil {
			val.Time = a.bestEv.Time
		}
	case LastN:
		if len(a.lastN) > 0 {
			val.V = append([]any(nil), a.lastN...)
		}
	case ApproxDistinct:
		if a.n > 0 {
			val.V = int64(a.hll.Estimate())
		}
	}
	return val
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

func distinctKey(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return ""
}
