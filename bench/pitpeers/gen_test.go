package pitpeers_test

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/sluicehq/sluice/bench/pitpeers"
	"github.com/sluicehq/sluice/schemas"
)

// genConfig shapes a generated benchmark directory.
type genConfig struct {
	users, events, spineRows int
	span                     time.Duration
	seed                     uint64
}

// event is one generated event of the stream txns.
type event struct {
	user      string
	ts        int64 // µs
	v         [10]float64
	partition int32
	offset    int64
}

type spineRow struct {
	UserID    string `parquet:"user_id"`
	Timestamp int64  `parquet:"timestamp,timestamp(microsecond)"`
	Row       int64  `parquet:"row"`
}

// cell is one training-set value; a count is held as a float64.
type cell struct {
	v  float64
	ok bool // false: null
}

// pitData is a generated directory and the values the time rule gives.
type pitData struct {
	dir    string
	spec   *pitpeers.Spec
	spine  []spineRow
	values [][]cell // per spine row, per feature
	stats  genStats
}

// genStats counts the cases the data exercises, so a test can insist
// that it checks something.
type genStats struct {
	nullLast, tiesDecided, atEventTime, emptyWindows int
}

const (
	minute = int64(time.Minute / time.Microsecond)
	hour   = 60 * minute
	day    = 24 * hour
)

// pitFeatures are the point-in-time benchmark's features (10 last, 10
// windowed with the default hops), and, with extra, a window whose hop
// does not divide an hour.
func pitFeatures(extra bool) []pitpeers.Feature {
	var fs []pitpeers.Feature
	for i := range 10 {
		fs = append(fs, pitpeers.Feature{Column: fmt.Sprintf("u__last_v%d", i), Agg: "last", Field: fmt.Sprintf("v%d", i)})
	}
	win := func(name, agg, field string, w, h int64) pitpeers.Feature {
		return pitpeers.Feature{Column: "u__" + name, Agg: agg, Field: field, WindowUS: w, HopUS: h}
	}
	fs = append(fs,
		win("sum_v0_1h", "sum", "v0", hour, 5*minute),
		win("count_1h", "count", "", hour, 5*minute),
		win("mean_v1_24h", "mean", "v1", day, hour),
		win("max_v2_24h", "max", "v2", day, hour),
		win("min_v3_7d", "min", "v3", 7*day, hour),
		win("sum_v4_7d", "sum", "v4", 7*day, hour),
		win("count_24h", "count", "", day, hour),
		win("mean_v5_1h", "mean", "v5", hour, 5*minute),
		win("max_v6_7d", "max", "v6", 7*day, hour),
		win("sum_v7_24h", "sum", "v7", day, hour),
	)
	if extra {
		fs = append(fs, win("min_v8_30m", "min", "v8", 30*minute, 7*minute), win("mean_v9_30m", "mean", "v9", 30*minute, 7*minute))
	}
	return fs
}

var genStart = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).UnixMicro()

// generateEvents makes events of c.users users over c.span: one in eight
// takes the time of its user's previous event, so ties on event time come
// with offsets in any order; a user's partition is its number mod 4 and
// offsets rise per partition in generation order, not in time order.
func generateEvents(c genConfig, r *rand.Rand) []event {
	evs := make([]event, c.events)
	offsets := make([]int64, 4)
	prev := map[int]int64{}
	for i := range evs {
		u := r.IntN(c.users)
		ts := genStart + r.Int64N(int64(c.span/time.Microsecond))
		if p, ok := prev[u]; ok && r.IntN(8) == 0 {
			ts = p
		}
		prev[u] = ts
		e := event{user: userName(u), ts: ts, partition: int32(u % 4), offset: offsets[u%4]}
		offsets[u%4]++
		for k := range e.v {
			e.v[k] = r.Float64() * 1e4
		}
		evs[i] = e
	}
	return evs
}

// generateSpine makes spine rows: most at random times from an hour
// before the first event to two hours after the last, one in five exactly
// at an event's time, one in ten on a 5-minute boundary, a few of a user
// without events.
func generateSpine(c genConfig, r *rand.Rand, evs []event) []spineRow {
	rows := make([]spineRow, c.spineRows)
	for i := range rows {
		u := userName(r.IntN(c.users))
		t := genStart - hour + r.Int64N(int64(c.span/time.Microsecond)+3*hour)
		switch n := r.IntN(20); {
		case n < 4:
			e := evs[r.IntN(len(evs))]
			u, t = e.user, e.ts
		case n < 6:
			t -= t % (5 * minute)
		case n == 6:
			u = "nobody"
		}
		rows[i] = spineRow{UserID: u, Timestamp: t, Row: int64(i)}
	}
	// Sluice's spines come in no particular order.
	r.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	return rows
}

