package train

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/axiomhq/hyperloglog"

	"github.com/sluicehq/sluice/schemas"
)

// ProfileVersion is the version of profile.json's format.
const ProfileVersion = 1

// Bins is how many bins the reference histogram of a numeric feature has:
// one per decile.
const Bins = 10

// TopCategories is how many of a string feature's most frequent values its
// profile lists.
const TopCategories = 20

// categoryCounters bounds the values a string feature's profile counts at
// once (see ColumnProfile.TopApprox).
const categoryCounters = 10_000

// sampleSeed seeds the reservoir samples, so profiles are reproducible.
const sampleSeed = 0x5e1ce

// Profile is DIR/profile.json: statistics of a dataset's columns, computed
// while it was written. It is the default drift baseline.
type Profile struct {
	Version int   `json:"version"` // ProfileVersion
	Rows    int64 `json:"rows"`
	// Features describes the feature columns, in column order.
	Features []ColumnProfile `json:"features"`
	// Spine counts the other columns (entity keys, timestamp, labels), in
	// column order: only Name, Type, Count and Nulls are set.
	Spine []ColumnProfile `json:"spine"`
}

// Feature returns the profile of the named feature column, or nil.
func (p *Profile) Feature(name string) *ColumnProfile {
	for i := range p.Features {
		if p.Features[i].Name == name {
			return &p.Features[i]
		}
	}
	return nil
}

// ColumnProfile describes one column. Which statistics are set depends on the
// column: numbers (int64, float64, timestamp in microseconds, bool as 0 or 1)
// get Min to Histogram, strings get Top and DistinctApprox, lists get Lists
// and MeanLength. Statistics of no values are left out, and so are a mean
// and std that overflow a float64 (values near ±1.8e308).
type ColumnProfile struct {
	Name  string       `json:"name"`
	Type  schemas.Type `json:"type"` // of the elements, for a list
	List  bool         `json:"list,omitempty"`
	Count int64        `json:"count"` // rows
	Nulls int64        `json:"nulls"`

	// NonFinite counts NaN and infinite values, which the numeric statistics
	// leave out.
	NonFinite int64    `json:"non_finite,omitempty"`
	Min       *float64 `json:"min,omitempty"`
	Max       *float64 `json:"max,omitempty"`
	Mean      *float64 `json:"mean,omitempty"`
	Std       *float64 `json:"std,omitempty"` // sample (n-1); needs two values
	// Sample is how many values BinEdges and Histogram were computed from:
	// every finite value up to WriterOptions.ProfileSample of them, else a
	// uniform reservoir sample of that many (fixed seed).
	Sample int64 `json:"sample,omitempty"`
	// BinEdges are Bins+1 ascending edges: Min, the nine deciles of the
	// sample (linear interpolation between the closest ranks), Max. Edges
	// repeat where values do; Bin says which bin a value falls in.
	BinEdges []float64 `json:"bin_edges,omitempty"`
	// Histogram counts the sample's values per bin, indexed as Bin returns:
	// below the first edge, the Bins bins, above the last edge. The two
	// overflow bins are 0 here; a later sample's histogram uses them.
	Histogram []int64 `json:"histogram,omitempty"`

	// Top lists the most frequent values, most frequent first, ties by
	// value; at most TopCategories.
	Top []Category `json:"top,omitempty"`
	// TopApprox is set when the column had more distinct values than the
	// profile counts at once (10,000). Counting then follows Space-Saving:
	// a new value replaces the least counted and inherits its count, so
	// counts may be overestimated by at most rows/10,000, and every value
	// more frequent than that is listed if it ranks in the top.
	TopApprox bool `json:"top_approx,omitempty"`
	// DistinctApprox is the number of distinct values: exact unless
	// TopApprox, else a HyperLogLog estimate (precision 14, ~1% error).
	DistinctApprox *uint64 `json:"distinct_approx,omitempty"`

	// Lists counts the non-null lists; MeanLength is their mean length.
	Lists      *int64   `json:"lists,omitempty"`
	MeanLength *float64 `json:"mean_length,omitempty"`
}

// Category is one value of a string column and how often it occurred.
type Category struct {
	Value string `json:"value"`
	Count int64  `json:"count"`
}

// Bin returns the index in Histogram of the bin that holds v: 0 below the
// first edge, len(BinEdges) above the last, else 1+i for the bin i that
// spans [BinEdges[i], BinEdges[i+1]), the last bin holding its upper edge
// too. Where edges repeat, v goes to the last bin that starts at or below it,
// so a value repeated across several deciles fills one bin. It returns -1 for
// NaN and when the profile has no edges.
func (p *ColumnProfile) Bin(v float64) int {
	e := p.BinEdges
	switch {
	case len(e) < 2 || math.IsNaN(v):
		return -1
	case v < e[0]:
		return 0
	case v > e[len(e)-1]:
		return len(e)
	}
	atOrBelow := sort.Search(len(e), func(i int) bool { return e[i] > v })
	return min(atOrBelow, len(e)-1)
}

