package perf

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/sluicehq/sluice/connectors/clickhouse"
	"github.com/sluicehq/sluice/featurestore/offline"
	"github.com/sluicehq/sluice/schemas"
	"github.com/sluicehq/sluice/stream"
)

// Offline measures the offline store on the example stream: the Parquet
// sink from Kafka to committed files, the ClickHouse loader from those files
// into a clickhouse-server it starts (when one is installed), and the
// compaction of the closed days they cover.
func Offline(ctx context.Context, o Options) ([]Figure, error) {
	n := o.Events
	if n == 0 {
		n = 500_000
	}
	dir, c, closeAll, err := setup(ctx, &o)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	o.progress("offline: producing %d events over the last week", n)
	if err := produceFraud(ctx, c.producer, n, 100_000); err != nil {
		return nil, err
	}

	offDir := filepath.Join(dir, "offline")
	sink, err := offline.Open(offDir, offline.Options{})
	if err != nil {
		return nil, err
	}
	defer sink.Close()
	o.progress("offline: writing them to Parquet with the offline sink")
	// About 25 flushes leave many files per day for compaction to merge.
	job := stream.NewOfflineSink(c.kc, c.registry, sink, c.producer, stream.SinkOptions{FlushRows: max(n/25, 100), CompactEvery: time.Hour})
	took, err := catchUp(ctx, job.Run, func(ctx context.Context) (int64, error) { return job.Lag(ctx, c.registry) })
	if err != nil {
		return nil, err
	}
	figs := []Figure{{Name: "offline_parquet", Value: float64(n) / took.Seconds(), Unit: "events/s"}}

	chFig, err := loadClickHouse(ctx, o, dir, offDir, c.registry.Repo().Streams["transactions"].Schema)
	switch {
	case errors.Is(err, clickhouse.ErrNotInstalled):
		o.progress("offline: clickhouse-server not installed; skipping the ClickHouse figure")
	case err != nil:
		return nil, err
	default:
		figs = append(figs, chFig)
	}

	o.progress("offline: compacting the closed days")
	sink.AddSchema(c.registry.Repo().Streams["transactions"].Schema)
	stats, err := sink.CompactClosedDays(ctx, time.Now().Add(48*time.Hour))
	if err != nil {
		return nil, err
	}
	if stats.Rows == 0 {
		return nil, fmt.Errorf("offline: compaction found nothing to merge")
	}
	figs = append(figs, Figure{Name: "offline_compaction", Value: float64(stats.Rows) / stats.Duration.Seconds(), Unit: "rows/s"})
	return figs, nil
}

// loadClickHouse starts a clickhouse-server and measures the loader copying
// the offline store into it.
func loadClickHouse(ctx context.Context, o Options, dir, offDir string, schema *schemas.Schema) (Figure, error) {
	srv, err := clickhouse.StartServer(ctx, clickhouse.ServerOptions{Dir: filepath.Join(dir, "clickhouse")})
	if err != nil {
		return Figure{}, err
	}
	defer srv.Stop()
	cl, err := clickhouse.Open(ctx, srv.Addr(), "sluice", nil)
	if err != nil {
		return Figure{}, err
	}
	defer cl.Close()
	o.progress("offline: loading the Parquet files into ClickHouse")
	loader := clickhouse.NewLoader(cl, offDir, func() []*schemas.Schema { return []*schemas.Schema{schema} }, clickhouse.LoaderOptions{})
	start := time.Now()
	rows, err := loader.Sync(ctx)
	if err != nil {
		return Figure{}, err
	}
	return Figure{Name: "offline_clickhouse", Value: float64(rows) / time.Since(start).Seconds(), Unit: "events/s"}, nil
}
