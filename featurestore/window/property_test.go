package window_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/featurestore/window"
	"github.com/sluicehq/sluice/schemas"
	"github.com/sluicehq/sluice/testkit"
)

// propFields are the inputs of the random events, in Event.Values order.
var propFields = []struct {
	name string
	typ  schemas.Type
}{{"i", schemas.Int64}, {"f", schemas.Float64}, {"b", schemas.Bool}, {"s", schemas.String}}

// oracleAggs are the aggregations testkit.Oracle covers, with the fields
// each may read ("" reads none).
var oracleAggs = []struct {
	agg    window.Agg
	fields []string
}{
	{window.Count, []string{"", "i", "f", "b", "s"}},
	{window.CountTrue, []string{"b"}},
	{window.Sum, []string{"i", "f"}},
	{window.Mean, []string{"i", "f"}},
	{window.Stddev, []string{"i", "f"}},
	{window.Min, []string{"i", "f", "s"}},
	{window.Max, []string{"i", "f", "s"}},
	{window.Last, []string{"i", "f", "b", "s"}},
	{window.First, []string{"i", "f", "b", "s"}},
}

var (
	propWindows = []time.Duration{0, time.Minute, 10 * time.Minute, time.Hour, 3 * time.Hour, 12 * time.Hour, 24 * time.Hour, 3 * 24 * time.Hour, 12 * 24 * time.Hour}
	propHops    = []time.Duration{0, 0, time.Second, time.Minute, 7 * time.Minute, time.Hour, 24 * time.Hour}
	propTTLs    = []time.Duration{0, time.Minute, time.Hour, 6 * time.Hour, 2 * 24 * time.Hour}
	propGrains  = []int64{1, 1_000_000, 60_000_000, 300_000_000, 3_600_000_000}
	propBases   = []int64{
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro(),
		time.Date(1969, 12, 30, 0, 0, 0, 0, time.UTC).UnixMicro(),
		time.Date(1969, 12, 31, 12, 0, 0, 0, time.UTC).UnixMicro(),
	}
)

// propCase is one random trial: features (as the oracle reads them) and the
// same features as specs, one entity's events in both forms, and a query.
type propCase struct {
	feats  []featurestore.Feature
	specs  []window.Spec
	events []window.Event // sorted by Event.Before
	oracle []testkit.OracleEvent
	t      int64
	mode   window.Mode
}

func genFeature(r *rand.Rand) (featurestore.Feature, window.Spec) {
	a := oracleAggs[r.IntN(len(oracleAggs))]
	f := featurestore.Feature{Name: "f", Agg: a.agg, Field: a.fields[r.IntN(len(a.fields))]}
	if a.agg == window.Last || a.agg == window.First {
		f.TTL = propTTLs[r.IntN(len(propTTLs))]
	} else if f.Window = propWindows[r.IntN(len(propWindows))]; f.Window > 0 {
		f.Hop = propHops[r.IntN(len(propHops))]
	}
	input := slices.IndexFunc(propFields, func(p struct {
		name string
		typ  schemas.Type
	}) bool {
		return p.name == f.Field
	})
	var typ schemas.Type
	if input >= 0 {
		typ = propFields[input].typ
	}
	// Half the specs come from NewSpec, half are literals whose zero Hop
	// leaves the default to Lower.
	if r.IntN(2) == 0 {
		return f, window.NewSpec(f.Agg, input, typ, f.Window, f.Hop, f.TTL, 0)
	}
	return f, window.Spec{Agg: f.Agg, Input: input, Type: typ, Window: f.Window.Microseconds(), Hop: f.Hop.Microseconds(), TTL: f.TTL.Microseconds()}
}

// genValues returns one event's inputs, each null one time in five.
func genValues(r *rand.Rand) []any {
	vals := []any{
		r.Int64N(2001) - 1000,
		math.Round((r.Float64()*2000-1000)*1000) / 1000,
		r.IntN(2) == 1,
		[]string{"", "a", "b", "c", "Zz", "é"}[r.IntN(6)],
	}
	for i := range vals {
		if r.IntN(5) == 0 {
			vals[i] = nil
		}
	}
	return vals
}