func userName(u int) string { return fmt.Sprintf("u%07d", u) }

// generate writes a benchmark directory under dir as `sluice bench pit`
// leaves it, with the training set computed here by brute force.
func generate(t testing.TB, dir string, c genConfig, feats []pitpeers.Feature) *pitData {
	t.Helper()
	r := rand.New(rand.NewPCG(c.seed, 99))
	evs := generateEvents(c, r)
	d := &pitData{dir: dir, spine: generateSpine(c, r, evs)}
	d.spec = &pitpeers.Spec{
		Events:   filepath.Join(dir, "offline", "streams", "txns", "date=*", "part-*.parquet"),
		Spine:    filepath.Join(dir, "spine.parquet"),
		Dataset:  filepath.Join(dir, "out"),
		Features: feats,
	}
	if err := writeEvents(dir, evs); err != nil {
		t.Fatal(err)
	}
	if err := parquet.WriteFile(d.spec.Spine, d.spine, parquet.Compression(&parquet.Zstd)); err != nil {
		t.Fatal(err)
	}
	d.values, d.stats = bruteForce(evs, d.spine, feats)
	if err := writeDataset(d.spec.Dataset, feats, d.spine, d.values); err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(d.spec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pit.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

// txnsSchema is the schema of the benchmark's stream.
func txnsSchema() *schemas.Schema {
	s := &schemas.Schema{Stream: "txns", Version: 1, TimeField: "ts", KeyFields: []string{"user_id"}}
	s.Fields = append(s.Fields, schemas.Field{Name: "user_id", Type: schemas.String})
	for k := range 10 {
		s.Fields = append(s.Fields, schemas.Field{Name: fmt.Sprintf("v%d", k), Type: schemas.Float64})
	}
	s.Fields = append(s.Fields, schemas.Field{Name: "ts", Type: schemas.Timestamp})
	return s
}

// writeEvents writes the offline store's files as Sluice lays them out:
// one file per (date, partition), rows sorted by (user, event time).
func writeEvents(dir string, evs []event) error {
	sc := txnsSchema()
	files := map[string][]event{}
	for _, e := range evs {
		date := time.UnixMicro(e.ts).UTC().Format(time.DateOnly)
		key := filepath.Join("date="+date, fmt.Sprintf("part-p%d.parquet", e.partition))
		files[key] = append(files[key], e)
	}
	for name, evs := range files {
		slices.SortFunc(evs, func(a, b event) int {
			return cmp.Or(strings.Compare(a.user, b.user), cmp.Compare(a.ts, b.ts))
		})
		path := filepath.Join(dir, "offline", "streams", "txns", name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := writeParquet(path, schemas.ParquetSchema(sc), len(evs), func(i int, row parquet.Row) (parquet.Row, error) {
			e := evs[i]
			values := []any{e.user}
			for _, v := range e.v {
				values = append(values, v)
			}
			values = append(values, e.ts)
			return schemas.AppendParquetRow(row, sc, values, schemas.ParquetMeta{
				EventID: fmt.Sprintf("p%d-%d", e.partition, e.offset), EventTime: e.ts, ArrivalTime: e.ts + 1500,
				Partition: e.partition, Offset: e.offset,
			})
		}); err != nil {
			return err
		}
	}
	return nil
}

// writeDataset writes a training set as one Parquet file: the spine's
// columns, then the features, nullable, counts as INT64 and the rest as
// DOUBLE.
func writeDataset(dir string, feats []pitpeers.Feature, spine []spineRow, values [][]cell) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	g := parquet.Group{"user_id": parquet.String(), "timestamp": schemas.ParquetNode(schemas.Timestamp), "row": parquet.Leaf(parquet.Int64Type)}
	order := []string{"user_id", "timestamp", "row"}
	for _, f := range feats {
		typ := parquet.Type(parquet.DoubleType)
		if f.Agg == "count" {
			typ = parquet.Int64Type
		}
		g[f.Column] = parquet.Optional(parquet.Leaf(typ))
		order = append(order, f.Column)
	}
	schema := parquet.NewSchema("dataset", schemas.OrderedGroup(g, order))
	return writeParquet(filepath.Join(dir, "part-00000.parquet"), schema, len(spine), func(i int, row parquet.Row) (parquet.Row, error) {
		s := spine[i]
		row = append(row, parquet.ByteArrayValue([]byte(s.UserID)).Level(0, 0, 0),
			parquet.Int64Value(s.Timestamp).Level(0, 0, 1), parquet.Int64Value(s.Row).Level(0, 0, 2))
		for j, f := range feats {
			c := values[i][j]
			switch {
			case !c.ok:
				row = append(row, parquet.NullValue().Level(0, 0, 3+j))
			case f.Agg == "count":
				row = append(row, parquet.Int64Value(int64(c.v)).Level(0, 1, 3+j))
			default:
				row = append(row, parquet.DoubleValue(c.v).Level(0, 1, 3+j))
			}
		}
		return row, nil
	})
}

// writeParquet writes n rows, made by row, to a zstd-compressed file.
func writeParquet(path string, schema *parquet.Schema, n int, row func(int, parquet.Row) (parquet.Row, error)) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := parquet.NewWriter(f, schema, parquet.Compression(&parquet.Zstd), parquet.MaxRowsPerRowGroup(64<<10))
	var buf parquet.Row
	for i := range n {
		if buf, err = row(i, buf[:0]); err != nil {
			return err
		}
		if _, err := w.WriteRows([]parquet.Row{buf}); err != nil {
			return err
		}
	}
	if err := w.Close(); err != nil {
		return err
	}
	return f.Close()
}

// bruteForce applies the time rule of DESIGN.md section 4 to every spine
// row and feature by scanning the user's events.
func bruteForce(evs []event, spine []spineRow, feats []pitpeers.Feature) ([][]cell, genStats) {
	byUser := map[string][]event{}
	for _, e := range evs {
		byUser[e.user] = append(byUser[e.user], e)
	}
	for _, es := range byUser {
		sort.Slice(es, func(i, j int) bool {
			return es[i].ts < es[j].ts || es[i].ts == es[j].ts && es[i].offset < es[j].offset
		})
	}
	var st genStats
	out := make([][]cell, len(spine))
	for i, s := range spine {
		es := byUser[s.UserID]
		// es[:before] are the events before t.
		before := sort.Search(len(es), func(k int) bool { return es[k].ts >= s.Timestamp })
		if before < len(es) && es[before].ts == s.Timestamp {
			st.atEventTime++
		}
		if before == 0 {
			st.nullLast++
		} else if before > 1 && es[before-2].ts == es[before-1].ts {
			st.tiesDecided++
		}
		out[i] = make([]cell, len(feats))
		for j, f := range feats {
			out[i][j] = value(f, es[:before], s.Timestamp)
			if f.Agg == "count" && out[i][j].v == 0 {
				st.emptyWindows++
			}
		}
	}
	return out, st
}

// value is feature f at time t over evs, the user's events before t in
// (time, offset) order.
func value(f pitpeers.Feature, evs []event, t int64) cell {
	field := 0
	if f.Field != "" {
		fmt.Sscanf(f.Field, "v%d", &field)
	}
	if f.Agg == "last" {
		if len(evs) == 0 {
			return cell{}
		}
		return cell{evs[len(evs)-1].v[field], true}
	}
	lo := floorTo(t-f.WindowUS, f.HopUS)
	sum := new(big.Float).SetPrec(2200)
	n := 0
	var minV, maxV float64
	for _, e := range evs {
		if e.ts < lo {
			continue
		}
		x := e.v[field]
		if n == 0 || x < minV {
			minV = x
		}
		if n == 0 || x > maxV {
			maxV = x
		}
		sum.Add(sum, new(big.Float).SetFloat64(x))
		n++
	}
	total, _ := sum.Float64()
	switch {
	case f.Agg == "count":
		return cell{float64(n), true}
	case f.Agg == "sum":
		return cell{total, true}
	case n == 0:
		return cell{}
	case f.Agg == "mean":
		return cell{total / float64(n), true}
	case f.Agg == "min":
		return cell{minV, true}
	}
	return cell{maxV, true}
}

// floorTo rounds a down to a multiple of h since the epoch.
func floorTo(a, h int64) int64 {
	r := a % h
	if r < 0 {
		r += h
	}
	return a - r
}
