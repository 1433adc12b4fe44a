package window

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/schemas"
)

func TestExactSumIsCorrectlyRounded(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want float64
	}{
		{"empty", nil, 0},
		{"cancellation", []float64{1e100, 1.0, -1e100, 1e-100}, 1.0 + 1e-100},
		{"tenths", []float64{0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1}, 1.0},
		{"big and small", []float64{1, 1e-16, 1e-16}, 1.0000000000000002},
		{"half-way rounds to even with the tail", []float64{1, math.Ldexp(1, -53), math.Ldexp(1, -80)}, math.Nextafter(1, 2)},
		{"infinity", []float64{1, math.Inf(1)}, math.Inf(1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s exactSum
			for _, x := range tt.in {
				s.add(x)
			}
			if got := s.value(); got != tt.want {
				t.Errorf("sum = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestExactSumIgnoresOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		xs := make([]float64, 1+r.IntN(50))
		for i := range xs {
			xs[i] = (r.Float64() - 0.5) * math.Pow(10, float64(r.IntN(30)-10))
		}
		var a exactSum
		for _, x := range xs {
			a.add(x)
		}
		r.Shuffle(len(xs), func(i, j int) { xs[i], xs[j] = xs[j], xs[i] })
		// Sum the shuffled values in two halves and merge them.
		var b, c exactSum
		for i, x := range xs {
			if i%2 == 0 {
				b.add(x)
			} else {
				c.add(x)
			}
		}
		c.merge(&b)
		if a.value() != c.value() {
			t.Fatalf("trial %d: %v in one order, %v in another", trial, a.value(), c.value())
		}
	}
}

// TestTilesIgnoreOrder builds one state from events added in time order,
// another from the same events shuffled, as the stream engine sees them,
// and a third from runs of them added by AddRun with their inputs as
// cells, as the point-in-time engine adds them, and requires every value at
// many t to be identical to the last bit. Times fall on a 10-second grid,
// so that ties on time decide last and first.
func TestTilesIgnoreOrder(t *testing.T) {
	hour := time.Hour
	specs := []Spec{
		NewSpec(Count, -1, 0, hour, 0, 0, 0),
		NewSpec(CountTrue, 2, schemas.Bool, 24*hour, hour, 0, 0),
		NewSpec(Sum, 1, schemas.Float64, 24*hour, 0, 0, 0),
		NewSpec(Sum, 0, schemas.Int64, 0, 0, 0, 0),
		NewSpec(Mean, 1, schemas.Float64, 7*24*hour, 0, 0, 0),
		NewSpec(Stddev, 1, schemas.Float64, 3*hour, 0, 0, 0),
		NewSpec(Min, 3, schemas.String, 2*hour, 0, 0, 0),
		NewSpec(Max, 1, schemas.Float64, 0, 0, 0, 0),
		NewSpec(Last, 1, schemas.Float64, 0, 0, 30*time.Minute, 0),
		NewSpec(First, 3, schemas.String, 0, 0, 90*time.Minute, 0),
		NewSpec(First, 3, schemas.String, 0, 0, 0, 0),
		NewSpec(Last, 3, schemas.String, 0, 0, 0, 0),
		NewSpec(LastN, 0, schemas.Int64, 6*hour, 0, 0, 3),
		NewSpec(ApproxDistinct, 0, schemas.Int64, 24*hour, 0, 0, 0),
	}
	r := rand.New(rand.NewPCG(3, 4))
	var events []Event
	for i := range 3000 {
		e := Event{Time: int64(r.IntN(3*24*360)) * 1e7, Seq: int64(i), Values: []any{int64(r.IntN(1000)), r.NormFloat64() * 1e3, r.IntN(3) == 0, string(rune('a' + r.IntN(26)))}}
		if r.IntN(10) == 0 {
			e.Values[1] = nil
		}
		events = append(events, e)
	}
	slices.SortFunc(events, func(a, b Event) int {
		if a.Before(&b) {
			return -1
		}
		return 1
	})
	l := NewLayout(specs, time.Hour)
	sorted, shuffled := l.NewState(), l.NewState()
	for i := range events {
		l.Add(sorted, &events[i], true)
	}
	order := r.Perm(len(events))
	for _, i := range order {
		l.Add(shuffled, &events[i], true)
	}
	cells := make([]Event, len(events))
	for i, e := range events {
		cells[i] = Event{Time: e.Time, Seq: e.Seq, Cells: make([]Cell, len(e.Values))}
		for k, v := range e.Values {
			cells[i].Cells[k] = CellOf(v)
		}
	}
	// runs is built from runs in order, mixed also from runs out of order,
	// which AddRun adds one event at a time.
	runs, mixed := l.NewState(), l.NewState()
	for i := 0; i < len(cells); {
		run := slices.Clone(cells[i:min(i+1+r.IntN(40), len(cells))])
		l.AddRun(runs, run, true)
		if r.IntN(10) == 0 {
			r.Shuffle(len(run), func(a, b int) { run[a], run[b] = run[b], run[a] })
		}
		l.AddRun(mixed, run, true)
		i += len(run)
	}
	if diff := cmp.Diff(encodeState(l, sorted), encodeState(l, runs)); diff != "" {
		t.Fatalf("states differ when added in runs (-one by one +runs):\n%s", diff)
	}
	a, b := make([]Value, len(specs)), make([]Value, len(specs))
	for range 300 {
		at := int64(r.IntN(3*24*3600+7200)) * 1e6
		l.Eval(at, sorted, RawOf(events), a)
		l.Eval(at, shuffled, RawOf(events), b)
		if diff := cmp.Diff(a, b); diff != "" {
			t.Fatalf("at %d: values differ by insertion order (-sorted +shuffled):\n%s", at, diff)
		}
		for _, st := range []*State{runs, mixed} {
			l.Eval(at, st, RawOf(cells), b)
			if diff := cmp.Diff(a, b); diff != "" {
				t.Fatalf("at %d: values differ when added in runs (-one by one +runs):\n%s", at, diff)
			}
		}
		Eval(at, EventTime, specs, events, b)
		if diff := cmp.Diff(a, b); diff != "" {
			t.Fatalf("at %d: tiles with every event differ from tiles of the events before t (-all +before):\n%s", at, diff)
		}
	}
}

func TestLayoutRetention(t *testing.T) {
	h := time.Hour
	for _, tc := range []struct {
		name  string
		specs []Spec
		want  time.Duration
	}{
		{"window plus default hop plus lateness", []Spec{NewSpec(Count, -1, 0, h, 0, 0, 0)}, h + 5*time.Minute + h},
		{"largest of window and ttl", []Spec{NewSpec(Sum, 0, 0, 2*h, 10*time.Minute, 0, 0), NewSpec(Last, 0, 0, 0, 0, 30*h, 0)}, 30*h + h},
		{"lifetime adds the long tile, here the window's hop", []Spec{NewSpec(Count, -1, 0, 24*h, 0, 0, 0), NewSpec(Count, -1, 0, 0, 0, 0, 0)}, 25*h + h},
		{"last without ttl: the default long tile", []Spec{NewSpec(Last, 0, 0, 0, 0, 0, 0)}, h + h},
	} {
		l := NewLayout(tc.specs, h)
		if got := time.Duration(l.Retention) * time.Microsecond; got != tc.want {
			t.Errorf("%s: Retention = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// encodeState renders a state's tiles and base in their stored form.
func encodeState(l *Layout, st *State) []string {
	out := []string{fmt.Sprintf("base %x", l.AppendBase(nil, st))}
	for g, tiles := range st.Tiles {
		for _, tile := range tiles {
			out = append(out, fmt.Sprintf("grid %d tile %d: %x", g, tile.Start, l.AppendTile(nil, g, tile)))
		}
	}
	return out
}

// TestMinMaxNaN orders NaN above every number, so that min and max do not
// depend on which events share a tile.
func TestMinMaxNaN(t *testing.T) {
	specs := []Spec{NewSpec(Min, 0, schemas.Float64, 0, 0, 0, 0), NewSpec(Max, 0, schemas.Float64, 0, 0, 0, 0)}
	hour := int64(3600e6)
	events := []Event{
		{Time: 10 * hour, Seq: 1, Values: []any{-1.0}},
		{Time: 11 * hour, Seq: 2, Values: []any{math.NaN()}},
		{Time: 11*hour + 60e6, Seq: 3, Values: []any{-2.0}},
	}
	l := NewLayout(specs, time.Hour)
	for _, layout := range []*Layout{l, l.Sub([]int{0, 1}, 1<<52)} {
		st := layout.NewState()
		layout.AddRun(st, events, true)
		out := make([]Value, 2)
		layout.Eval(12*hour, st, RawOf(events), out)
		if min, max := out[0].V.(float64), out[1].V.(float64); min != -2 || !math.IsNaN(max) {
			t.Errorf("tiles %d µs wide: min %v, max %v; want -2 and NaN", layout.Grids[layout.Long].Width, min, max)
		}
	}
}
