package main

import (
	"context"
	"log/slog"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/connectors/clickhouse"
	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/serve"
)

// clickHouseSide sets up the ClickHouse side of the offline store for a
// node: with clickhouse.addr, that server; without, on a node that runs the
// offline role and with clickhouse.managed auto, a clickhouse-server it
// starts with its data under <data_dir>/clickhouse. It returns the job that
// connects (starting the managed server) and, on an offline node, loads the
// Parquet files under <data_dir>/offline into ClickHouse (nil when there is
// nothing to run), the SQL endpoint, and a func that stops what the job left
// running.
func clickHouseSide(c Config, offline bool, registry *featurestore.Registry, logger *slog.Logger, reg prometheus.Registerer) (
	job func(context.Context) error, sql *serve.SQL, closeFn func(), err error,
) {
	node, why, err := clickhouse.NewNode(clickhouse.NodeOptions{
		Addr:       c.ClickHouse.Addr,
		Database:   c.ClickHouse.Database,
		Managed:    c.ClickHouse.Managed,
		ServerDir:  filepath.Join(c.DataDir, "clickhouse"),
		Offline:    offline,
		OfflineDir: filepath.Join(c.DataDir, "offline"),
		Streams:    clickhouse.RegistryStreams(registry),
		Logger:     logger,
		Registerer: reg,
	})
	sqlOpts := serve.SQLOptions{Logger: logger}
	switch {
	case err != nil:
		return nil, nil, nil, err
	case node == nil:
		return nil, serve.NewSQL(nil, why, sqlOpts), func() {}, nil
	}
	closeFn = func() {
		if err := node.Close(); err != nil {
			logger.Error("stop managed clickhouse-server", "err", err)
		}
	}
	return node.Run, serve.NewSQL(node, "", sqlOpts), closeFn, nil
}