// ReadProfile reads DIR/profile.json.
func ReadProfile(dir string) (Profile, error) {
	var p Profile
	if err := readJSON(dir, ProfileFile, &p); err != nil {
		return Profile{}, err
	}
	return p, nil
}

// profiler accumulates the profile of the rows written, in bounded memory.
type profiler struct {
	cols []columnStats
}

type columnStats struct {
	col   Column
	nulls int64
	num   *numericStats  // numeric feature
	cat   *categoryStats // string feature
	lists int64          // list feature: non-null lists
	items int64          // and their total length
}

func newProfiler(cols []Column, sample int) *profiler {
	p := &profiler{cols: make([]columnStats, len(cols))}
	for i, c := range cols {
		p.cols[i].col = c
		if !c.Feature || c.List {
			continue
		}
		if c.Type == schemas.String {
			p.cols[i].cat = newCategoryStats(categoryCounters)
		} else {
			p.cols[i].num = &numericStats{limit: sample, rng: rand.New(rand.NewPCG(sampleSeed, uint64(i)))}
		}
	}
	return p
}

// observeColumn adds rows [lo, hi) of v, the vector of the j-th column,
// which Write or WriteBlock checked. Columns are independent: the
// statistics come out as if the rows were observed one by one, and calls
// for different columns may run at once.
func (p *profiler) observeColumn(j int, v *Vector, lo, hi int) {
	s := &p.cols[j]
	if v.Null != nil {
		for _, null := range v.Null[lo:hi] {
			if null {
				s.nulls++
			}
		}
	}
	switch {
	case s.col.List:
		for i := lo; i < hi; i++ {
			if !v.null(i) {
				s.lists++
				s.items += int64(len(v.Lists[i]))
			}
		}
	case s.cat != nil:
		for i, x := range v.Str[lo:hi] {
			if !v.null(lo + i) {
				s.cat.add(x)
			}
		}
	case s.num != nil:
		s.num.addVector(s.col.Type, v, lo, hi)
	}
}

// profile returns the profile of the rows observed, describing up to
// workers columns at once.
func (p *profiler) profile(rows int64, workers int) Profile {
	cps := make([]ColumnProfile, len(p.cols))
	var next atomic.Int64
	work := func() {
		for {
			i := int(next.Add(1) - 1)
			if i >= len(p.cols) {
				return
			}
			cps[i] = p.cols[i].profile(rows)
		}
	}
	var wg sync.WaitGroup
	for range min(workers, len(p.cols)) - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
	out := Profile{Version: ProfileVersion, Rows: rows, Features: []ColumnProfile{}, Spine: []ColumnProfile{}}
	for i, cp := range cps {
		if p.cols[i].col.Feature {
			out.Features = append(out.Features, cp)
		} else {
			out.Spine = append(out.Spine, cp)
		}
	}
	return out
}

// profile describes the column, of rows rows.
func (s *columnStats) profile(rows int64) ColumnProfile {
	cp := ColumnProfile{Name: s.col.Name, Type: s.col.Type, Count: rows, Nulls: s.nulls}
	if !s.col.Feature {
		return cp
	}
	cp.List = s.col.List
	switch {
	case s.col.List:
		cp.Lists = &s.lists
		if s.lists > 0 {
			cp.MeanLength = ptr(float64(s.items) / float64(s.lists))
		}
	case s.num != nil:
		s.num.fill(&cp)
	case s.cat != nil:
		s.cat.fill(&cp)
	}
	return cp
}

func ptr[T any](v T) *T { return &v }

// finite returns &x, or nil when x is NaN or infinite, which JSON cannot
// hold.
func finite(x float64) *float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	return &x
}

// numericStats holds exact moments (Welford's method) and a reservoir sample
// of a numeric column's finite values.
type numericStats struct {
	n         int64
	nonFinite int64
	min, max  float64
	mean, m2  float64
	sample    []float64
	limit     int
	rng       *rand.Rand
	scratch   []float64 // addVector's
}

// addAll adds xs in order.
func (s *numericStats) addAll(xs []float64) {
	// The moments live in locals through the loop, which keeps them in
	// registers; the arithmetic is that of one value at a time.
	n, lo, hi, mean, m2 := s.n, s.min, s.max, s.mean, s.m2
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			s.nonFinite++
			continue
		}
		n++
		if n == 1 {
			lo, hi = x, x
		}
		lo, hi = min(lo, x), max(hi, x)
		d := x - mean
		mean += d / float64(n)
		m2 += d * (x - mean)
		if len(s.sample) < s.limit {
			s.sample = append(s.sample, x)
		} else if j := s.rng.Int64N(n); j < int64(s.limit) {
			s.sample[j] = x
		}
	}
	s.n, s.min, s.max, s.mean, s.m2 = n, lo, hi, mean, m2
}

