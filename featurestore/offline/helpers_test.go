package offline

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluicehq/sluice/schemas"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// day0 is midnight UTC of the first day test events happen on.
var day0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// at returns µs since the epoch of day0 plus d.
func at(d time.Duration) int64 { return day0.Add(d).UnixMicro() }

// txnSchema is a stream with every field type, nullable and not.
func txnSchema() *schemas.Schema {
	return &schemas.Schema{
		Stream:  "txns",
		Version: 1,
		Fields: []schemas.Field{
			{Name: "user_id", Type: schemas.String},
			{Name: "amount", Type: schemas.Float64},
			{Name: "qty", Type: schemas.Int64},
			{Name: "is_fraud", Type: schemas.Bool, Nullable: true},
			{Name: "country", Type: schemas.String, Nullable: true},
			{Name: "ts", Type: schemas.Timestamp},
			{Name: "seen", Type: schemas.Timestamp, Nullable: true},
		},
		TimeField: "ts",
		KeyFields: []string{"user_id"},
	}
}

// txnRow returns a row of txnSchema with the given key, event time and
// place; its event id is "<partition>/<offset>".
func txnRow(user string, eventTime int64, partition int32, offset int64) Row {
	return Row{
		Values:    []any{user, float64(offset) + 0.5, offset * 10, offset%2 == 0, "NL", eventTime, nil},
		Key:       user,
		EventID:   eventID(partition, offset),
		EventTime: eventTime,
		Arrival:   eventTime + 1000,
		Partition: partition,
		Offset:    offset,
	}
}

func eventID(partition int32, offset int64) string {
	return fmt.Sprintf("e%d-%d", partition, offset)
}

func openSink(t *testing.T, dir string, opts Options) *Sink {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func flush(t *testing.T, s *Sink) {
	t.Helper()
	if err := s.Flush(context.Background()); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

func addAll(t *testing.T, s *Sink, schema *schemas.Schema, rows ...Row) {
	t.Helper()
	for _, r := range rows {
		if !s.Add(schema, r) {
			t.Fatalf("row %s dropped as a duplicate", r.EventID)
		}
	}
}

// storeFiles lists every file under the store's streams directory, relative
// to dir, temporary ones included.
func storeFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(dir, streamsDir), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, path)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// eventIDs returns the _event_id of each row read back.
func eventIDs(rows []map[string]any) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i], _ = r["_event_id"].(string)
	}
	return out
}

func readStream(t *testing.T, dir, stream string) []map[string]any {
	t.Helper()
	rows, err := ReadStream(dir, stream)
	if err != nil {
		t.Fatalf("read stream %s: %v", stream, err)
	}
	return rows
}

// isTemp reports whether a path names a temporary file.
func isTemp(path string) bool { return strings.HasPrefix(filepath.Base(path), tempPrefix) }
