package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/featurestore/window"
	"github.com/sluicehq/sluice/serve"
	"github.com/sluicehq/sluice/train"
)

func datasetCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "dataset", Short: "Build training sets"}
	cmd.AddCommand(datasetBuildCmd(g))
	return cmd
}

func datasetBuildCmd(g *globals) *cobra.Command {
	var o train.BuildOptions
	var features, mode, repoDir string
	var memoryMiB int64
	cmd := &cobra.Command{
		Use:   "build (--spine FILE | --spine-stream STREAM --label FIELD) (--features view:feature,...|--service NAME) --out DIR",
		Short: "Join a spine with point-in-time-correct feature values from the offline store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.load()
			if err != nil {
				return err
			}
			if o.Out == "" {
				return fmt.Errorf("give --out DIR, a new or empty directory for the dataset")
			}
			if o.Mode, err = window.ParseMode(mode); err != nil {
				return fmt.Errorf("--mode: %w", err)
			}
			if features != "" {
				o.Features = strings.Split(features, ",")
			}
			client := &serve.Client{URL: g.server}
			if o.Repo, err = datasetRepo(cmd.Context(), client, repoDir); err != nil {
				return err
			}
			o.OfflineDir = filepath.Join(c.DataDir, "offline")
			if memoryMiB != 0 {
				o.MemoryLimit = memoryMiB << 20
			}
			stop := progress(cmd.ErrOrStderr(), &o)
			m, err := train.Build(cmd.Context(), o)
			stop()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "dataset %s: %d rows, %d features, %d files in %s\n", m.ID, m.Rows, len(m.Features), len(m.Files), o.Out)
			body, err := json.Marshal(m)
			if err != nil {
				return err
			}
			if _, err := client.RegisterDataset(cmd.Context(), body); err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "not registered with a node (%v); %s/manifest.json describes it\n", err, o.Out)
				return nil
			}
			fmt.Fprintf(out, "registered: GET %s/v1/datasets/%s\n", strings.TrimRight(g.server, "/"), m.ID)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.SpineFile, "spine", "", "spine file (.csv, .csv.gz or .parquet): entity key columns, a timestamp column, labels")
	fl.StringVar(&o.TimestampColumn, "timestamp-column", "", "the spine file's timestamp column (default \"timestamp\")")
	fl.StringVar(&o.SpineStream, "spine-stream", "", "use every event of this stream as a row at its own event time")
	fl.StringVar(&o.Label, "label", "", "with --spine-stream: the field to keep as the label")
	fl.StringVar(&features, "features", "", "comma-separated view:feature names (view:* for all of a view)")
	fl.StringVar(&o.Service, "service", "", "feature service name")
	fl.StringVar(&mode, "mode", "event_time", "event_time, or as_served (only what had arrived by each row's time)")
	fl.StringVar(&o.Out, "out", "", "directory to write the dataset to")
	fl.StringVar(&repoDir, "repo", "", "read definitions from this feature repository instead of the node's registry")
	fl.IntVar(&o.Workers, "workers", 0, "entities evaluated in parallel (default: the CPUs)")
	fl.Int64Var(&memoryMiB, "memory-limit", 0, "MiB of history to hold in memory before spilling to --temp-dir (default 2048; -1: no limit)")
	fl.StringVar(&o.TempDir, "temp-dir", "", "directory for spilled history (default: the system's temporary directory)")
	fl.IntVar(&o.SpineRows, "spine-rows", 0, fmt.Sprintf("spine rows joined at once (default %d); a longer spine is joined in runs, each reading the history again", train.DefaultSpineRows))
	return cmd
}

// datasetRepo returns the definitions: from a local repository, else from
// the node.
func datasetRepo(ctx context.Context, client *serve.Client, dir string) (*featurestore.Repo, error) {
	if dir == "" {
		return client.Registry(ctx)
	}
	files, err := readRepoFiles(dir)
	if err != nil {
		return nil, err
	}
	raw := map[string][]byte{}
	for name, text := range files {
		raw[name] = []byte(text)
	}
	return featurestore.Parse(raw)
}

// progress prints the build's progress on one line every half second
// until stop is called.
func progress(w io.Writer, o *train.BuildOptions) (stop func()) {
	var mu sync.Mutex
	var history, rows int64
	o.Progress = func(h, r int64) {
		mu.Lock()
		history, rows = h, r
		mu.Unlock()
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		start := time.Now()
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		show := func() {
			mu.Lock()
			fmt.Fprintf(w, "\rhistory %d rows read, spine %d rows joined, %s", history, rows, time.Since(start).Round(100*time.Millisecond))
			mu.Unlock()
		}
		for {
			select {
			case <-done:
				show()
				fmt.Fprintln(w)
				return
			case <-tick.C:
				show()
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
