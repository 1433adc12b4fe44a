// Package offline is the raw-event offline store: every event of every stream,
// exactly once, in Hive-partitioned Parquet files that any engine can read.
//
// A stream's events live under
//
//	<dir>/streams/<stream>/date=YYYY-MM-DD/part-p<partition>-<firstOffset>-<lastOffset>.parquet
//
// where the date is the event time's UTC date and the offsets are the first and
// last Kafka offsets of the file's rows. A file holds the stream's fields (see
// schemas.ParquetSchema) and the meta columns _event_id, _event_time,
// _arrival_time, _partition and _offset, rows sorted by entity key, event time
// and offset, zstd-compressed, in row groups of bounded size with min/max
// statistics.
//
// A Sink buffers rows and commits them on Flush. Its commit protocol keeps the
// files, the set of event ids stored (for deduplication) and the next offset
// of every partition in agreement however the process dies:
//
//  1. each file is written under a temporary name in its final directory and
//     synced;
//  2. one Badger transaction (in <dir>/_state) records the event ids, the new
//     next offsets and the renames still to do;
//  3. the temporary files are renamed to their final names, the directories
//     synced, and the record of renames deleted.
//
// Open finishes the renames a crash interrupted after step 2 and deletes
// temporary files no transaction recorded.
//
// Compact merges a closed day's small files of one partition into large
// sorted ones (see compact.go). Its swap is recorded in the same Badger
// state before any file is renamed, so Open finishes or discards it after a
// crash, and Files never lists a row twice.
package offline
