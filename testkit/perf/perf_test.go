package perf

import (
	"regexp"
	"testing"
	"time"

	"github.com/sluicehq/sluice/testkit"
)

func TestFigureLine(t *testing.T) {
	for _, tc := range []struct {
		f    Figure
		want string
	}{
		{Figure{Name: "pit", Value: 2.31, Unit: "s", Peer: "duckdb-asof", PeerValue: 3.02, PeerUnit: "s"},
			"pit: 2.31 s | peer duckdb-asof: 3.02 s | ratio 0.76"},
		{Figure{Name: "ingest", Value: 151234.6, Unit: "events/s"}, "ingest: 151235 events/s"},
		{Figure{Name: "freshness_p99", Value: 0.0123, Unit: "ms"}, "freshness_p99: 0.0123 ms"},
	} {
		if got := tc.f.String(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

// line is the summary format of DESIGN.md section 10.
var line = regexp.MustCompile(`^[a-z0-9_]+: [0-9.e+-]+ \S+( \| peer \S+: [0-9.e+-]+ \S+ \| ratio [0-9.]+)?$`)

// TestBenchmarksRun runs each benchmark on a small load and checks that it
// reports positive figures in the summary format.
func TestBenchmarksRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the benchmarks on small loads")
	}
	for _, name := range Names {
		t.Run(name, func(t *testing.T) {
			events := 5000
			if name == "offline" {
				// Enough for several sink polls, so a day has files to merge.
				events = 40_000
			}
			figs, err := Run(t.Context(), name, Options{Dir: t.TempDir(), Events: events, Rate: 2000, Duration: 3 * time.Second, Bin: testkit.BuildSluice(t)})
			if err != nil {
				t.Fatal(err)
			}
			if len(figs) == 0 {
				t.Fatal("no figures")
			}
			for _, f := range figs {
				if f.Value <= 0 || !line.MatchString(f.String()) {
					t.Errorf("figure %q", f.String())
				}
			}
		})
	}
}
