// Command pitpeers runs the peers of Sluice's point-in-time benchmark on
// the directory `sluice bench pit --dir D` left, checks their values
// against Sluice's training set and prints the summary lines:
//
//	cd bench && go run ./cmd/pitpeers D
//
// Summary lines go to standard output, progress, skipped peers and
// mismatches to standard error. It exits 1 when a peer's value differs
// from Sluice's, 2 on any other failure.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/sluicehq/sluice/bench/pitpeers"
)

func main() {
	python := flag.String("python", "", "interpreter of the pandas peer (default: python3, else /usr/bin/python3, whichever imports pandas)")
	noPandas := flag.Bool("no-pandas", false, "skip the pandas peer")
	work := flag.String("work", "", "where the pandas peer's CSV files go (default: the system's temporary directory)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: pitpeers [flags] DIR\n\nDIR holds pit.json, which `sluice bench pit --dir DIR` writes.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	code, err := run(ctx, flag.Arg(0), pitpeers.Options{Python: *python, NoPandas: *noPandas, Work: *work, Progress: os.Stderr})
	if err != nil {
		fmt.Fprintln(os.Stderr, "pitpeers:", err)
	}
	os.Exit(code)
}

func run(ctx context.Context, dir string, o pitpeers.Options) (int, error) {
	spec, err := pitpeers.Load(dir)
	if err != nil {
		return 2, err
	}
	r, err := pitpeers.Run(ctx, spec, o)
	if err != nil {
		return 2, err
	}
	if r.PandasSkipped != "" {
		fmt.Fprintf(os.Stderr, "pitpeers: skipped peer pandas-merge-asof: %s\n", r.PandasSkipped)
	}
	if p := r.Pandas; p != nil {
		fmt.Fprintf(os.Stderr, "pitpeers: pandas-merge-asof: DuckDB wrote CSV in %.2f s, pandas loaded it in %.2f s (neither in the figure), sorted and joined in %.2f s; peak RSS %d MiB\n",
			p.Export.Seconds(), p.Load.Seconds(), p.Join.Seconds(), p.PeakRSS>>20)
	}
	for _, c := range r.Checks {
		fmt.Fprintf(os.Stderr, "pitpeers: %s: %d rows x %d columns = %d values compared, %d mismatches",
			c.Peer, c.Rows, len(c.Columns), c.Values(), c.Mismatches)
		if c.OnlySluice > 0 || c.OnlyPeer > 0 {
			fmt.Fprintf(os.Stderr, "; %d rows only in Sluice's training set, %d only in the peer's result", c.OnlySluice, c.OnlyPeer)
		}
		fmt.Fprintln(os.Stderr)
		for _, m := range c.First {
			fmt.Fprintf(os.Stderr, "pitpeers:   %s: %s\n", c.Peer, m)
		}
	}
	for _, f := range r.Figures() {
		fmt.Println(f)
	}
	if !r.OK() {
		return 1, fmt.Errorf("the peers' values differ from Sluice's training set %s", spec.Dataset)
	}
	return 0, nil
}
