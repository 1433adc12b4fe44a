package pit_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/featurestore/offline"
	"github.com/sluicehq/sluice/featurestore/pit"
	"github.com/sluicehq/sluice/featurestore/window"
	"github.com/sluicehq/sluice/schemas"
	"github.com/sluicehq/sluice/testkit"
)

const repoYAML = `
kind: entity
name: user
key: user_id
---
kind: stream
name: clicks
entity: user
timestamp: ts
schema:
  - {name: user_id, type: string}
  - {name: i, type: int64, nullable: true}
  - {name: f, type: float64, nullable: true}
  - {name: b, type: bool, nullable: true}
  - {name: s, type: string, nullable: true}
  - {name: ts, type: timestamp}
---
kind: feature_view
name: v
entity: user
source: clicks
features:
  - {name: n_1h, agg: count, window: 1h}
  - {name: n_life, agg: count}
  - {name: t_6h, field: b, agg: count_true, window: 6h, hop: 30m}
  - {name: sum_i_1d, field: i, agg: sum, window: 1d}
  - {name: sum_f_life, field: f, agg: sum}
  - {name: mean_f_3h, field: f, agg: mean, window: 3h, hop: 10m}
  - {name: std_f_1d, field: f, agg: stddev, window: 1d}
  - {name: min_s_2h, field: s, agg: min, window: 2h}
  - {name: max_i_life, field: i, agg: max}
  - {name: last_f, field: f, agg: last, ttl: 5h}
  - {name: last_s, field: s, agg: last}
  - {name: first_i, field: i, agg: first, ttl: 3h}
  - {name: first_s, field: s, agg: first}
  - {name: last3_i, field: i, agg: last_n, n: 3, window: 12h}
  - {name: distinct_s_1d, field: s, agg: approx_distinct, window: 1d}
`

// appliedYAML is view v again with a filter that keeps every event: the
// engine reads it through CompiledView.Apply rather than straight from the
// columns, and must find the same values.
var appliedYAML = "---\n" + strings.Replace(repoYAML[strings.Index(repoYAML, "kind: feature_view"):],
	"name: v\n", "name: va\nfilter: user_id != \"\"\n", 1)

type fixture struct {
	cv      *featurestore.CompiledView
	applied *featurestore.CompiledView // va
	rows    []offline.Row
	oracle  map[string][]testkit.OracleEvent
}

// genHistory makes random events of a few users over three days: ties on
// event time, arrivals up to hours late (some beyond the retention), null
// fields.
func genHistory(t *testing.T, r *rand.Rand) fixture {
	t.Helper()
	repo, err := featurestore.Parse(map[string][]byte{"r.yaml": []byte(repoYAML + appliedYAML)})
	if err != nil {
		t.Fatal(err)
	}
	applied, err := featurestore.Compile(repo, "va")
	if err != nil {
		t.Fatal(err)
	}
	cv, err := featurestore.Compile(repo, "v")
	if err != nil {
		t.Fatal(err)
	}
	f := fixture{cv: cv, applied: applied, oracle: map[string][]testkit.OracleEvent{}}
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	nullable := func(v any) any {
		if r.IntN(6) == 0 {
			return nil
		}
		return v
	}
	for off := range 400 {
		user := fmt.Sprintf("u%d", r.IntN(5))
		at := base.Add(time.Duration(r.IntN(3*24*60)) * time.Minute)
		arrival := at.Add(time.Duration(r.IntN(90)) * time.Second)
		if r.IntN(8) == 0 {
			arrival = at.Add(time.Duration(r.IntN(40)) * time.Hour)
		}
		vals := []any{user, nullable(int64(r.IntN(200) - 100)), nullable(math.Round(r.NormFloat64()*1e5) / 100),
			nullable(r.IntN(2) == 0), nullable(string(rune('a' + r.IntN(6)))), at.UnixMicro()}
		part := int32(r.IntN(3))
		f.rows = append(f.rows, offline.Row{
			Values: vals, Key: user, EventID: fmt.Sprintf("e%d", off),
			EventTime: at.UnixMicro(), Arrival: arrival.UnixMicro(), Partition: part, Offset: int64(off),
		})
		fields := map[string]any{"user_id": user, "i": vals[1], "f": vals[2], "b": vals[3], "s": vals[4], "ts": vals[5]}
		f.oracle[user] = append(f.oracle[user], testkit.OracleEvent{Fields: fields, Time: at, Arrival: arrival, Offset: window.SeqOf(part, int64(off))})
	}
	return f
}

