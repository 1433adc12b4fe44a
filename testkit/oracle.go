package testkit

import (
	"math"
	"sort"
	"time"

	"github.com/sluicehq/sluice/featurestore"
)

// OracleEvent is one event as the oracle sees it: its fields by name.
type OracleEvent struct {
	Fields  map[string]any // values as schemas.Event holds them; absent or nil is null
	Time    time.Time      // event time
	Arrival time.Time
	Offset  int64 // orders events with equal time: the higher is later
}

// OracleResult is a feature's expected value and Feast status.
type OracleResult struct {
	Value  any
	Status string
	// EventTime is the event time of the latest event the value includes
	// (for last and first, of the chosen event); zero when it includes none.
	EventTime time.Time
}

// Oracle computes the value of feature f at t over events by brute force,
// straight from the text of DESIGN.md section 4, sharing no code with the
// engine. Events must already be the ones that pass the view's filter and
// carry derived fields; duplicates must already be removed. It covers every
// aggregation; approx_distinct gives the exact number of distinct values,
// which a HyperLogLog estimate must match within 2%.
func Oracle(f featurestore.Feature, events []OracleEvent, t time.Time, asServed bool) OracleResult {
	tu := t.UnixMicro()
	var all []OracleEvent // every event visible at t, of any age
	for _, e := range events {
		if e.Time.UnixMicro() < tu && (!asServed || e.Arrival.UnixMicro() < tu) {
			all = append(all, e)
		}
	}
	sort.SliceStable(all, func(i, j int) bool {
		a, b := all[i].Time.UnixMicro(), all[j].Time.UnixMicro()
		if a != b {
			return a < b
		}
		return all[i].Offset < all[j].Offset
	})
	lower, bounded := oracleLower(f, tu)
	var in []OracleEvent
	var older bool
	for _, e := range all {
		v := e.Fields[f.Field]
		nonNull := f.Field == "" || v != nil
		if bounded && e.Time.UnixMicro() < lower {
			older = older || nonNull
			continue
		}
		if nonNull {
			in = append(in, e)
		}
	}
	res := oracleAgg(f, in, len(all) > 0, older)
	res.EventTime = oracleEventTime(f, in)
	return res
}

// oracleEventTime is the time of the latest included event; for last and
// first, of the chosen one. in is sorted by time.
func oracleEventTime(f featurestore.Feature, in []OracleEvent) time.Time {
	switch {
	case len(in) == 0:
		return time.Time{}
	case f.Agg == "first":
		return in[0].Time
	}
	return in[len(in)-1].Time
}

// oracleLower is floor(t - w, h) for windows and t - ttl for last/first.
func oracleLower(f featurestore.Feature, tu int64) (int64, bool) {
	if f.Agg == featurestore.Agg("last") || f.Agg == featurestore.Agg("first") {
		if f.TTL == 0 {
			return 0, false
		}
		return tu - f.TTL.Microseconds(), true
	}
	if f.Window == 0 {
		return 0, false
	}
	hop := f.Hop
	if hop == 0 {
		switch {
		case f.Window < 12*time.Hour:
			hop = 5 * time.Minute
		case f.Window < 12*24*time.Hour:
			hop = time.Hour
		default:
			hop = 24 * time.Hour
		}
	}
	a, h := tu-f.Window.Microseconds(), hop.Microseconds()
	q := a / h
	if a%h != 0 && a < 0 {
		q--
	}
	return q * h, true
}

func oracleAgg(f featurestore.Feature, in []OracleEvent, seen, older bool) OracleResult {
	present := func(v any) OracleResult {
		if v == nil {
			if !seen {
				return OracleResult{Value: nil, Status: "NOT_FOUND"}
			}
			return OracleResult{Value: nil, Status: "NULL_VALUE"}
		}
		if !seen {
			return OracleResult{Value: v, Status: "NOT_FOUND"}
		}
		return OracleResult{Value: v, Status: "PRESENT"}
	}
	nums := func() []float64 {
		var xs []float64
		for _, e := range in {
			switch v := e.Fields[f.Field].(type) {
			case float64:
				xs = append(xs, v)
			case int64:
				xs = append(xs, float64(v))
			}
		}
		return xs
	}
	switch f.Agg {
	case "count":
		return present(int64(len(in)))
	case "count_true":
		n := int64(0)
		for _, e := range in {
			if e.Fields[f.Field] == true {
				n++
			}
		}
		return present(n)
	case "sum":
		var isum int64
		var fsum float64
		isInt := true
		for _, e := range in {
			switch v := e.Fields[f.Field].(type) {
			case int64:
				isum += v
				fsum += float64(v)
			case float64:
				isInt = false
				fsum += v
			}
		}
		if isInt && len(in) > 0 {
			return present(isum)
		}
		return present(fsum)
	case "mean":
		xs := nums()
		if len(xs) == 0 {
			return present(nil)
		}
		s := 0.0
		for _, x := range xs {
			s += x
		}
		return present(s / float64(len(xs)))
	case "stddev":
		xs := nums()
		if len(xs) < 2 {
			return present(nil)
		}
		m := 0.0
		for _, x := range xs {
			m += x
		}
		m /= float64(len(xs))
		ss := 0.0
		for _, x := range xs {
			ss += (x - m) * (x - m)
		}
		return present(math.Sqrt(ss / float64(len(xs)-1)))
	case "min", "max":
		var best any
		for _, e := range in {
			v := e.Fields[f.Field]
			if best == nil || (f.Agg == "min") == oracleLess(v, best) {
				best = v
			}
		}
		return present(best)
	case "last", "first":
		if len(in) == 0 {
			if older {
				return OracleResult{Value: nil, Status: "OUTSIDE_MAX_AGE"}
			}
			return OracleResult{Value: nil, Status: "NOT_FOUND"}
		}
		if f.Agg == "last" {
			return present(in[len(in)-1].Fields[f.Field])
		}
		// The earliest time; ties go to the higher offset, as for last.
		first := in[0]
		for _, e := range in[1:] {
			if e.Time.Equal(first.Time) {
				first = e
			}
		}
		return present(first.Fields[f.Field])
	case "last_n":
		if len(in) == 0 {
			return present(nil)
		}
		var vs []any
		for _, e := range in[max(0, len(in)-f.N):] {
			vs = append(vs, e.Fields[f.Field])
		}
		return present(vs)
	case "approx_distinct":
		if len(in) == 0 {
			return present(nil)
		}
		distinct := map[any]bool{}
		for _, e := range in {
			distinct[e.Fields[f.Field]] = true
		}
		return present(int64(len(distinct)))
	}
	panic("oracle: aggregation " + string(f.Agg) + " not covered")
}

func oracleLess(a, b any) bool {
	switch x := a.(type) {
	case float64:
		y := b.(float64)
		return x < y || (math.IsNaN(y) && !math.IsNaN(x)) // NaN above every number
	case int64:
		return x < b.(int64)
	case string:
		return x < b.(string)
	}
	return false
}
