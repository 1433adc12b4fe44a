package files

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/schemas"
)

// DefaultTimestampColumn names a spine's timestamp column when the caller
// names none.
const DefaultTimestampColumn = "timestamp"

// Column is one spine column.
type Column struct {
	Name     string
	Type     schemas.Type
	Nullable bool
}

// Spine reads the rows of a spine file one at a time. It is not safe for
// concurrent use.
type Spine interface {
	// Columns returns the columns in file order; the timestamp column has
	// type schemas.Timestamp and key columns the types of their keys.
	Columns() []Column
	// TimeIndex returns the index of the timestamp column in Columns.
	TimeIndex() int
	// Rows returns how many rows the file holds, or -1 when that is not
	// known before reading them (CSV).
	Rows() int64
	// Next fills row, which must have one element per column, with the next
	// row's values: string, int64, float64, bool, int64 µs since the Unix
	// epoch for timestamps, nil for null. It returns io.EOF after the last
	// row.
	Next(row []any) error
	// Close releases the file.
	Close() error
}

// ErrClosed is returned by Next on a closed spine.
var ErrClosed = errors.New("spine is closed")

// OpenSpine opens the spine file at path by its extension: .csv, .csv.gz
// or .parquet. timestampColumn names the timestamp column; "" means
// DefaultTimestampColumn. keyTypes maps each entity key column to its type,
// schemas.String or schemas.Int64; every one must be in the file.
func OpenSpine(path, timestampColumn string, keyTypes map[string]schemas.Type) (Spine, error) {
	if timestampColumn == "" {
		timestampColumn = DefaultTimestampColumn
	}
	for _, name := range slices.Sorted(maps.Keys(keyTypes)) {
		if t := keyTypes[name]; t != schemas.String && t != schemas.Int64 {
			return nil, fmt.Errorf("spine %s: entity key %q has type %v; keys are string or int64", path, name, t)
		}
		if name == timestampColumn {
			return nil, fmt.Errorf("spine %s: column %q is both an entity key and the timestamp column; name the timestamp column with --timestamp-column", path, name)
		}
	}
	lower := strings.ToLower(path)
	switch {
	case strings.HasSuffix(lower, ".csv"):
		return openCSV(path, false, timestampColumn, keyTypes)
	case strings.HasSuffix(lower, ".csv.gz"):
		return openCSV(path, true, timestampColumn, keyTypes)
	case strings.HasSuffix(lower, ".parquet"):
		return openParquet(path, timestampColumn, keyTypes)
	}
	return nil, fmt.Errorf("spine %s: unknown file type; give a .csv, .csv.gz or .parquet file", path)
}

// layout says where a file holds the timestamp and the keys.
type layout struct {
	timeIndex int
	keys      map[int]schemas.Type // key type by column index
}

// findColumns locates the timestamp and key columns among a file's column
// names, which must be distinct and not empty.
func findColumns(names []string, timestampColumn string, keyTypes map[string]schemas.Type) (layout, error) {
	l := layout{timeIndex: -1, keys: make(map[int]schemas.Type, len(keyTypes))}
	seen := make(map[string]bool, len(names))
	for i, name := range names {
		switch {
		case name == "":
			return l, fmt.Errorf("column %d has no name; name every column", i+1)
		case seen[name]:
			return l, fmt.Errorf("column %q appears twice; give every column a distinct name", name)
		}
		seen[name] = true
		if name == timestampColumn {
			l.timeIndex = i
		}
		if t, ok := keyTypes[name]; ok {
			l.keys[i] = t
		}
	}
	if l.timeIndex < 0 {
		return l, fmt.Errorf("timestamp column %q is missing; the file has columns %s (name the column %q or pass --timestamp-column)",
			timestampColumn, listNames(names), timestampColumn)
	}
	for _, key := range slices.Sorted(maps.Keys(keyTypes)) {
		if !seen[key] {
			return l, fmt.Errorf("entity key column %q is missing; the file has columns %s (add a column named after each entity key)",
				key, listNames(names))
		}
	}
	return l, nil
}

// listNames quotes and joins column names for an error message.
func listNames(names []string) string {
	if len(names) == 0 {
		return "(none)"
	}
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = strconv.Quote(n)
	}
	return strings.Join(quoted, ", ")
}

// timestampExample ends the message about a timestamp that does not parse.
const timestampExample = "expected RFC 3339, e.g. 2026-03-01T12:00:00Z or 2026-03-01T12:00:00.250+02:00"

// parseTimestamp parses an RFC 3339 timestamp, with or without fractional
// seconds and with any offset, into µs since the Unix epoch. A space in
// place of the T, as pandas writes, is accepted.
func parseTimestamp(s string) (int64, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil && len(s) > 10 && s[10] == ' ' {
		t, err = time.Parse(time.RFC3339Nano, s[:10]+"T"+s[11:])
	}
	if err != nil {
		return 0, fmt.Errorf("timestamp %q does not parse (%s)", s, timestampExample)
	}
	return t.UnixMicro(), nil
}

// parseIntKey parses the value of an int64 entity key.
func parseIntKey(s string) (int64, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("value %q is not an integer, but the entity key is int64; correct the value", s)
	}
	return v, nil
}

// checkRow checks that a row passed to Next has one element per column.
func checkRow(row []any, columns int) error {
	if len(row) != columns {
		return fmt.Errorf("next: row has %d elements for %d columns", len(row), columns)
	}
	return nil
}
