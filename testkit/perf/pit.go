package perf

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/schemas"
)

// pitRepo is the point-in-time benchmark's view: 10 last-value and 10
// windowed features over one stream of 10 float fields.
const pitRepo = `
kind: entity
name: user
key: user_id
---
kind: stream
name: txns
entity: user
timestamp: ts
schema:
  - {name: user_id, type: string}
  - {name: v0, type: float64}
  - {name: v1, type: float64}
  - {name: v2, type: float64}
  - {name: v3, type: float64}
  - {name: v4, type: float64}
  - {name: v5, type: float64}
  - {name: v6, type: float64}
  - {name: v7, type: float64}
  - {name: v8, type: float64}
  - {name: v9, type: float64}
  - {name: ts, type: timestamp}
---
kind: feature_view
name: u
entity: user
source: txns
features:
  - {name: last_v0, field: v0, agg: last}
  - {name: last_v1, field: v1, agg: last}
  - {name: last_v2, field: v2, agg: last}
  - {name: last_v3, field: v3, agg: last}
  - {name: last_v4, field: v4, agg: last}
  - {name: last_v5, field: v5, agg: last}
  - {name: last_v6, field: v6, agg: last}
  - {name: last_v7, field: v7, agg: last}
  - {name: last_v8, field: v8, agg: last}
  - {name: last_v9, field: v9, agg: last}
  - {name: sum_v0_1h, field: v0, agg: sum, window: 1h}
  - {name: count_1h, agg: count, window: 1h}
  - {name: mean_v1_24h, field: v1, agg: mean, window: 24h}
  - {name: max_v2_24h, field: v2, agg: max, window: 24h}
  - {name: min_v3_7d, field: v3, agg: min, window: 7d}
  - {name: sum_v4_7d, field: v4, agg: sum, window: 7d}
  - {name: count_24h, agg: count, window: 24h}
  - {name: mean_v5_1h, field: v5, agg: mean, window: 1h}
  - {name: max_v6_7d, field: v6, agg: max, window: 7d}
  - {name: sum_v7_24h, field: v7, agg: sum, window: 24h}
`

// pitSpan is how much time the generated history covers.
const pitSpan = 30 * 24 * time.Hour

// PIT builds a training set with `sluice dataset build` over a generated
// offline store (default 10M events of 100k users over 30 days, a spine of
// 1M rows): all 20 features, then the 10 last-value and the 10 windowed
// ones apart, each in its own process, whose peak RSS it reports. It
// leaves pit.json in the directory for the peers of the bench module.
func PIT(ctx context.Context, o Options) ([]Figure, error) {
	events := o.Events
	if events == 0 {
		events = 10_000_000
	}
	users, rows := max(1, events/100), max(1, events/10)
	dir, cleanup, err := o.scratch()
	if err != nil {
		return nil, err
	}
	defer cleanup()
	repo, err := featurestore.Parse(map[string][]byte{"pit.yaml": []byte(pitRepo)})
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "repo"), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "repo", "pit.yaml"), []byte(pitRepo), 0o644); err != nil {
		return nil, err
	}
	end := time.Now().UTC().Truncate(time.Hour)
	start := end.Add(-pitSpan)
	o.progress("pit: writing %d events of %d users over %s to the offline store", events, users, pitSpan)
	if err := writeHistory(dir, repo.Streams["txns"].Schema, events, users, start); err != nil {
		return nil, err
	}
	o.progress("pit: writing a spine of %d rows", rows)
	if err := writeSpine(filepath.Join(dir, "spine.parquet"), rows, users, start); err != nil {
		return nil, err
	}
	var last, windowed []string
	for _, f := range repo.Views["u"].Features {
		if f.Window > 0 {
			windowed = append(windowed, "u:"+f.Name)
		} else {
			last = append(last, "u:"+f.Name)
		}
	}
	runs := []struct {
		name, out string
		features  []string
	}{{"all", "out", []string{"u:*"}}, {"last", "out-last", last}, {"windowed", "out-windowed", windowed}}
	secs := map[string]float64{}
	var peak int64
	for _, r := range runs {
		o.progress("pit: joining %s features", r.name)
		s, rss, err := runBuild(ctx, o.Bin, dir, r.out, r.features)
		if err != nil {
			return nil, err
		}
		secs[r.name], peak = s, max(peak, rss)
	}
	if err := writePITSpec(dir, repo, secs, peak); err != nil {
		return nil, err
	}
	// pit is the last-value part, which DESIGN.md section 10 holds against
	// DuckDB's ASOF JOIN; the bench module prints the peers beside these.
	return []Figure{
		{Name: "pit", Value: secs["last"], Unit: "s"},
		{Name: "pit_windowed", Value: secs["windowed"], Unit: "s"},
		{Name: "pit_all", Value: secs["all"], Unit: "s"},
		{Name: "pit_peak_rss", Value: float64(peak) / (1 << 20), Unit: "MiB"},
	}, nil
}

// runBuild runs `sluice dataset build` (this very binary) and returns its
// wall time and peak RSS.
func runBuild(ctx context.Context, bin, dir, out string, features []string) (float64, int64, error) {
	if bin == "" {
		var err error
		if bin, err = os.Executable(); err != nil {
			return 0, 0, err
		}
	}
	os.RemoveAll(filepath.Join(dir, out))
	cmd := exec.CommandContext(ctx, bin, "dataset", "build", "--data-dir", dir, "--repo", filepath.Join(dir, "repo"),
		"--server", "http://127.0.0.1:1", "--spine", filepath.Join(dir, "spine.parquet"),
		"--features", strings.Join(features, ","), "--out", filepath.Join(dir, out))
	startAt := time.Now()
	msg, err := cmd.CombinedOutput()
	wall := time.Since(startAt).Seconds()
	if err != nil {
		return 0, 0, fmt.Errorf("sluice dataset build: %w\n%s", err, msg)
	}
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss * 1024 // kilobytes on Linux
	}
	return wall, rss, nil
}

