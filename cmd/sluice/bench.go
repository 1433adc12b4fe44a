package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/testkit/perf"
)

func benchCmd() *cobra.Command {
	var o perf.Options
	cmd := &cobra.Command{
		Use:   "bench NAME",
		Short: "Run a benchmark of DESIGN.md section 10 (stream, freshness, ingest, offline, pit, memory)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Progress = cmd.ErrOrStderr()
			figs, err := perf.Run(cmd.Context(), args[0], o)
			if err != nil {
				return err
			}
			for _, f := range figs {
				fmt.Fprintln(cmd.OutOrStdout(), f)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&o.Events, "events", 0, "events to use (0: the benchmark's default)")
	fl.IntVar(&o.Rate, "rate", 0, "events per second for steady-load benchmarks (freshness: default 50000)")
	fl.DurationVar(&o.Duration, "duration", 0, "how long steady-load benchmarks run")
	fl.StringVar(&o.Dir, "dir", "", "scratch directory (default: a temporary one, removed after)")
	return cmd
}