func genEvents(r *rand.Rand, base int64) []window.Event {
	const span = 3 * 24 * 3_600_000_000
	grain := propGrains[r.IntN(len(propGrains))]
	n := r.IntN(40)
	seqs := r.Perm(3 * n)
	events := make([]window.Event, n)
	for i := range events {
		e := &events[i]
		e.Time = base + r.Int64N(span/grain)*grain
		if i > 0 && r.IntN(4) == 0 {
			e.Time = events[r.IntN(i)].Time // a tie
		}
		e.Seq = int64(seqs[i])
		e.Arrival = e.Time
		if r.IntN(5) < 3 {
			e.Arrival += r.Int64N(6*3_600_000_000/grain+1) * grain
		}
		e.Values = genValues(r)
	}
	slices.SortFunc(events, func(a, b window.Event) int {
		if a.Before(&b) {
			return -1
		}
		return 1 // Seqs are distinct
	})
	return events
}

// genT picks a query time, often on or next to a boundary of some feature.
func genT(r *rand.Rand, base int64, events []window.Event, feats []featurestore.Feature) int64 {
	if len(events) == 0 || r.IntN(4) == 0 {
		return base - 3_600_000_000 + r.Int64N(7*24*3_600_000_000)
	}
	e := events[r.IntN(len(events))]
	f := feats[r.IntN(len(feats))]
	at := e.Time
	switch r.IntN(4) {
	case 1:
		at += f.Window.Microseconds()
	case 2:
		at += f.TTL.Microseconds()
	case 3:
		at = e.Arrival
	}
	return at + r.Int64N(3) - 1
}

func genCase(r *rand.Rand) propCase {
	var c propCase
	for range 1 + r.IntN(6) {
		f, s := genFeature(r)
		c.feats = append(c.feats, f)
		c.specs = append(c.specs, s)
	}
	base := propBases[r.IntN(len(propBases))]
	c.events = genEvents(r, base)
	for _, e := range c.events {
		fields := map[string]any{}
		for j, p := range propFields {
			fields[p.name] = e.Values[j]
		}
		c.oracle = append(c.oracle, testkit.OracleEvent{
			Fields: fields, Time: time.UnixMicro(e.Time), Arrival: time.UnixMicro(e.Arrival), Offset: e.Seq,
		})
	}
	c.t = genT(r, base, c.events, c.feats)
	c.mode = window.Mode(r.IntN(2))
	return c
}

func (c *propCase) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "t=%s mode=%s\n", fmtMicros(c.t), c.mode)
	for _, e := range c.events {
		fmt.Fprintf(&b, "  event t=%s arrival=%s seq=%d values=%v\n", fmtMicros(e.Time), fmtMicros(e.Arrival), e.Seq, e.Values)
	}
	return b.String()
}

func fmtMicros(us int64) string {
	return time.UnixMicro(us).UTC().Format(time.RFC3339Nano)
}

// sameValue compares an Eval value with an oracle value: equal Go types and
// values, floats within a relative 1e-9.
func sameValue(got, want any) bool {
	g, gok := got.(float64)
	w, wok := want.(float64)
	if gok && wok {
		return g == w || math.Abs(g-w) <= 1e-9*math.Max(math.Abs(g), math.Abs(w))
	}
	return cmp.Equal(got, want)
}

// TestEvalMatchesOracle compares Eval with testkit.Oracle, a brute-force
// reading of DESIGN.md section 4, over random entities and times.
func TestEvalMatchesOracle(t *testing.T) {
	trials := 20000
	if testing.Short() {
		trials = 2000
	}
	r := rand.New(rand.NewPCG(1, 2))
	for trial := range trials {
		c := genCase(r)
		out := make([]window.Value, len(c.specs))
		window.Eval(c.t, c.mode, c.specs, c.events, out)
		for i, f := range c.feats {
			want := testkit.Oracle(f, c.oracle, time.UnixMicro(c.t), c.mode == window.AsServed)
			// The oracle cannot tell an empty int64 sum from an empty float64
			// one and gives float64(0); sum of int64 inputs is an int64.
			if f.Agg == window.Sum && c.specs[i].Type == schemas.Int64 && want.Value == float64(0) {
				want.Value = int64(0)
			}
			got := out[i]
			if got.Status.String() != want.Status || !sameValue(got.V, want.Value) {
				t.Fatalf("trial %d: feature %+v (spec %+v):\nEval   = %#v %s\nOracle = %#v %s\n%s",
					trial, f, c.specs[i], got.V, got.Status, want.Value, want.Status, &c)
			}
		}
	}
}

