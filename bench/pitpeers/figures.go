package pitpeers

import (
	"time"

	"github.com/sluicehq/sluice/testkit/perf"
)

// Figure is one summary line of DESIGN.md section 10, formatted as
// Sluice's own benchmarks format theirs.
type Figure = perf.Figure

const mib = 1 << 20

// Figures returns the benchmark's summary lines: Sluice's last-value join
// against DuckDB's ASOF JOIN, its windowed join against DuckDB's range
// join, both against both, its last-value join against pandas'
// merge_asof, the peak memory, and how many values were checked.
func (r *Result) Figures() []Figure {
	s := r.Spec
	var figs []Figure
	if r.ASOF > 0 {
		figs = append(figs, Figure{Name: "pit", Value: s.SluiceLastSeconds, Unit: "s", Peer: "duckdb-asof", PeerValue: secs(r.ASOF), PeerUnit: "s"})
	}
	if r.Window > 0 {
		figs = append(figs, Figure{Name: "pit_windowed", Value: s.SluiceWindowedSeconds, Unit: "s", Peer: "duckdb-window", PeerValue: secs(r.Window), PeerUnit: "s"})
	}
	if r.ASOF > 0 && r.Window > 0 {
		figs = append(figs, Figure{Name: "pit_all", Value: s.SluiceSeconds, Unit: "s", Peer: "duckdb-asof+window", PeerValue: secs(r.ASOF + r.Window), PeerUnit: "s"})
	}
	switch {
	case r.Pandas != nil:
		figs = append(figs, Figure{Name: "pit_last_vs_pandas", Value: s.SluiceLastSeconds, Unit: "s", Peer: "pandas-merge-asof", PeerValue: secs(r.Pandas.Join), PeerUnit: "s"})
	case r.ASOF > 0:
		figs = append(figs, Figure{Name: "pit_last_vs_pandas", Value: s.SluiceLastSeconds, Unit: "s"})
	}
	figs = append(figs, Figure{Name: "pit_peak_rss", Value: float64(s.SluicePeakRSSBytes) / mib, Unit: "MiB", Peer: "duckdb", PeerValue: float64(r.DuckDBPeakRSS) / mib, PeerUnit: "MiB"})
	return append(figs, Figure{Name: "pit_values_checked", Value: float64(r.valuesChecked()), Unit: "values"})
}

// valuesChecked counts the training set's values that at least one peer
// computed and compared.
func (r *Result) valuesChecked() int64 {
	rows := map[string]int64{}
	for _, c := range r.Checks {
		for _, col := range c.Columns {
			rows[col] = max(rows[col], c.Rows)
		}
	}
	var n int64
	for _, v := range rows {
		n += v
	}
	return n
}

func secs(d time.Duration) float64 { return d.Seconds() }
