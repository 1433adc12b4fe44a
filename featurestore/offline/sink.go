package offline

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/dgraph-io/badger/v4"
	"github.com/parquet-go/parquet-go"

	"github.com/sluicehq/sluice/schemas"
)

// Row is one event bound for the offline store.
type Row struct {
	Values    []any  // one per schema field, Go types as in schemas.Event
	Key       string // canonical entity key, the first sort key of a file
	EventID   string
	EventTime int64 // µs since the Unix epoch, UTC
	Arrival   int64 // µs since the Unix epoch, UTC (the Kafka record timestamp)
	Partition int32
	Offset    int64
	// Worker is which of a scan's workers read the row, from 0 to
	// HistoryOptions.Workers-1: a callback called from several goroutines
	// at once may keep state per worker, unshared, indexed by it.
	Worker int
}

// Defaults of Options.
const (
	DefaultRowGroupRows = 128 << 10
	DefaultCommitRows   = 64 << 10
)

// Options configure a Sink. The zero value is usable.
type Options struct {
	// RowGroupRows bounds the rows of one Parquet row group
	// (default DefaultRowGroupRows).
	RowGroupRows int
	// CommitRows bounds the rows of one commit (default DefaultCommitRows):
	// Flush commits a larger buffer in several commits, each atomic, which
	// bounds the size of one Badger transaction.
	CommitRows int
	// Logger receives the sink's logs (default: discarded).
	Logger *slog.Logger
	// Compact configures Compact and CompactClosedDays.
	Compact CompactOptions

	// crash, when set, is asked at each named point of a commit whether the
	// process dies there; tests use it to stop a commit half-way.
	crash func(point string) bool
	// memTableSize, when set, overrides Badger's, which bounds the size of
	// one transaction; tests use it to make transactions overflow.
	memTableSize int64
}

// Validate reports a setting that is out of range.
func (o *Options) Validate() error {
	if o.RowGroupRows < 0 {
		return fmt.Errorf("offline store: RowGroupRows is %d; use a positive number or 0 for the default", o.RowGroupRows)
	}
	if o.CommitRows < 0 {
		return fmt.Errorf("offline store: CommitRows is %d; use a positive number or 0 for the default", o.CommitRows)
	}
	return o.Compact.validate()
}

func (o Options) withDefaults() Options {
	o.RowGroupRows = cmp.Or(o.RowGroupRows, DefaultRowGroupRows)
	o.CommitRows = cmp.Or(o.CommitRows, DefaultCommitRows)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// ErrClosed is returned by a Sink's methods after Close.
var ErrClosed = errors.New("offline store: sink closed")

// partKey names one partition of one stream.
type partKey struct {
	stream    string
	partition int32
}

// pendingRow is a buffered row and the schema it was added with.
type pendingRow struct {
	schema *schemas.Schema
	Row
}

// partBuf is what a partition has buffered since its last commit.
type partBuf struct {
	rows []pendingRow
	next int64 // the next offset after every row added and offset noted
}

// Sink writes rows to the offline store. It is safe for concurrent use; Add
// and Note wait while a Flush writes.
type Sink struct {
	dir  string
	opts Options
	log  *slog.Logger
	db   *badger.DB

	compactMu sync.Mutex // one compaction at a time; taken before mu
	// swapMu is held to write while a compaction swaps files, and to read
	// while History scans; taken after compactMu and before mu.
	swapMu sync.RWMutex

	mu             sync.Mutex
	closed         bool
	crashed        bool // a test stopped a commit as a crash would
	pendingRenames bool // a commit's renames failed; the next Flush retries them
	schemas        map[string]*schemas.Schema
	parquet        map[string]fileSchema // per stream, for its newest schema
	parts          map[partKey]*partBuf
	ids            map[string]map[string]struct{} // buffered event ids per stream
	committed      map[partKey]int64
	buffered       int
	scratch        parquet.Row
}

// Open opens the offline store under dir, creating it if needed, and
// recovers from any crash: it finishes a commit interrupted after its Badger
// transaction and deletes files of commits that never happened.
func Open(dir string, opts Options) (*Sink, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	if err := os.MkdirAll(filepath.Join(dir, streamsDir), 0o755); err != nil {
		return nil, fmt.Errorf("open offline store: %w", err)
	}
	log := opts.Logger.With("component", "offline")
	bopts := badger.DefaultOptions(filepath.Join(dir, stateDir)).
		WithSyncWrites(true).
		WithLogger(badgerLogger{log})
	if opts.memTableSize > 0 {
		bopts = bopts.WithMemTableSize(opts.memTableSize).WithValueThreshold(1 << 10)
	}
	db, err := badger.Open(bopts)
	if err != nil {
		return nil, fmt.Errorf("open offline store state in %s: %w", filepath.Join(dir, stateDir), err)
	}
	s := &Sink{
		dir:     dir,
		opts:    opts,
		log:     log,
		db:      db,
		schemas: map[string]*schemas.Schema{},
		parquet: map[string]fileSchema{},
		parts:   map[partKey]*partBuf{},
		ids:     map[string]map[string]struct{}{},
	}
	if err := s.recover(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open offline store %s: %w", dir, err)
	}
	if s.committed, err = loadOffsets(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open offline store %s: %w", dir, err)
	}
	return s, nil
}

// Close closes the store's state. Rows not flushed are dropped; their
// offsets were not committed, so they are consumed again.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.buffered > 0 && !s.crashed {
		s.log.Warn("closing with rows not flushed", "rows", s.buffered)
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close offline store: %w", err)
	}
	return nil
}

