// Package pitpeers runs the peers of Sluice's point-in-time benchmark
// (`make bench NAME=pit`) on the Parquet files Sluice read: DuckDB's ASOF
// JOIN for the last-value features, a DuckDB range join for the windowed
// ones, and pandas' merge_asof for the last-value features. It times each,
// checks every value a peer computes against Sluice's training set, and
// renders the summary lines of DESIGN.md section 10.
//
// Sluice's side (`sluice bench pit --dir D`) leaves D/pit.json, which Load
// reads; Run does the rest.
package pitpeers

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Spec is pit.json: where Sluice's inputs and training set are, the
// features, and Sluice's own figures.
type Spec struct {
	Events   string    `json:"events"`  // glob of the events' Parquet files
	Spine    string    `json:"spine"`   // the spine's Parquet file
	Dataset  string    `json:"dataset"` // directory of Sluice's training set (part-*.parquet)
	Features []Feature `json:"features"`

	SluiceSeconds         float64 `json:"sluice_seconds"`          // all features
	SluiceLastSeconds     float64 `json:"sluice_last_seconds"`     // last-value features only
	SluiceWindowedSeconds float64 `json:"sluice_windowed_seconds"` // windowed features only
	SluicePeakRSSBytes    int64   `json:"sluice_peak_rss_bytes"`
}

// Feature is one column of the training set and the rule that computes it.
type Feature struct {
	Column   string `json:"column"`
	Agg      string `json:"agg"`             // last, sum, count, mean, min or max
	Field    string `json:"field,omitempty"` // empty for count
	WindowUS int64  `json:"window_us"`       // 0 for last
	HopUS    int64  `json:"hop_us"`          // 0 for last
}

// The aggregations pit.json may name.
const (
	AggLast  = "last"
	AggSum   = "sum"
	AggCount = "count"
	AggMean  = "mean"
	AggMin   = "min"
	AggMax   = "max"
)

// Windowed reports whether f aggregates over a window (every agg but last).
func (f Feature) Windowed() bool { return f.Agg != AggLast }

// Load reads and checks dir/pit.json.
func Load(dir string) (*Spec, error) {
	path := filepath.Join(dir, "pit.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the benchmark's spec: %w (run `sluice bench pit --dir %s` first)", err, dir)
	}
	var s Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &s, nil
}

// Validate checks that the spec names its files and that every feature
// is one the peers can compute.
func (s *Spec) Validate() error {
	if s.Events == "" || s.Spine == "" || s.Dataset == "" {
		return fmt.Errorf(`"events", "spine" and "dataset" must all be set`)
	}
	if len(s.Features) == 0 {
		return fmt.Errorf(`"features" is empty`)
	}
	seen := map[string]bool{}
	for _, f := range s.Features {
		if err := f.validate(); err != nil {
			return fmt.Errorf("feature %q: %w", f.Column, err)
		}
		if seen[f.Column] {
			return fmt.Errorf("feature %q: column named twice", f.Column)
		}
		seen[f.Column] = true
	}
	return nil
}

func (f Feature) validate() error {
	if f.Column == "" {
		return fmt.Errorf(`"column" is empty`)
	}
	switch strings.ToLower(f.Column) {
	case "row", "user_id", "timestamp":
		return fmt.Errorf("the column name is taken by the spine")
	}
	switch f.Agg {
	case AggLast:
		if f.WindowUS != 0 {
			return fmt.Errorf("last with a window (a ttl) is not supported by the peers")
		}
	case AggSum, AggCount, AggMean, AggMin, AggMax:
		if f.WindowUS <= 0 || f.HopUS <= 0 {
			return fmt.Errorf("%s needs a positive window_us and hop_us, got %d and %d", f.Agg, f.WindowUS, f.HopUS)
		}
	default:
		return fmt.Errorf("unknown agg %q (want last, sum, count, mean, min or max)", f.Agg)
	}
	if f.Field == "" && f.Agg != AggCount {
		return fmt.Errorf("%s needs a field", f.Agg)
	}
	return nil
}

// split returns the last-value and the windowed features, in spec order.
func (s *Spec) split() (last, windowed []Feature) {
	for _, f := range s.Features {
		if f.Windowed() {
			windowed = append(windowed, f)
		} else {
			last = append(last, f)
		}
	}
	return last, windowed
}
