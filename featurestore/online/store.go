package online

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/sluicehq/sluice/featurestore/window"
)

// Options configures a Store.
type Options struct {
	// DedupeHorizon is how long an event id is remembered; default 24h.
	DedupeHorizon time.Duration
	Logger        *slog.Logger
}

// Store is the online store.
type Store struct {
	db   *badger.DB
	opts Options
	seen *seenFilter
	// stages holds the staged batches (Batch.Stage), oldest first, as an
	// immutable slice that stageMu guards the replacing of; stageSeq
	// numbers the last one staged.
	stages   atomic.Pointer[[]*stage]
	stageMu  sync.Mutex
	stageSeq uint64
}

// Open opens or creates the store in dir.
func Open(dir string, opts Options) (*Store, error) {
	if opts.DedupeHorizon == 0 {
		opts.DedupeHorizon = 24 * time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	// One writer (the stream engine or a replica) commits batches, so
	// Badger need not track reads for conflicts. Memtables of 16 MiB
	// rather than 64 keep the worker's memory lower; the stream benchmark
	// measured the same throughput with either.
	bo := badger.DefaultOptions(dir).WithLogger(nil).WithNumVersionsToKeep(1).WithDetectConflicts(false).WithMemTableSize(16 << 20)
	db, err := badger.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("open online store %s: %w", dir, err)
	}
	s := &Store{db: db, opts: opts, seen: newSeenFilter(opts.DedupeHorizon)}
	// Batches staged from now on are numbered after those the store holds.
	err = db.View(func(txn *badger.Txn) error {
		s.stageSeq, err = lastStaged(txn)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open online store %s: %w", dir, err)
	}
	return s, nil
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

// GCInterval is how often Run reclaims space in Badger's value log.
const GCInterval = 5 * time.Minute

// Run reclaims the value-log space of expired and overwritten state every
// GCInterval until ctx is done.
func (s *Store) Run(ctx context.Context) error {
	tick := time.NewTicker(GCInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if err := s.CollectGarbage(); err != nil {
			s.opts.Logger.Warn("online store: value-log gc", "err", err)
		}
	}
}

// CollectGarbage rewrites value-log files that are at least half garbage,
// until none is left.
func (s *Store) CollectGarbage() error {
	for {
		err := s.db.RunValueLogGC(0.5)
		switch {
		case err == nil:
			continue
		case errors.Is(err, badger.ErrNoRewrite), errors.Is(err, badger.ErrRejected):
			return nil
		}
		return fmt.Errorf("value-log gc: %w", err)
	}
}

// Check reports whether the store is open and readable.
func (s *Store) Check() error {
	if s.db.IsClosed() {
		return errors.New("online store closed")
	}
	return s.db.View(func(*badger.Txn) error { return nil })
}

// Offsets returns the next offset to consume per partition of a stream.
func (s *Store) Offsets(stream string) (map[int32]int64, error) {
	out, err := s.byPartition(offsetPrefix(stream))
	if err != nil {
		return nil, fmt.Errorf("read offsets of %q: %w", stream, err)
	}
	return out, nil
}

// byPartition reads the keys under prefix, each a partition number
// followed by a 64-bit value.
func (s *Store) byPartition(prefix []byte) (map[int32]int64, error) {
	out := map[int32]int64{}
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			if len(k) != len(prefix)+4 {
				return fmt.Errorf("key %q: %w", k, window.ErrCorrupt)
			}
			part := int32(binary.BigEndian.Uint32(k[len(prefix):]))
			err := it.Item().Value(func(v []byte) error {
				if len(v) != 8 {
					return fmt.Errorf("value of %q, %d bytes: %w", k, len(v), window.ErrCorrupt)
				}
				out[part] = int64(binary.BigEndian.Uint64(v))
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// Batch is one atomic unit: events applied, ids seen and offsets consumed.
// It is not safe for concurrent use.
type Batch struct {
	s         *Store
	txn       *badger.Txn
	changes   []Change
	partition int32
	// reads is the read-only snapshot LoadCommitted reads from, opened by
	// its first call.
	reads *badger.Txn
	// stage is the batch's staged state, until it commits or is dropped.
	stage *stage
}

// Change is one entry a batch wrote to a view's state: its absolute new
// value, so applying it again is harmless. Changelogs carry them to
// replicas.
type Change struct {
	View string
	// Partition is the source partition whose records made the change;
	// the changelog keeps it, so that a worker taking the partition over
	// restores exactly that partition's state.
	Partition  int32
	Key, Value []byte // a nil Value deletes the key
	ExpiresAt  uint64 // Unix seconds; 0: never
}

// SetPartition says which source partition the changes recorded from now
// on come from.
func (b *Batch) SetPartition(p int32) { b.partition = p }

// SeenChange is the changelog entry of an event id that a view's
// namespace ns has seen, so that a restored worker remembers it.
func (s *Store) SeenChange(view, ns, id string, partition int32) Change {
	exp := uint64(time.Now().Add(s.opts.DedupeHorizon).Unix())
	return Change{View: view, Partition: partition, Key: dedupeKey(ns, id), Value: []byte{1}, ExpiresAt: exp}
}

// OffsetChange is the changelog entry of the next offset of a partition
// under a progress name.
func OffsetChange(view, name string, partition int32, next int64) Change {
	v := binary.BigEndian.AppendUint64(nil, uint64(next))
	return Change{View: view, Partition: partition, Key: offsetKey(name, partition), Value: v}
}

// NewBatch starts a batch. Call Commit or Discard.
func (s *Store) NewBatch() *Batch { return &Batch{s: s, txn: s.db.NewTransaction(true)} }

// ErrBatchFull says the batch cannot take more writes; commit it and start
// another before the record that hit the limit.
var ErrBatchFull = errors.New("online store: batch full")

func (b *Batch) set(e *badger.Entry) error {
	if err := b.txn.SetEntry(e); err != nil {
		if errors.Is(err, badger.ErrTxnTooBig) {
			return ErrBatchFull
		}
		return fmt.Errorf("online store: %w", err)
	}
	return nil
}

// Seen reports whether the id of an event of stream was seen within the
// dedupe horizon, this batch included.
func (b *Batch) Seen(stream, id string) (bool, error) {
	maybe, err := b.s.seen.mayHold(b.s.db, stream, id)
	if err != nil || !maybe {
		return false, err
	}
	_, err = b.txn.Get(dedupeKey(stream, id))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, badger.ErrKeyNotFound):
		return false, nil
	}
	return false, fmt.Errorf("online store: dedupe lookup: %w", err)
}

// MarkSeen remembers an event id for the dedupe horizon.
func (b *Batch) MarkSeen(stream, id string) error {
	b.s.seen.add(stream, id)
	return b.set(badger.NewEntry(dedupeKey(stream, id), nil).WithTTL(b.s.opts.DedupeHorizon))
}

// Put stores one raw event of an entity for a view version. With keep > 0
// the event expires once its event time is older than keep.
func (b *Batch) Put(view string, version int, key string, ev *window.Event, keep time.Duration) error {
	var expires uint64
	if keep > 0 {
		expires = expiry(ev.Time + keep.Microseconds())
	}
	return b.put(view, eventKey(view, version, key, ev.Time, ev.Seq), encodeEvent(nil, ev), expires)
}

// Changes returns the view state the batch wrote, in order.
func (b *Batch) Changes() []Change { return b.changes }

// Apply writes a change that another store made (a replica or a restoring
// worker following a changelog), expiring at expiresAt (Unix seconds; 0:
// never); a nil value deletes the key. It refuses keys that are not view
// state, seen ids or offsets.
func (b *Batch) Apply(key, value []byte, expiresAt uint64) error {
	if len(key) < 2 || key[1] != 0 || !strings.ContainsRune("etbdo", rune(key[0])) {
		return fmt.Errorf("online store: changelog key %q is not view state", key)
	}
	if key[0] == 'e' && value != nil {
		if err := decodeEvent(value, &window.Event{}); err != nil {
			return fmt.Errorf("online store: changelog value of %q: %w", key, err)
		}
	}
	key = append([]byte(nil), key...)
	if key[0] == 'd' && value != nil {
		if ns, id, ok := strings.Cut(string(key[2:]), "\x00"); ok {
			b.s.seen.addIfKept(ns, id)
		}
	}
	if value == nil {
		err := b.txn.Delete(key)
		if errors.Is(err, badger.ErrTxnTooBig) {
			return ErrBatchFull
		}
		return err
	}
	return b.set(&badger.Entry{Key: key, Value: append([]byte(nil), value...), ExpiresAt: expiresAt})
}

// SetOffset records the next offset to consume of a stream partition.
func (b *Batch) SetOffset(stream string, partition int32, next int64) error {
	v := binary.BigEndian.AppendUint64(nil, uint64(next))
	return b.set(badger.NewEntry(offsetKey(stream, partition), v))
}

// SetChangelogPosition records that the store holds the state of a source
// partition of a view as its changelog has it up to next (an offset in
// the changelog partition that holds the source partition), so that a
// worker getting the partition back reads only what was written after.
func (b *Batch) SetChangelogPosition(view string, partition int32, next int64) error {
	return b.set(badger.NewEntry(changelogKey(view, partition), binary.BigEndian.AppendUint64(nil, uint64(next))))
}

// ChangelogPositions returns, per source partition of a view, how far the
// store holds the view's changelog (SetChangelogPosition).
func (s *Store) ChangelogPositions(view string) (map[int32]int64, error) {
	out, err := s.byPartition(changelogPrefix(view))
	if err != nil {
		return nil, fmt.Errorf("online store: read the changelog positions of %q: %w", view, err)
	}
	return out, nil
}

// LoadCommitted reads an entity's state of a view version as committed
// when the batch first read committed state: one snapshot serves every
// read of the batch, and the batch's own writes are not in it.
func (b *Batch) LoadCommitted(view string, version int, key string, l *window.Layout) (*window.State, error) {
	if b.reads == nil {
		b.reads = b.s.db.NewTransaction(false)
	}
	return loadState(&stateReader{txn: b.reads}, view, version, key, l)
}

// endReads closes the snapshot of LoadCommitted.
func (b *Batch) endReads() {
	if b.reads != nil {
		b.reads.Discard()
		b.reads = nil
	}
}

// Commit writes the batch atomically.
func (b *Batch) Commit() error {
	b.endReads()
	defer b.unstage()
	if err := b.txn.Commit(); err != nil {
		return fmt.Errorf("online store: commit: %w", err)
	}
	return nil
}

// Discard drops the batch, if it has not committed.
func (b *Batch) Discard() {
	b.endReads()
	b.unstage()
	b.txn.Discard()
}

// Read calls fn with the events of each entity key of a view version whose
// event time is before t, sorted by (time, seq), from one snapshot with the
// staged batches over it.
func (s *Store) Read(view string, version int, keys []string, t int64, fn func(i int, events []window.Event)) error {
	return s.view(func(r *stateReader) error {
		for i, k := range keys {
			evs, err := readRaw(r, view, version, k, math.MinInt64, t)
			if err != nil {
				return err
			}
			fn(i, evs)
		}
		return nil
	})
}

const signBit = 1 << 63

func orderedUint(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)^signBit) }

func offsetPrefix(stream string) []byte { return append([]byte("o\x00"+stream), 0) }

func offsetKey(stream string, partition int32) []byte {
	return binary.BigEndian.AppendUint32(offsetPrefix(stream), uint32(partition))
}

// OffsetOf reads the progress name and partition back from the key of an
// offsets entry (OffsetChange), and reports whether it is one.
func OffsetOf(key []byte) (name string, partition int32, ok bool) {
	if len(key) < 2+1+4 || key[0] != 'o' || key[1] != 0 || key[len(key)-5] != 0 {
		return "", 0, false
	}
	return string(key[2 : len(key)-5]), int32(binary.BigEndian.Uint32(key[len(key)-4:])), true
}

func changelogPrefix(view string) []byte { return []byte("c\x00" + view + "\x00") }

func changelogKey(view string, partition int32) []byte {
	return binary.BigEndian.AppendUint32(changelogPrefix(view), uint32(partition))
}

func dedupeKey(stream, id string) []byte { return []byte("d\x00" + stream + "\x00" + id) }

func entityPrefix(view string, version int, key string) []byte {
	return statePrefix('e', view, version, key)
}

func eventKey(view string, version int, key string, t, seq int64) []byte {
	b := entityPrefix(view, version, key)
	b = binary.BigEndian.AppendUint64(b, uint64(t)^signBit)
	return binary.BigEndian.AppendUint64(b, uint64(seq)^signBit)
}
