package pitpeers_test

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/bench/pitpeers"
	"github.com/sluicehq/sluice/testkit"
)

var (
	genDir    = flag.String("pitpeers.gen", "", "TestGenerate writes a benchmark directory here")
	genEvents = flag.Int("pitpeers.events", 1_000_000, "events TestGenerate writes (users: events/100, spine rows: events/10)")
)

// small is the tests' data: few users, so that ties, empty windows and
// spine rows at an event's time all occur many times.
var small = genConfig{users: 40, events: 4_000, spineRows: 2_000, span: 10 * 24 * time.Hour, seed: 1}

// pandasOptions runs the pandas peer where pandas is installed.
func pandasOptions(t *testing.T) pitpeers.Options {
	python, err := pitpeers.FindPandas(context.Background(), "")
	if err != nil {
		if testkit.RequireAll() {
			t.Fatalf("%v: CI tests every peer; install pandas with %s (make test does)", err, pitpeers.PandasInstall)
		}
		t.Logf("%v: the pandas peer is not tested; install it with %s", err, pitpeers.PandasInstall)
		return pitpeers.Options{NoPandas: true}
	}
	return pitpeers.Options{Python: python}
}

func TestPeersAgreeWithTheTimeRule(t *testing.T) {
	feats := pitFeatures(true)
	d := generate(t, t.TempDir(), small, feats)
	st := d.stats
	if st.nullLast < 20 || st.tiesDecided < 20 || st.atEventTime < 20 || st.emptyWindows < 20 {
		t.Fatalf("the data exercises too few cases: %+v", st)
	}
	spec, err := pitpeers.Load(d.dir)
	if err != nil {
		t.Fatal(err)
	}
	o := pandasOptions(t)
	r, err := pitpeers.Run(context.Background(), spec, o)
	if err != nil {
		t.Fatal(err)
	}
	type summary struct {
		Peer                        string
		Rows, Values, Mismatches    int64
		OnlySluice, OnlyPeer, Shown int64
	}
	var got []summary
	for _, c := range r.Checks {
		got = append(got, summary{c.Peer, c.Rows, c.Values(), c.Mismatches, c.OnlySluice, c.OnlyPeer, int64(len(c.First))})
		for _, m := range c.First {
			t.Errorf("%s: %s", c.Peer, m)
		}
	}
	rows := int64(small.spineRows)
	want := []summary{
		{Peer: "duckdb-asof", Rows: rows, Values: rows * 10},
		{Peer: "duckdb-window", Rows: rows, Values: rows * 12},
	}
	if !o.NoPandas {
		want = append(want, summary{Peer: "pandas-merge-asof", Rows: rows, Values: rows * 10})
	}
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("checks (-want +got):\n%s", diff)
	}
	if !r.OK() {
		t.Error("Result.OK() = false, want true")
	}
	if r.ASOF <= 0 || r.Window <= 0 || r.DuckDBPeakRSS <= 0 {
		t.Errorf("timings %v and %v, peak RSS %d: want all positive", r.ASOF, r.Window, r.DuckDBPeakRSS)
	}
	var names []string
	for _, f := range r.Figures() {
		names = append(names, f.Name)
	}
	wantNames := []string{"pit", "pit_windowed", "pit_all", "pit_last_vs_pandas", "pit_peak_rss", "pit_values_checked"}
	if diff := gocmp.Diff(wantNames, names); diff != "" {
		t.Errorf("figures (-want +got):\n%s", diff)
	}
	checked := r.Figures()[len(names)-1]
	if checked.Value != float64(rows*22) {
		t.Errorf("values checked = %v, want %d", checked.Value, rows*22)
	}
}

