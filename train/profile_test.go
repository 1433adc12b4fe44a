package train

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sluicehq/sluice/schemas"
)

func TestProfileValues(t *testing.T) {
	cols := []Column{
		{Name: "user_id", Type: schemas.String},
		{Name: "timestamp", Type: schemas.Timestamp},
		{Name: "label", Type: schemas.Bool, Nullable: true},
		{Name: "amount", Type: schemas.Float64, Nullable: true, Feature: true},
		{Name: "count", Type: schemas.Int64, Feature: true},
		{Name: "flag", Type: schemas.Bool, Feature: true},
		{Name: "country", Type: schemas.String, Nullable: true, Feature: true},
		{Name: "recent", Type: schemas.Float64, Nullable: true, List: true, Feature: true},
		{Name: "ratio", Type: schemas.Float64, Feature: true},
		{Name: "never", Type: schemas.String, Nullable: true, Feature: true},
	}
	inf := math.Inf(1)
	rows := [][]any{
		{"u1", int64(1), true, 10.0, int64(0), true, "NL", []any{1.0, 2.0}, 1.0, nil},
		{"u2", int64(2), nil, 20.0, int64(0), false, "DE", nil, math.NaN(), nil},
		{"u3", int64(3), false, nil, int64(0), true, nil, []any{}, inf, nil},
		{"u1", int64(4), nil, 40.0, int64(1), true, "NL", []any{3.0}, 3.0, nil},
		{"u2", int64(5), true, 30.0, int64(1), false, "FR", []any{nil, 4.0, 5.0}, -inf, nil},
		{"u3", int64(6), false, 50.0, int64(3), true, "NL", []any{6.0}, 2.0, nil},
	}
	dir := filepath.Join(t.TempDir(), "ds")
	writeDataset(t, dir, cols, rows, testOptions(4, 0), Manifest{})
	got, err := ReadProfile(dir)
	if err != nil {
		t.Fatal(err)
	}

	f, i, u := ptr[float64], ptr[int64], ptr[uint64]
	want := Profile{
		Version: 1,
		Rows:    6,
		Features: []ColumnProfile{{
			// 10 20 30 40 50: deciles at ranks 0.4, 0.8, ..., 3.6.
			Name: "amount", Type: schemas.Float64, Count: 6, Nulls: 1,
			Min: f(10), Max: f(50), Mean: f(30), Std: f(math.Sqrt(1000.0 / 4)), Sample: 5,
			BinEdges:  []float64{10, 14, 18, 22, 26, 30, 34, 38, 42, 46, 50},
			Histogram: []int64{0, 1, 0, 1, 0, 0, 1, 0, 1, 0, 1, 0},
		}, {
			// 0 0 0 1 1 3: the zeros fill one bin, the ones another.
			Name: "count", Type: schemas.Int64, Count: 6,
			Min: f(0), Max: f(3), Mean: f(5.0 / 6), Std: f(math.Sqrt(246.0 / 36 / 5)), Sample: 6,
			BinEdges:  []float64{0, 0, 0, 0, 0, 0.5, 1, 1, 1, 2, 3},
			Histogram: []int64{0, 0, 0, 0, 0, 3, 0, 0, 0, 2, 1, 0},
		}, {
			// 0 0 1 1 1 1
			Name: "flag", Type: schemas.Bool, Count: 6,
			Min: f(0), Max: f(1), Mean: f(4.0 / 6), Std: f(math.Sqrt(6.0 / 5 * 2 / 9)), Sample: 6,
			BinEdges:  []float64{0, 0, 0, 0.5, 1, 1, 1, 1, 1, 1, 1},
			Histogram: []int64{0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 4, 0},
		}, {
			Name: "country", Type: schemas.String, Count: 6, Nulls: 1,
			Top:            []Category{{"NL", 3}, {"DE", 1}, {"FR", 1}},
			DistinctApprox: u(3),
		}, {
			Name: "recent", Type: schemas.Float64, List: true, Count: 6, Nulls: 1,
			Lists: i(5), MeanLength: f(7.0 / 5),
		}, {
			// 1 3 2 with NaN, +Inf and -Inf left out.
			Name: "ratio", Type: schemas.Float64, Count: 6, NonFinite: 3,
			Min: f(1), Max: f(3), Mean: f(2), Std: f(1), Sample: 3,
			BinEdges:  []float64{1, 1.2, 1.4, 1.6, 1.8, 2, 2.2, 2.4, 2.6, 2.8, 3},
			Histogram: []int64{0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0},
		}, {
			Name: "never", Type: schemas.String, Count: 6, Nulls: 6,
		}},
		Spine: []ColumnProfile{
			{Name: "user_id", Type: schemas.String, Count: 6},
			{Name: "timestamp", Type: schemas.Timestamp, Count: 6},
			{Name: "label", Type: schemas.Bool, Count: 6, Nulls: 2},
		},
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateApprox(0, 1e-12)); diff != "" {
		t.Errorf("profile (-want +got):\n%s", diff)
	}
	if p := got.Feature("country"); p == nil || p.Name != "country" {
		t.Errorf("Feature(country) = %v", p)
	}
	if p := got.Feature("user_id"); p != nil {
		t.Errorf("Feature(user_id) = %v, want nil for a spine column", p)
	}
}

