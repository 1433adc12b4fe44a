// Package clickhouse is the ClickHouse side of Sluice's offline store: one
// table per stream, filled from the offline store's Parquet files, for SQL.
//
// # Tables
//
// EnsureTable creates database.stream (database sluice by default) with the
// stream's fields, then the meta columns of the Parquet files:
//
//	<fields...>     String, Int64, Float64, Bool, timestamp; Nullable(T) when nullable
//	_event_id       String
//	_event_time     timestamp
//	_arrival_time   timestamp
//	_partition      Int32
//	_offset         Int64
//
//	ENGINE = ReplacingMergeTree
//	PARTITION BY month of _event_time
//	ORDER BY (entity key fields..., _event_time, _event_id)
//
// Types follow the server's version (Open detects it with SELECT version()):
//
//	                 20.5 and later          before (Debian's 18.16)
//	timestamp        DateTime64(6, 'UTC')    Int64, microseconds since the Unix epoch, UTC
//	bool (21.12+)    Bool                    UInt8, 0 or 1
//
// The column names are the same either way; on old servers a timestamp reads
// as a number, toDateTime(intDiv(ts, 1000000)) turns it into a time. A table
// keeps the types it was created with when the server is upgraded.
//
// When a stream's schema gains fields, EnsureTable adds their columns with
// their defaults (rows loaded before read the default, or NULL); a field
// widened from int64 to float64 becomes Float64; a field made nullable, or
// dropped, becomes Nullable.
//
// # Exactly once without FINAL
//
// A Loader copies the rows of the offline store's committed Parquet files,
// which are already unique by event id, into the tables. It inserts each
// Kafka partition's rows of one day in offset order, in blocks that fall in
// one partition of the table, which ClickHouse writes atomically. So the
// table holds, per Kafka partition and day, exactly the rows up to its
// largest offset there; the loader reads those offsets back after a restart
// or an error and inserts only rows above them. A crash at any point —
// of Sluice or of ClickHouse — re-inserts nothing and loses nothing, and
// SELECT count() is exact without FINAL. The ReplacingMergeTree engine is a
// second line of defence for rows inserted by other means.
//
// # Queries and servers
//
// Client.Query runs SQL read-only, for POST /v1/sql. StartServer runs a
// clickhouse-server on loopback with its data in a directory, for nodes
// without a configured ClickHouse and for tests.
//
// The client speaks ClickHouse's native protocol (clickhouse-go), which
// works with 18.16 when an INSERT names its columns, as Insert does; the
// driver's HTTP mode does not, as it sends a setting 18.16 does not know.
//
// Node is the ClickHouse side of a Sluice node: it picks the configured
// server or starts and supervises a managed one, runs the Loader, and
// answers SQL for POST /v1/sql.
package clickhouse