// bruteLower is the lower bound of DESIGN.md section 4, written apart from
// Spec.Lower and Floor.
func bruteLower(f featurestore.Feature, t int64) (int64, bool) {
	if f.Agg == window.Last || f.Agg == window.First {
		return t - f.TTL.Microseconds(), f.TTL > 0
	}
	if f.Window == 0 {
		return 0, false
	}
	h := f.Hop
	if h == 0 {
		h = 24 * time.Hour
		if f.Window < 12*time.Hour {
			h = 5 * time.Minute
		} else if f.Window < 12*24*time.Hour {
			h = time.Hour
		}
	}
	a, hu := t-f.Window.Microseconds(), h.Microseconds()
	q := a / hu
	if a%hu != 0 && a < 0 {
		q--
	}
	return q * hu, true
}

// bruteTime is Value.Time by its definition: the event time of the latest
// event the value includes (for first, of the earliest), and false when the
// value includes none.
func bruteTime(c *propCase, i int) (int64, bool) {
	f, input := c.feats[i], c.specs[i].Input
	lo, bounded := bruteLower(f, c.t)
	var times []int64
	for _, e := range c.events {
		in := e.Time < c.t && (!bounded || e.Time >= lo)
		arrived := c.mode == window.EventTime || e.Arrival < c.t
		if in && arrived && (input < 0 || e.Values[input] != nil) {
			times = append(times, e.Time)
		}
	}
	switch {
	case len(times) == 0:
		return 0, false
	case f.Agg == window.First:
		return slices.Min(times), true
	}
	return slices.Max(times), true
}

// TestEvalTime checks Value.Time over random entities, before 1970 too.
func TestEvalTime(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for trial := range 5000 {
		c := genCase(r)
		out := make([]window.Value, len(c.specs))
		window.Eval(c.t, c.mode, c.specs, c.events, out)
		for i := range c.specs {
			want, has := bruteTime(&c, i)
			if out[i].Time != want || out[i].HasTime != has {
				t.Fatalf("trial %d: feature %+v: Time = %s (HasTime %v), want %s (%v)\n%s",
					trial, c.feats[i], fmtMicros(out[i].Time), out[i].HasTime, fmtMicros(want), has, &c)
			}
		}
	}
}

// TestApproxDistinctError checks the HyperLogLog estimate stays within 2% of
// the true count of distinct values, each value seen twice.
func TestApproxDistinctError(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	tests := []struct {
		n   int
		typ schemas.Type
	}{
		{10_000, schemas.String}, {10_000, schemas.Int64}, {35_000, schemas.String},
		{60_000, schemas.Int64}, {100_000, schemas.String}, {100_000, schemas.Int64},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d %s", tt.n, tt.typ), func(t *testing.T) {
			events := make([]window.Event, 2*tt.n)
			for i := range events {
				var v any = int64(i%tt.n) * 7919
				if tt.typ == schemas.String {
					v = fmt.Sprintf("user-%d", i%tt.n)
				}
				events[i] = window.Event{Time: base + int64(i), Arrival: base + int64(i), Seq: int64(i), Values: []any{v}}
			}
			specs := []window.Spec{window.NewSpec(window.ApproxDistinct, 0, tt.typ, time.Hour, 0, 0, 0)}
			out := make([]window.Value, 1)
			window.Eval(base+int64(len(events)), window.EventTime, specs, events, out)
			got, ok := out[0].V.(int64)
			if !ok || out[0].Status != window.Present {
				t.Fatalf("approx_distinct = %#v %s, want an int64, PRESENT", out[0].V, out[0].Status)
			}
			if rel := math.Abs(float64(got)-float64(tt.n)) / float64(tt.n); rel > 0.02 {
				t.Errorf("approx_distinct of %d distinct values = %d, relative error %.4f > 0.02", tt.n, got, rel)
			}
		})
	}
}

// fuzzBytes reads a fuzz input; past its end it reads zeros.
type fuzzBytes []byte

func (b *fuzzBytes) byte() byte {
	if len(*b) == 0 {
		return 0
	}
	c := (*b)[0]
	*b = (*b)[1:]
	return c
}

func (b *fuzzBytes) int16() int64 { return int64(int16(uint16(b.byte())<<8 | uint16(b.byte()))) }

func (b *fuzzBytes) pick(n int) int { return int(b.byte()) % n }

