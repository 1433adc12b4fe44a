package pitpeers

import (
	"fmt"
	"time"
)

// Figure is one summary line of DESIGN.md section 10:
// `NAME: <value> <unit> | peer <peer>: <value> <unit> | ratio <sluice/peer>`,
// the peer part omitted when there is none.
type Figure struct {
	Name      string
	Value     float64
	Unit      string
	Peer      string // "" when there is none
	PeerValue float64
}

func (f Figure) String() string {
	s := fmt.Sprintf("%s: %s %s", f.Name, num(f.Value), f.Unit)
	if f.Peer != "" {
		s += fmt.Sprintf(" | peer %s: %s %s", f.Peer, num(f.PeerValue), f.Unit)
		if f.PeerValue != 0 {
			s += fmt.Sprintf(" | ratio %.2f", f.Value/f.PeerValue)
		}
	}
	return s
}

// num renders a value as Sluice's own summary lines do.
func num(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

const mib = 1 << 20

// Figures returns the benchmark's summary lines: Sluice's last-value join
// against DuckDB's ASOF JOIN, its windowed join against DuckDB's range
// join, both against both, its last-value join against pandas'
// merge_asof, the peak memory, and how many values were checked.
func (r *Result) Figures() []Figure {
	s := r.Spec
	var figs []Figure
	if r.ASOF > 0 {
		figs = append(figs, Figure{Name: "pit", Value: s.SluiceLastSeconds, Unit: "s", Peer: "duckdb-asof", PeerValue: secs(r.ASOF)})
	}
	if r.Window > 0 {
		figs = append(figs, Figure{Name: "pit_windowed", Value: s.SluiceWindowedSeconds, Unit: "s", Peer: "duckdb-window", PeerValue: secs(r.Window)})
	}
	if r.ASOF > 0 && r.Window > 0 {
		figs = append(figs, Figure{Name: "pit_all", Value: s.SluiceSeconds, Unit: "s", Peer: "duckdb-asof+window", PeerValue: secs(r.ASOF + r.Window)})
	}
	switch {
	case r.Pandas != nil:
		figs = append(figs, Figure{Name: "pit_last_vs_pandas", Value: s.SluiceLastSeconds, Unit: "s", Peer: "pandas-merge-asof", PeerValue: secs(r.Pandas.Join)})
	case r.ASOF > 0:
		figs = append(figs, Figure{Name: "pit_last_vs_pandas", Value: s.SluiceLastSeconds, Unit: "s"})
	}
	figs = append(figs, Figure{Name: "pit_peak_rss", Value: float64(s.SluicePeakRSSBytes) / mib, Unit: "MiB", Peer: "duckdb", PeerValue: float64(r.DuckDBPeakRSS) / mib})
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
