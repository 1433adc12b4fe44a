package clickhouse_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/sluicehq/sluice/connectors/clickhouse"
	"github.com/sluicehq/sluice/schemas"
)

// Load an offline store into ClickHouse, then query it.
func Example() {
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	c, err := clickhouse.Open(ctx, "127.0.0.1:9000", "sluice", logger)
	if err != nil {
		panic(err)
	}
	defer c.Close()

	streams := func() []*schemas.Schema { return []*schemas.Schema{txnSchema()} }
	loader := clickhouse.NewLoader(c, "data/offline", streams, clickhouse.LoaderOptions{Logger: logger})
	if _, err := loader.Sync(ctx); err != nil { // Run(ctx) keeps loading new files
		panic(err)
	}

	res, err := c.Query(ctx, "SELECT count() FROM sluice.transactions", clickhouse.QueryOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Rows[0][0])
}

// Run a clickhouse-server for a node, on free loopback ports.
func ExampleStartServer() {
	srv, err := clickhouse.StartServer(context.Background(), clickhouse.ServerOptions{Dir: "data/clickhouse"})
	if err != nil {
		panic(err) // clickhouse.ErrNotInstalled when there is no server program
	}
	defer srv.Stop()
	fmt.Println("native protocol on", srv.Addr(), "HTTP on", srv.HTTPAddr())
}