func (f fixture) history(_ context.Context, _ string, sc *schemas.Schema, workers int, cols pit.Columns, fn func(*offline.Batch) error) error {
	return feed(sc, f.rows, workers, cols, fn)
}

// feed hands fn the rows in batches of a few rows, as workers would read
// them, each batch from one worker.
func feed(sc *schemas.Schema, rows []offline.Row, workers int, cols pit.Columns, fn func(*offline.Batch) error) error {
	for start := 0; start < len(rows); start += 5 {
		b := batchOf(sc, rows[start:min(start+5, len(rows))])
		// As the offline store reads them: only the fields asked for, no
		// event ids, and arrivals only when asked for.
		b.EventID = nil
		if !cols.Arrival {
			b.Arrival = nil
		}
		for f := range b.Fields {
			if cols.Fields != nil && !slices.Contains(cols.Fields, f) {
				b.Fields[f] = offline.Vector{Type: b.Fields[f].Type}
			}
		}
		b.Worker = (start / 5) % workers
		if err := fn(b); err != nil {
			return err
		}
	}
	return nil
}

// batchOf lays rows out as the columns of a batch.
func batchOf(sc *schemas.Schema, rows []offline.Row) *offline.Batch {
	b := &offline.Batch{Len: len(rows), Fields: make([]offline.Vector, len(sc.Fields))}
	for f, field := range sc.Fields {
		b.Fields[f].Type = field.Type
	}
	for _, r := range rows {
		b.EventID = append(b.EventID, r.EventID)
		b.EventTime = append(b.EventTime, r.EventTime)
		b.Arrival = append(b.Arrival, r.Arrival)
		b.Partition = append(b.Partition, r.Partition)
		b.Offset = append(b.Offset, r.Offset)
		for f := range sc.Fields {
			b.Fields[f].Append(r.Values[f])
		}
	}
	return b
}