// fuzzSpecs are the specs FuzzEval evaluates; the invariants refer to them
// by position. Inputs: 0 i (int64), 1 f (float64), 2 b (bool), 3 s (string).
const (
	fzCount = iota
	fzCountLife
	fzCountB
	fzCountTrue
	fzSumI
	fzSumF
	fzMeanF
	fzMinI
	fzMaxI
	fzMeanI
	fzStddevF
	fzLastS
	fzFirstS
	fzLastN
	fzDistinct
)

func fuzzSpecs(b *fuzzBytes) []window.Spec {
	w := []time.Duration{time.Minute, time.Hour, 24 * time.Hour, 30 * 24 * time.Hour}[b.pick(4)]
	h := []time.Duration{0, time.Second, time.Minute, time.Hour}[b.pick(4)]
	ttl := []time.Duration{0, time.Minute, time.Hour}[b.pick(3)]
	n := 1 + b.pick(window.MaxLastN)
	spec := func(agg window.Agg, input int, typ schemas.Type) window.Spec {
		return window.NewSpec(agg, input, typ, w, h, 0, 0)
	}
	return []window.Spec{
		fzCount:     spec(window.Count, -1, 0),
		fzCountLife: window.NewSpec(window.Count, -1, 0, 0, 0, 0, 0),
		fzCountB:    spec(window.Count, 2, schemas.Bool),
		fzCountTrue: spec(window.CountTrue, 2, schemas.Bool),
		fzSumI:      spec(window.Sum, 0, schemas.Int64),
		fzSumF:      spec(window.Sum, 1, schemas.Float64),
		fzMeanF:     spec(window.Mean, 1, schemas.Float64),
		fzMinI:      spec(window.Min, 0, schemas.Int64),
		fzMaxI:      spec(window.Max, 0, schemas.Int64),
		fzMeanI:     spec(window.Mean, 0, schemas.Int64),
		fzStddevF:   spec(window.Stddev, 1, schemas.Float64),
		fzLastS:     window.NewSpec(window.Last, 3, schemas.String, 0, 0, ttl, 0),
		fzFirstS:    window.NewSpec(window.First, 3, schemas.String, 0, 0, ttl, 0),
		fzLastN:     window.NewSpec(window.LastN, 0, schemas.Int64, w, h, 0, n),
		fzDistinct:  spec(window.ApproxDistinct, 3, schemas.String),
	}
}

func fuzzEvents(b *fuzzBytes, base, grain int64) []window.Event {
	events := make([]window.Event, b.pick(64))
	for i := range events {
		e := &events[i]
		e.Time = base + b.int16()*grain
		e.Arrival = e.Time + int64(b.byte())*grain
		e.Seq = int64(b.byte())
		nulls := b.byte()
		e.Values = []any{int64(int8(b.byte())), float64(b.int16()) / 4, b.byte()%2 == 1, string(rune('a' + b.pick(8)))}
		for j := range e.Values {
			if nulls&(1<<j) != 0 {
				e.Values[j] = nil
			}
		}
	}
	slices.SortStableFunc(events, func(x, y window.Event) int {
		switch {
		case x.Before(&y):
			return -1
		case y.Before(&x):
			return 1
		}
		return 0
	})
	return events
}

// FuzzEval builds an entity, specs and a query time from the fuzz input and
// checks invariants that hold whatever the events are.
func FuzzEval(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 1, 1, 2, 3, 10, 0, 0, 0, 5, 0, 1, 2, 0, 3, 0, 0, 9, 1, 0, 0, 0, 7, 1, 3, 0, 20, 1})
	f.Add([]byte("a longer input with many events to fill the window, and then some more bytes"))
	f.Add([]byte{2, 3, 2, 1, 200, 255, 255, 0, 0, 3, 0, 255, 255, 255, 255, 1, 1, 128, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		b := fuzzBytes(data)
		base := propBases[b.pick(len(propBases))]
		grain := propGrains[b.pick(len(propGrains))]
		specs := fuzzSpecs(&b)
		mode := window.Mode(b.pick(2))
		at := base + b.int16()*grain
		events := fuzzEvents(&b, base, grain)
		out := make([]window.Value, len(specs))
		window.Eval(at, mode, specs, events, out)
		seen := slices.ContainsFunc(events, func(e window.Event) bool {
			return e.Time < at && (mode == window.EventTime || e.Arrival < at)
		})
		for i, v := range out {
			if err := checkStatus(specs[i], v, at, seen); err != nil {
				t.Fatalf("%s: %v", specs[i].Agg, err)
			}
		}
		if err := checkRelations(specs, out); err != nil {
			t.Fatal(err)
		}
	})
}