// addVector adds the rows [lo, hi) of v, a vector of type t, that are not
// null.
func (s *numericStats) addVector(t schemas.Type, v *Vector, lo, hi int) {
	if t == schemas.Float64 && v.Null == nil {
		s.addAll(v.Float[lo:hi])
		return
	}
	xs := slices.Grow(s.scratch[:0], hi-lo)
	for i := lo; i < hi; i++ {
		if v.null(i) {
			continue
		}
		switch t {
		case schemas.Float64:
			xs = append(xs, v.Float[i])
		case schemas.Bool:
			xs = append(xs, boolNumber(v.Bool[i]))
		default:
			xs = append(xs, float64(v.Int[i]))
		}
	}
	s.addAll(xs)
	s.scratch = xs
}

// boolNumber returns 1 for true, 0 for false.
func boolNumber(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (s *numericStats) fill(cp *ColumnProfile) {
	cp.NonFinite = s.nonFinite
	if s.n == 0 {
		return
	}
	cp.Min, cp.Max, cp.Mean = ptr(s.min), ptr(s.max), finite(s.mean)
	if s.n > 1 {
		cp.Std = finite(math.Sqrt(s.m2 / float64(s.n-1)))
	}
	sorted := slices.Clone(s.sample)
	slices.Sort(sorted)
	cp.Sample = int64(len(sorted))
	cp.BinEdges = decileEdges(sorted, s.min, s.max)
	cp.Histogram = make([]int64, len(cp.BinEdges)+1)
	for _, x := range sorted {
		cp.Histogram[cp.Bin(x)]++
	}
}

// decileEdges returns Bins+1 edges: lo, the deciles of sorted, hi.
func decileEdges(sorted []float64, lo, hi float64) []float64 {
	edges := make([]float64, Bins+1)
	edges[0], edges[Bins] = lo, hi
	last := len(sorted) - 1
	for i := 1; i < Bins; i++ {
		// The rank i/Bins of the way from the first value to the last, in
		// integers so that deciles of whole ranks are exact.
		k, rem := i*last/Bins, i*last%Bins
		q := sorted[k]
		if rem > 0 {
			a, b, f := sorted[k], sorted[k+1], float64(rem)/Bins
			if d := b - a; math.IsInf(d, 0) {
				q = a*(1-f) + b*f // the difference overflows; the terms do not
			} else {
				q = a + f*d
			}
		}
		edges[i] = min(max(q, edges[i-1]), hi)
	}
	return edges
}

// categoryStats counts a string column's values with the Space-Saving
// algorithm over a bounded set of counters, kept in a min-heap, and
// estimates its distinct values with HyperLogLog.
type categoryStats struct {
	limit   int
	heap    []Category     // min-heap by count, then by value descending
	index   map[string]int // value -> position in heap
	evicted bool
	hll     *hyperloglog.Sketch
}

func newCategoryStats(limit int) *categoryStats {
	return &categoryStats{limit: limit, index: map[string]int{}, hll: hyperloglog.New14()}
}

func (c *categoryStats) add(v string) {
	c.hll.Insert([]byte(v))
	if i, ok := c.index[v]; ok {
		c.heap[i].Count++
		c.down(i)
		return
	}
	if len(c.heap) < c.limit {
		c.heap = append(c.heap, Category{Value: v, Count: 1})
		c.index[v] = len(c.heap) - 1
		c.up(len(c.heap) - 1)
		return
	}
	// Space-Saving: the new value takes over the least counted one.
	c.evicted = true
	delete(c.index, c.heap[0].Value)
	c.heap[0] = Category{Value: v, Count: c.heap[0].Count + 1}
	c.index[v] = 0
	c.down(0)
}

func (c *categoryStats) less(i, j int) bool {
	a, b := c.heap[i], c.heap[j]
	return a.Count < b.Count || a.Count == b.Count && a.Value > b.Value
}

func (c *categoryStats) swap(i, j int) {
	c.heap[i], c.heap[j] = c.heap[j], c.heap[i]
	c.index[c.heap[i].Value], c.index[c.heap[j].Value] = i, j
}

func (c *categoryStats) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !c.less(i, parent) {
			return
		}
		c.swap(i, parent)
		i = parent
	}
}

func (c *categoryStats) down(i int) {
	for {
		least := i
		if l := 2*i + 1; l < len(c.heap) && c.less(l, least) {
			least = l
		}
		if r := 2*i + 2; r < len(c.heap) && c.less(r, least) {
			least = r
		}
		if least == i {
			return
		}
		c.swap(i, least)
		i = least
	}
}

func (c *categoryStats) fill(cp *ColumnProfile) {
	if len(c.heap) == 0 {
		return
	}
	top := slices.Clone(c.heap)
	slices.SortFunc(top, func(a, b Category) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Value, b.Value))
	})
	cp.Top = top[:min(len(top), TopCategories)]
	cp.TopApprox = c.evicted
	distinct := uint64(len(c.heap))
	if c.evicted {
		distinct = c.hll.Estimate()
	}
	cp.DistinctApprox = &distinct
}