// TestRunMatchesOracle joins random spines (users with and without
// history, times before any event, at event times, between them) in both
// modes and compares every value with testkit's brute-force oracle.
func TestRunMatchesOracle(t *testing.T) {
	for seed := range uint64(4) {
		r := rand.New(rand.NewPCG(seed, 99))
		f := genHistory(t, r)
		base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		var times []int64
		var keys []string
		for range 300 {
			user := fmt.Sprintf("u%d", r.IntN(7)) // u5 and u6 have no history
			at := base.Add(time.Duration(r.IntN(4*24*60)-60) * time.Minute)
			if r.IntN(3) == 0 {
				ev := f.rows[r.IntN(len(f.rows))]
				user, at = ev.Key, time.UnixMicro(ev.EventTime+int64(r.IntN(3)-1))
			}
			times = append(times, at.UnixMicro())
			keys = append(keys, user)
		}
		all := make([]int, len(f.cv.Specs))
		for i := range all {
			all[i] = i
		}
		for _, mode := range []window.Mode{window.EventTime, window.AsServed} {
			q := pit.Query{Times: times, Mode: mode, Views: []pit.View{{CV: f.cv, Which: all, Keys: keys}}}
			res, err := pit.Run(t.Context(), q, f.history, pit.Options{Workers: 2})
			if err != nil {
				t.Fatal(err)
			}
			// With a memory limit of a few events the history goes through
			// the spill files: the same values.
			spilled, err := pit.Run(t.Context(), q, f.history, pit.Options{Workers: 2, MemoryLimit: 200, TempDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(res, spilled); diff != "" {
				t.Fatalf("seed %d %s: spilled run differs (-in memory +spilled):\n%s", seed, mode, diff)
			}
			// Each feature asked alone: the sweep's tiles then hold only it,
			// and the view's retention still decides which events are late.
			for k := range all {
				alone := q
				alone.Views = []pit.View{{CV: f.cv, Which: []int{k}, Keys: keys}}
				one, err := pit.Run(t.Context(), alone, f.history, pit.Options{Workers: 2})
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(res[0][k], one[0][0]); diff != "" {
					t.Fatalf("seed %d %s: %s asked alone differs (-with the others +alone):\n%s", seed, mode, f.cv.View.Features[k].Name, diff)
				}
			}
			// The history in the order files keep it, by entity and time:
			// each worker's events of an entity arrive in order, and the
			// sweep merges them instead of sorting.
			ordered := f
			ordered.rows = slices.Clone(f.rows)
			sort.SliceStable(ordered.rows, func(i, j int) bool {
				a, b := ordered.rows[i], ordered.rows[j]
				if a.Key != b.Key {
					return a.Key < b.Key
				}
				return a.EventTime < b.EventTime || (a.EventTime == b.EventTime && a.Offset < b.Offset)
			})
			merged, err := pit.Run(t.Context(), q, ordered.history, pit.Options{Workers: 3})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(res, merged); diff != "" {
				t.Fatalf("seed %d %s: history in file order differs (-shuffled +ordered):\n%s", seed, mode, diff)
			}
			// The same view with a filter, read through Apply, beside it in
			// one run.
			q.Views = append(q.Views, pit.View{CV: f.applied, Which: all, Keys: keys})
			both, err := pit.Run(t.Context(), q, f.history, pit.Options{Workers: 2})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(res[0], both[1]); diff != "" {
				t.Fatalf("seed %d %s: the view read through Apply differs (-direct +applied):\n%s", seed, mode, diff)
			}
			bad := 0
			for row := range times {
				at := time.UnixMicro(times[row])
				for k, feat := range f.cv.View.Features {
					want := testkit.Oracle(feat, f.oracle[keys[row]], at, mode == window.AsServed)
					got := res[0][k].Value(row)
					if !sameValue(feat.Agg, got, want.Value) {
						bad++
						if bad <= 5 {
							t.Errorf("seed %d %s: %s at %s for %s = %#v (%T), want %#v (%T)", seed, mode, feat.Name, at.Format(time.RFC3339Nano), keys[row], got, got, want.Value, want.Value)
						}
					}
				}
			}
			if bad > 0 {
				t.Fatalf("seed %d %s: %d values differ from the oracle", seed, mode, bad)
			}
		}
	}
}

// sameValue compares an engine value with an oracle value: floats within
// a relative 1e-9, approx_distinct within the design's 2% (the oracle
// counts exactly).
func sameValue(agg window.Agg, got, want any) bool {
	if agg == window.ApproxDistinct {
		g, ok1 := got.(int64)
		w, ok2 := want.(int64)
		return (got == nil && want == nil) || (ok1 && ok2 && math.Abs(float64(g-w)) <= 0.02*float64(w))
	}
	g, gok := got.(float64)
	w, wok := want.(float64)
	if got == int64(0) && wok && w == 0 {
		return true // the oracle knows no field types: an empty int64 sum is 0.0 to it
	}
	if gok && wok {
		return g == w || math.Abs(g-w) <= 1e-9*math.Max(math.Abs(g), math.Abs(w))
	}
	return cmp.Equal(got, want)
}

// TestRunNoFeatures asks a view for no feature: nothing to compute, in
// either mode.
func TestRunNoFeatures(t *testing.T) {
	f := genHistory(t, rand.New(rand.NewPCG(1, 2)))
	for _, mode := range []window.Mode{window.EventTime, window.AsServed} {
		q := pit.Query{Times: []int64{f.rows[0].EventTime + 1}, Mode: mode, Views: []pit.View{{CV: f.cv, Keys: []string{f.rows[0].Key}}}}
		res, err := pit.Run(t.Context(), q, f.history, pit.Options{Workers: 2})
		if err != nil || len(res) != 1 || len(res[0]) != 0 {
			t.Errorf("%s: result %v, error %v; want one view with no columns", mode, res, err)
		}
	}
}