// checkStatus checks one value against its status and against t.
func checkStatus(s window.Spec, v window.Value, at int64, seen bool) error {
	zeroable := s.Agg == window.Count || s.Agg == window.CountTrue || s.Agg == window.Sum
	lastFirst := s.Agg == window.Last || s.Agg == window.First
	switch {
	case v.HasTime && v.Time >= at:
		return fmt.Errorf("Time %d is not before t %d", v.Time, at)
	case !v.HasTime && v.Time != 0:
		return fmt.Errorf("Time %d without HasTime", v.Time)
	case v.V != nil && !zeroable && !v.HasTime:
		return fmt.Errorf("value %#v includes no event", v.V)
	case zeroable && v.V == nil:
		return fmt.Errorf("null value, want 0 for an empty window")
	case !seen && v.Status != window.NotFound:
		return fmt.Errorf("status %s for an entity with no visible event, want NOT_FOUND", v.Status)
	case seen && !lastFirst && v.Status != window.Present && v.Status != window.NullValue:
		return fmt.Errorf("status %s for an entity with events, want PRESENT or NULL_VALUE", v.Status)
	case v.Status == window.Present && v.V == nil:
		return fmt.Errorf("PRESENT with a null value")
	case v.Status == window.NullValue && (v.V != nil || zeroable || lastFirst):
		return fmt.Errorf("NULL_VALUE with value %#v", v.V)
	case v.Status == window.OutsideMaxAge && (v.V != nil || !lastFirst || s.TTL == 0):
		return fmt.Errorf("OUTSIDE_MAX_AGE with value %#v, ttl %d", v.V, s.TTL)
	case v.Status == window.NotFound && !zeroable && v.V != nil:
		return fmt.Errorf("NOT_FOUND with value %#v", v.V)
	case v.Status == window.NotFound && zeroable && v.V != int64(0) && v.V != float64(0):
		return fmt.Errorf("NOT_FOUND with value %#v, want 0", v.V)
	}
	return nil
}

// checkRelations checks how the fuzz specs' values relate to each other.
func checkRelations(specs []window.Spec, out []window.Value) error {
	count := out[fzCount].V.(int64)
	switch life := out[fzCountLife].V.(int64); {
	case count < 0 || count > life:
		return fmt.Errorf("count over the window %d, over the lifetime %d", count, life)
	case out[fzCountTrue].V.(int64) > out[fzCountB].V.(int64):
		return fmt.Errorf("count_true %v > count of values %v", out[fzCountTrue].V, out[fzCountB].V)
	case out[fzCountB].V.(int64) > count:
		return fmt.Errorf("count of values %v > count of events %d", out[fzCountB].V, count)
	}
	if _, ok := out[fzSumI].V.(int64); !ok {
		return fmt.Errorf("sum of int64 = %#v, want an int64", out[fzSumI].V)
	}
	if _, ok := out[fzSumF].V.(float64); !ok {
		return fmt.Errorf("sum of float64 = %#v, want a float64", out[fzSumF].V)
	}
	if lo, hi := out[fzMinI].V, out[fzMaxI].V; lo != nil {
		mean := out[fzMeanI].V.(float64)
		if lo.(int64) > hi.(int64) || mean < float64(lo.(int64)) || mean > float64(hi.(int64)) {
			return fmt.Errorf("min %v, mean %v, max %v out of order", lo, mean, hi)
		}
	}
	if sd, ok := out[fzStddevF].V.(float64); ok && (sd < 0 || math.IsNaN(sd)) {
		return fmt.Errorf("stddev %v", sd)
	}
	if l, ok := out[fzLastN].V.([]any); ok && (len(l) == 0 || len(l) > specs[fzLastN].N) {
		return fmt.Errorf("last_n of %d values, n = %d", len(l), specs[fzLastN].N)
	}
	if d, ok := out[fzDistinct].V.(int64); ok && (d < 1 || d > 8) {
		return fmt.Errorf("approx_distinct %d of at most 8 distinct strings", d)
	}
	return nil
}