// writeHistory writes the offline store's files directly, day by day: the
// events of a day in time order, offsets rising per partition, each
// (day, partition) one file sorted by (user, time), as the sink writes.
func writeHistory(dir string, sc *schemas.Schema, events, users int, start time.Time) error {
	r := rand.New(rand.NewPCG(1, 2))
	days := int(pitSpan / (24 * time.Hour))
	perDay := events / days
	offsets := make([]int64, 8)
	for d := range days {
		n := perDay
		if d == days-1 {
			n = events - perDay*(days-1)
		}
		day := start.Add(time.Duration(d) * 24 * time.Hour)
		times := make([]int64, n)
		for i := range times {
			times[i] = day.UnixMicro() + r.Int64N(int64(24*time.Hour/time.Microsecond))
		}
		slices.Sort(times)
		parts := make([][]pitEvent, 8)
		for _, ts := range times {
			u := r.IntN(users)
			p := u % 8
			ev := pitEvent{user: userName(u), ts: ts, offset: offsets[p], partition: int32(p)}
			for k := range ev.v {
				ev.v[k] = float64(r.IntN(1_000_000)) / 100
			}
			offsets[p]++
			parts[p] = append(parts[p], ev)
		}
		for p, evs := range parts {
			if err := writeDayFile(dir, sc, day, int32(p), evs); err != nil {
				return err
			}
		}
	}
	return nil
}

type pitEvent struct {
	user      string
	ts        int64
	v         [10]float64
	partition int32
	offset    int64
}

func userName(u int) string { return fmt.Sprintf("u%07d", u) }

func writeDayFile(dir string, sc *schemas.Schema, day time.Time, p int32, evs []pitEvent) error {
	if len(evs) == 0 {
		return nil
	}
	slices.SortFunc(evs, func(a, b pitEvent) int {
		if c := strings.Compare(a.user, b.user); c != 0 {
			return c
		}
		return int(a.ts - b.ts)
	})
	lo, hi := evs[0].offset, evs[0].offset
	for _, e := range evs {
		lo, hi = min(lo, e.offset), max(hi, e.offset)
	}
	path := filepath.Join(dir, "offline", "streams", "txns", "date="+day.Format("2006-01-02"),
		fmt.Sprintf("part-p%d-%d-%d.parquet", p, lo, hi))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := parquet.NewWriter(f, schemas.ParquetSchema(sc), parquet.Compression(&parquet.Zstd), parquet.MaxRowsPerRowGroup(128<<10))
	var row parquet.Row
	values := make([]any, 12)
	for _, e := range evs {
		values[0], values[11] = e.user, e.ts
		for k, v := range e.v {
			values[1+k] = v
		}
		row, err = schemas.AppendParquetRow(row[:0], sc, values, schemas.ParquetMeta{
			EventID: fmt.Sprintf("p%d-%d", e.partition, e.offset), EventTime: e.ts, ArrivalTime: e.ts,
			Partition: e.partition, Offset: e.offset,
		})
		if err != nil {
			return err
		}
		if _, err := w.WriteRows([]parquet.Row{row}); err != nil {
			return err
		}
	}
	if err := w.Close(); err != nil {
		return err
	}
	return f.Close()
}

// spineRow is one row of the benchmark's spine.
type spineRow struct {
	UserID    string `parquet:"user_id"`
	Timestamp int64  `parquet:"timestamp,timestamp(microsecond)"`
	Row       int64  `parquet:"row"`
}

func writeSpine(path string, rows, users int, start time.Time) error {
	r := rand.New(rand.NewPCG(3, 4))
	out := make([]spineRow, rows)
	for i := range out {
		out[i] = spineRow{
			UserID:    userName(r.IntN(users)),
			Timestamp: start.UnixMicro() + r.Int64N(int64((pitSpan+time.Hour)/time.Microsecond)),
			Row:       int64(i),
		}
	}
	return parquet.WriteFile(path, out, parquet.Compression(&parquet.Zstd))
}

// writePITSpec writes pit.json: where the data is, the features as the
// peers need them, and Sluice's figures.
func writePITSpec(dir string, repo *featurestore.Repo, secs map[string]float64, peak int64) error {
	type feature struct {
		Column   string `json:"column"`
		Agg      string `json:"agg"`
		Field    string `json:"field,omitempty"`
		WindowUS int64  `json:"window_us"`
		HopUS    int64  `json:"hop_us"`
	}
	cv, err := featurestore.Compile(repo, "u")
	if err != nil {
		return err
	}
	var feats []feature
	for i, f := range cv.View.Features {
		s := cv.Specs[i]
		feats = append(feats, feature{Column: "u__" + f.Name, Agg: string(f.Agg), Field: f.Field, WindowUS: s.Window, HopUS: s.Hop})
	}
	spec := map[string]any{
		"events":                  filepath.Join(dir, "offline", "streams", "txns", "date=*", "part-*.parquet"),
		"spine":                   filepath.Join(dir, "spine.parquet"),
		"dataset":                 filepath.Join(dir, "out"),
		"features":                feats,
		"sluice_seconds":          secs["all"],
		"sluice_last_seconds":     secs["last"],
		"sluice_windowed_seconds": secs["windowed"],
		"sluice_peak_rss_bytes":   peak,
	}
	b, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "pit.json"), b, 0o644)
}