func TestProfileExtremeValues(t *testing.T) {
	cols := []Column{{Name: "x", Type: schemas.Float64, Feature: true}}
	dir := filepath.Join(t.TempDir(), "ds")
	writeDataset(t, dir, cols, [][]any{{1e308}, {-1e308}, {1e308}}, testOptions(0, 0), Manifest{})
	got, err := ReadProfile(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The mean and the spread overflow, so they are left out; the rest stays.
	want := []ColumnProfile{{
		Name: "x", Type: schemas.Float64, Count: 3, Min: ptr(-1e308), Max: ptr(1e308), Sample: 3,
		BinEdges:  []float64{-1e308, -0.6e308, -0.2e308, 0.2e308, 0.6e308, 1e308, 1e308, 1e308, 1e308, 1e308, 1e308},
		Histogram: []int64{0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0},
	}}
	if diff := cmp.Diff(want, got.Features, cmpopts.EquateApprox(1e-12, 0)); diff != "" {
		t.Errorf("profile (-want +got):\n%s", diff)
	}
}

func TestColumnProfileBin(t *testing.T) {
	p := ColumnProfile{BinEdges: []float64{0, 0, 0, 1, 2, 2, 3, 4, 5, 6, 10}}
	tests := []struct {
		v    float64
		want int
	}{
		{-0.1, 0},
		{math.Inf(-1), 0},
		{0, 3},    // [0, 1), the last bin starting at 0
		{0.5, 3},  // [0, 1)
		{1, 4},    // [1, 2)
		{2, 6},    // [2, 3)
		{5.99, 9}, // [5, 6)
		{6, 10},   // [6, 10]
		{10, 10},  // the last bin holds its upper edge
		{10.5, 11},
		{math.Inf(1), 11},
		{math.NaN(), -1},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.v), func(t *testing.T) {
			if got := p.Bin(tt.v); got != tt.want {
				t.Errorf("Bin(%v) = %d, want %d", tt.v, got, tt.want)
			}
		})
	}
	if got := (&ColumnProfile{}).Bin(1); got != -1 {
		t.Errorf("Bin without edges = %d, want -1", got)
	}
}

// manyRows returns n rows of random values: uniform amounts, a skewed
// category with many distinct values, lists of varying length.
func manyRows(n int) [][]any {
	rng := rand.New(rand.NewPCG(1, 2))
	rows := make([][]any, n)
	for i := range rows {
		var cat any = fmt.Sprintf("c%d", rng.IntN(20_000))
		if rng.IntN(4) == 0 {
			cat = fmt.Sprintf("hot%d", rng.IntN(3))
		}
		var amount any = rng.Float64() * 1000
		if rng.IntN(10) == 0 {
			amount = nil
		}
		recent := make([]any, rng.IntN(5))
		for j := range recent {
			recent[j] = rng.Int64N(100)
		}
		rows[i] = []any{fmt.Sprintf("u%d", rng.IntN(100)), amount, cat, recent, rng.IntN(3) == 0}
	}
	return rows
}

var manyColumns = []Column{
	{Name: "user_id", Type: schemas.String},
	{Name: "amount", Type: schemas.Float64, Nullable: true, Feature: true},
	{Name: "merchant", Type: schemas.String, Feature: true},
	{Name: "recent", Type: schemas.Int64, List: true, Feature: true},
	{Name: "flag", Type: schemas.Bool, Feature: true},
}

