// Package files reads the files a user hands Sluice. Its first reader is
// for training-set spines: OpenSpine streams the rows of a CSV or Parquet
// file that lists, for each training example, the entity keys, the time at
// which features are looked up and any labels that pass through to the
// training set.
//
// A spine has one column per entity key, named as the key; a timestamp
// column, "timestamp" unless the caller names another; and any other
// columns (labels). Rows come one at a time and memory stays bounded
// whatever the size of the file: a CSV spine holds at most its first 1001
// data rows at once, to infer the types of its labels, and a Parquet spine
// decodes one row group at a time, a few hundred rows per read.
//
// Values are those of schemas.Event: string, int64, float64, bool, and
// timestamps as int64 µs since the Unix epoch, UTC; nil is null. Key and
// timestamp values are never null: a row without them is an error.
//
// # CSV
//
// A header row names the columns. Keys take the entity's key types; the
// timestamp is RFC 3339 (2026-03-01T12:00:00Z, 2026-03-01T14:00:00.25+02:00;
// a space in place of the T, as pandas writes, is accepted). Each label
// column's type is inferred from the first 1000 data rows: int64 if every
// value parses as an integer, else float64 if every value parses as a
// number, else bool if every value is true or false (in any case), else
// string. An empty cell is null. A column with an empty cell in those rows
// is nullable; so is every label column of a file longer than them, since a
// later cell may be empty. A later value that does not parse as its
// column's type is an error naming the line. A file named .csv.gz is read
// through gzip.
//
// # Parquet
//
// Columns must be flat. Strings (BYTE_ARRAY, STRING, ENUM, JSON, UUID) read
// as string; integers (INT32, INT64 and the integer logical types) as
// int64; FLOAT, DOUBLE and DECIMAL as float64; BOOLEAN as bool; TIMESTAMP
// of any unit (one not adjusted to UTC, as pandas writes naive times, is
// read as UTC), DATE (midnight UTC) and the legacy INT96 as timestamps.
// Optional columns are nullable. A key column may be an integer column for
// a string key (the value is written in decimal) or a string column for an
// int64 key (each value must be an integer). The timestamp column is a timestamp, an INT64
// of µs since the Unix epoch, or an RFC 3339 string.
package files