// TestMismatchesAreReported gives the peers a training set with wrong
// values, one row missing, and a sum off by less than the tolerance.
func TestMismatchesAreReported(t *testing.T) {
	feats := pitFeatures(false)
	d := generate(t, t.TempDir(), small, feats)
	col := func(name string) int {
		for j, f := range feats {
			if f.Column == name {
				return j
			}
		}
		t.Fatalf("no feature %s", name)
		return 0
	}
	// Pick rows by their value in the right answer, so each change is a
	// real one.
	pick := func(want func(c cell) bool, j int, skip map[int]bool) int {
		for i := range d.values {
			if !skip[i] && want(d.values[i][j]) {
				skip[i] = true
				return i
			}
		}
		t.Fatalf("no row fits for %s", feats[j].Column)
		return 0
	}
	set, nonzero := func(c cell) bool { return c.ok }, func(c cell) bool { return c.ok && c.v != 0 }
	used := map[int]bool{}
	last, count, sum, mean := col("u__last_v3"), col("u__count_24h"), col("u__sum_v4_7d"), col("u__mean_v1_24h")
	lastRow, countRow := pick(set, last, used), pick(set, count, used)
	sumRow, meanRow, nearRow := pick(nonzero, sum, used), pick(set, mean, used), pick(nonzero, sum, used)
	values := d.values
	values[lastRow][last].v = math.Nextafter(values[lastRow][last].v, math.Inf(1)) // one ulp is a mismatch
	values[countRow][count].v++
	values[sumRow][sum].v *= 1 + 1e-7
	values[meanRow][mean] = cell{}
	values[nearRow][sum].v *= 1 + 1e-12 // within the tolerance
	missing := pick(func(cell) bool { return true }, 0, used)
	spine := append(d.spine[:missing:missing], d.spine[missing+1:]...)
	values = append(values[:missing:missing], values[missing+1:]...)
	dataset := filepath.Join(d.dir, "wrong")
	if err := writeDataset(dataset, feats, spine, values); err != nil {
		t.Fatal(err)
	}
	spec := *d.spec
	spec.Dataset = dataset
	o := pandasOptions(t)
	r, err := pitpeers.Run(context.Background(), &spec, o)
	if err != nil {
		t.Fatal(err)
	}
	type mismatch struct {
		Row    int64
		Column string
	}
	type summary struct {
		Peer                 string
		Mismatches           int64
		OnlySluice, OnlyPeer int64
		First                []mismatch
	}
	row := func(i int) int64 { return d.spine[i].Row }
	lastMismatch := []mismatch{{row(lastRow), "u__last_v3"}}
	windowMismatches := []mismatch{{row(countRow), "u__count_24h"}, {row(sumRow), "u__sum_v4_7d"}, {row(meanRow), "u__mean_v1_24h"}}
	want := []summary{
		{"duckdb-asof", 1, 0, 1, lastMismatch},
		{"duckdb-window", 3, 0, 1, windowMismatches},
	}
	if !o.NoPandas {
		want = append(want, summary{"pandas-merge-asof", 1, 0, 1, lastMismatch})
	}
	var got []summary
	for _, c := range r.Checks {
		s := summary{c.Peer, c.Mismatches, c.OnlySluice, c.OnlyPeer, nil}
		for _, m := range c.First {
			s.First = append(s.First, mismatch{m.Row, m.Column})
		}
		got = append(got, s)
	}
	sortMismatches := gocmp.Transformer("sort", func(in []mismatch) []mismatch {
		out := slices.Clone(in)
		slices.SortFunc(out, func(a, b mismatch) int {
			return cmp.Or(strings.Compare(a.Column, b.Column), cmp.Compare(a.Row, b.Row))
		})
		return out
	})
	if diff := gocmp.Diff(want, got, sortMismatches); diff != "" {
		t.Errorf("checks (-want +got):\n%s", diff)
	}
	if r.OK() {
		t.Error("Result.OK() = true, want false")
	}
	var shown string
	for _, c := range r.Checks {
		for _, m := range c.First {
			shown += m.String() + "\n"
		}
	}
	if wantLine := "u__mean_v1_24h: sluice null, peer "; !strings.Contains(shown, wantLine) {
		t.Errorf("the mismatches shown do not say %q:\n%s", wantLine, shown)
	}
}

func TestLoadRejectsBadSpecs(t *testing.T) {
	good := `{"events": "e/*.parquet", "spine": "s.parquet", "dataset": "out", "features": [%s]}`
	tests := []struct {
		name, features, want string
	}{
		{"unknown agg", `{"column": "a", "agg": "median", "field": "v0", "window_us": 1, "hop_us": 1}`, `unknown agg "median"`},
		{"window without hop", `{"column": "a", "agg": "sum", "field": "v0", "window_us": 3600000000}`, "needs a positive window_us and hop_us"},
		{"last with ttl", `{"column": "a", "agg": "last", "field": "v0", "window_us": 5}`, "not supported"},
		{"no field", `{"column": "a", "agg": "min", "window_us": 1, "hop_us": 1}`, "min needs a field"},
		{"twice", `{"column": "a", "agg": "last", "field": "v0"}, {"column": "a", "agg": "last", "field": "v1"}`, "named twice"},
		{"spine column", `{"column": "row", "agg": "last", "field": "v0"}`, "taken by the spine"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			body := strings.Replace(good, "%s", tt.features, 1)
			if err := os.WriteFile(filepath.Join(dir, "pit.json"), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := pitpeers.Load(dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load() error = %v, want one containing %q", err, tt.want)
			}
		})
	}
	if _, err := pitpeers.Load(t.TempDir()); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(empty dir) error = %v, want one wrapping os.ErrNotExist", err)
	}
}

// TestGenerate writes a benchmark directory for trying the peers at a
// larger size, with the training set computed by brute force:
//
//	go test ./pitpeers -run TestGenerate -pitpeers.gen DIR -pitpeers.events 1000000
//	go run ./cmd/pitpeers DIR
func TestGenerate(t *testing.T) {
	if *genDir == "" {
		t.Skip("no -pitpeers.gen directory")
	}
	n := *genEvents
	c := genConfig{users: max(1, n/100), events: n, spineRows: max(1, n/10), span: 30 * 24 * time.Hour, seed: 7}
	d := generate(t, *genDir, c, pitFeatures(false))
	t.Logf("wrote %s: %d events of %d users, %d spine rows; %+v", d.dir, c.events, c.users, c.spineRows, d.stats)
}
