// Package train builds training sets and serves them to training workers.
//
// This file set holds the on-disk format of a training set (a dataset), one
// directory that any Parquet engine can read:
//
//	DIR/part-00000.parquet   the rows, in parts of at most
//	DIR/part-00001.parquet   WriterOptions.RowsPerPart rows each
//	...
//	DIR/profile.json         per-column statistics, the default drift baseline
//	DIR/manifest.json        what the dataset is; written last
//
// Parts are zstd-compressed Parquet files with bounded row groups. Columns
// keep the order they were declared in: string as a UTF-8 BYTE_ARRAY, int64
// as INT64, float64 as DOUBLE, bool as BOOLEAN, timestamp as INT64
// TIMESTAMP(MICROS, UTC), each optional when nullable; a list column (the
// output of last_n) is a LIST whose elements are optional values of the
// column's type.
//
// A Writer takes rows one at a time (Write) or a Block of them held column by
// column (WriteBlock), which it encodes without boxing a value, spreading the
// columns over the CPUs. It writes the parts while it profiles the rows, and
// Close writes profile.json and then manifest.json, each atomically (a
// temporary file renamed into place). A directory without manifest.json is therefore an
// unfinished dataset, which ReadManifest refuses.
//
// profile.json is deterministic: the same rows written in the same order give
// the same bytes. Its shape is the Profile type; see ColumnProfile for how
// each statistic is computed with bounded memory.
package train