// Resume returns, per partition, the next offset of a stream's topic to
// consume: the one after everything committed. A partition it lacks starts
// at 0.
func (s *Sink) Resume(stream string) map[int32]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int32]int64{}
	for k, next := range s.committed {
		if k.stream == stream {
			out[k.partition] = next
		}
	}
	return out
}

// Buffered returns how many rows wait for Flush.
func (s *Sink) Buffered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buffered
}

// Add buffers a row of a stream whose schema is schema. Successive calls may
// pass newer versions of a stream's schema: files are written with the newest
// version seen, older rows converted to it (a field they lack is its default
// or null).
//
// A row whose event id the stream has stored, or has buffered, is dropped and
// Add returns false; either way its offset counts as consumed.
//
// Add panics if the row does not fit the schema, the schema's stream name is
// not a usable directory name, the row has no event id, or the sink is
// closed: each is a bug in the caller.
func (s *Sink) Add(schema *schemas.Schema, row Row) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		panic(ErrClosed)
	}
	s.checkRow(schema, row)
	stream := schema.Stream
	if cur := s.schemas[stream]; cur == nil || schema.Version > cur.Version {
		s.schemas[stream] = schema
	}
	s.noteLocked(stream, row.Partition, row.Offset)
	if s.isDuplicate(stream, row.EventID) {
		return false
	}
	ids := s.ids[stream]
	if ids == nil {
		ids = map[string]struct{}{}
		s.ids[stream] = ids
	}
	ids[row.EventID] = struct{}{}
	p := s.parts[partKey{stream, row.Partition}]
	p.rows = append(p.rows, pendingRow{schema: schema, Row: row})
	s.buffered++
	return true
}

func (s *Sink) checkRow(schema *schemas.Schema, row Row) {
	if !validStream(schema.Stream) {
		panic(fmt.Sprintf("offline store: stream name %q cannot name a directory", schema.Stream))
	}
	if row.EventID == "" {
		panic(fmt.Sprintf("offline store: stream %q partition %d offset %d: row has no event id",
			schema.Stream, row.Partition, row.Offset))
	}
	var err error
	s.scratch, err = schemas.AppendParquetRow(s.scratch[:0], schema, row.Values, schemas.ParquetMeta{})
	if err != nil {
		panic(fmt.Sprintf("offline store: partition %d offset %d: %v", row.Partition, row.Offset, err))
	}
}

// isDuplicate reports whether a stream has buffered or stored an event id.
func (s *Sink) isDuplicate(stream, id string) bool {
	if _, ok := s.ids[stream][id]; ok {
		return true
	}
	err := s.db.View(func(txn *badger.Txn) error {
		_, err := txn.Get(idKey(stream, id))
		return err
	})
	switch {
	case err == nil:
		return true
	case errors.Is(err, badger.ErrKeyNotFound):
		return false
	}
	// Keeping the row can at worst store a duplicate; dropping it could
	// lose an event. The next commit reports the broken state.
	s.log.Error("look up event id", "stream", stream, "err", err)
	return false
}

// Note records that a partition's offset was consumed without producing a
// row (an invalid record sent to the dead-letter topic, or a duplicate), so
// that Resume moves past it once flushed.
func (s *Sink) Note(stream string, partition int32, offset int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		panic(ErrClosed)
	}
	s.noteLocked(stream, partition, offset)
}

func (s *Sink) noteLocked(stream string, partition int32, offset int64) {
	k := partKey{stream, partition}
	p := s.parts[k]
	if p == nil {
		p = &partBuf{}
		s.parts[k] = p
	}
	p.next = max(p.next, offset+1)
}

// fileSchema is the schema files of a stream are written with.
type fileSchema struct {
	schema  *schemas.Schema
	parquet *parquet.Schema
}

// fileSchema returns the schema a stream's files are written with now: its
// newest.
func (s *Sink) fileSchema(stream string) fileSchema {
	newest := s.schemas[stream]
	cached := s.parquet[stream]
	if cached.schema != newest {
		cached = fileSchema{schema: newest, parquet: schemas.ParquetSchema(newest)}
		s.parquet[stream] = cached
	}
	return cached
}

// sortedParts returns the buffered partitions in (stream, partition) order.
func (s *Sink) sortedParts() []partKey {
	keys := make([]partKey, 0, len(s.parts))
	for k := range s.parts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b partKey) int {
		return cmp.Or(cmp.Compare(a.stream, b.stream), cmp.Compare(a.partition, b.partition))
	})
	return keys
}