func TestProfileDeterministic(t *testing.T) {
	rows := manyRows(40_000)
	opts := testOptions(15_000, 4_000)
	opts.ProfileSample = 5_000
	var profiles [][]byte
	for _, name := range []string{"a", "b"} {
		dir := filepath.Join(t.TempDir(), name)
		writeDataset(t, dir, manyColumns, rows, opts, Manifest{})
		b, err := os.ReadFile(filepath.Join(dir, ProfileFile))
		if err != nil {
			t.Fatal(err)
		}
		profiles = append(profiles, b)
	}
	if !bytes.Equal(profiles[0], profiles[1]) {
		t.Fatalf("two writes of the same rows gave different profiles:\n%s", cmp.Diff(string(profiles[0]), string(profiles[1])))
	}

	// The bounded parts are at work, and still describe the data.
	dir := filepath.Join(t.TempDir(), "c")
	writeDataset(t, dir, manyColumns, rows, opts, Manifest{})
	p, err := ReadProfile(dir)
	if err != nil {
		t.Fatal(err)
	}
	amount := p.Feature("amount")
	var sum int64
	for _, c := range amount.Histogram {
		sum += c
	}
	if amount.Sample != 5_000 || sum != 5_000 {
		t.Errorf("amount: sample %d, histogram total %d; want both 5000", amount.Sample, sum)
	}
	if !slices.IsSorted(amount.BinEdges) || amount.BinEdges[0] != *amount.Min || amount.BinEdges[Bins] != *amount.Max {
		t.Errorf("amount edges %v: want ascending from min %v to max %v", amount.BinEdges, *amount.Min, *amount.Max)
	}
	for k, e := range amount.BinEdges[1:Bins] { // uniform on [0, 1000)
		if want := float64(k+1) * 100; math.Abs(e-want) > 25 {
			t.Errorf("amount decile %d = %.1f, want about %.0f", k+1, e, want)
		}
	}
	merchant := p.Feature("merchant")
	if !merchant.TopApprox {
		t.Error("merchant: more distinct values than counters, but top_approx is not set")
	}
	for k, c := range merchant.Top[:3] { // each hot value has ~1/12 of the rows
		if c.Value[:3] != "hot" || c.Count < 3_000 || c.Count > 3_700 {
			t.Errorf("merchant top %d = %+v, want a hot value with about 3333 rows", k, c)
		}
	}
	distinct := distinctValues(rows, 2)
	if got := float64(*merchant.DistinctApprox); math.Abs(got-float64(distinct))/float64(distinct) > 0.02 {
		t.Errorf("merchant distinct_approx %v, want %d within 2%%", got, distinct)
	}
}

func distinctValues(rows [][]any, col int) int {
	seen := map[any]bool{}
	for _, r := range rows {
		seen[r[col]] = true
	}
	return len(seen)
}

func TestCategoryStatsSpaceSaving(t *testing.T) {
	c := newCategoryStats(3)
	for _, v := range []string{"a", "a", "b", "a", "b", "c", "d"} {
		c.add(v)
	}
	var got ColumnProfile
	c.fill(&got)
	// d replaced c, the least counted, and took over its count.
	want := ColumnProfile{Top: []Category{{"a", 3}, {"b", 2}, {"d", 2}}, TopApprox: true, DistinctApprox: ptr[uint64](4)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("space-saving (-want +got):\n%s", diff)
	}
}

func TestNumericStatsReservoir(t *testing.T) {
	s := numericStats{limit: 1_000, rng: rand.New(rand.NewPCG(sampleSeed, 0))}
	for x := range 100_000 {
		s.addAll([]float64{float64(x)})
	}
	var got ColumnProfile
	s.fill(&got)
	if got.Sample != 1_000 || *got.Min != 0 || *got.Max != 99_999 || *got.Mean != 49_999.5 {
		t.Errorf("sample %d min %v max %v mean %v, want 1000, 0, 99999, 49999.5", got.Sample, *got.Min, *got.Max, *got.Mean)
	}
	// A uniform sample of a stream in order: its deciles fall near the
	// stream's, not near its head.
	for k, e := range got.BinEdges[1:Bins] {
		if want := float64(k+1) * 10_000; math.Abs(e-want) > 4_000 {
			t.Errorf("decile %d = %.0f, want about %.0f", k+1, e, want)
		}
	}
}
