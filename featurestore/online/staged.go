package online

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// A batch's view state can be read before the batch commits: the stream
// engine stages each batch as soon as it is applied, while its changelog
// is produced and its transaction commits. What a staged batch holds is a
// function of records Kafka has acknowledged, so a batch that fails to
// commit is applied again from them, to the same values; reads only see
// those values sooner. Each staged batch has a sequence number that its
// transaction writes under stagedKey, so that a read knows which staged
// batches its snapshot already holds and lays only the later ones over it.

var stagedKey = []byte("v\x00staged")

// stage is one batch's view state, by entity.
type stage struct {
	seq uint64
	// entities holds the entries of each entity, sorted by key (a nil
	// value deletes the key); byEntity indexes them by entityID.
	entities [][]stagedEntry
	byEntity map[string]int
}

// of returns the staged entries of an entity (entityID).
func (st *stage) of(entity []byte) []stagedEntry {
	if i, ok := st.byEntity[string(entity)]; ok {
		return st.entities[i]
	}
	return nil
}

type stagedEntry struct {
	key, value []byte
	expiresAt  uint64
}

// entityID is what a state key of view names after its tag: the view,
// version and entity key, shared by an entity's tiles, base and raw
// events.
func entityID(view string, k []byte) ([]byte, bool) {
	n := 2 + len(view) + 1 + 4
	if len(k) < n+4 {
		return nil, false
	}
	end := n + 4 + int(binary.BigEndian.Uint32(k[n:]))
	if end > len(k) {
		return nil, false
	}
	return k[2:end], true
}

// newStage indexes a batch's changes of view state by entity; a key
// changed twice keeps its last value.
func newStage(seq uint64, changes []Change) *stage {
	st := &stage{seq: seq, byEntity: map[string]int{}}
	for _, c := range changes {
		if len(c.Key) < 2 || c.Key[0] != 'e' && c.Key[0] != 't' && c.Key[0] != 'b' {
			continue
		}
		ent, ok := entityID(c.View, c.Key)
		if !ok {
			continue
		}
		i, ok := st.byEntity[string(ent)]
		if !ok {
			i = len(st.entities)
			st.byEntity[string(ent)] = i
			st.entities = append(st.entities, nil)
		}
		st.entities[i] = append(st.entities[i], stagedEntry{c.Key, c.Value, c.ExpiresAt})
	}
	for i, es := range st.entities {
		st.entities[i] = sortedLastWins(es)
	}
	return st
}

// sortedLastWins sorts entries by key, keeping the last of equal keys.
func sortedLastWins(es []stagedEntry) []stagedEntry {
	slices.SortStableFunc(es, func(a, b stagedEntry) int { return bytes.Compare(a.key, b.key) })
	out := es[:0]
	for i, e := range es {
		if i+1 < len(es) && bytes.Equal(es[i+1].key, e.key) {
			continue
		}
		out = append(out, e)
	}
	return out
}

// Stage makes the batch's view state readable by ReadState and Read
// before it commits; call it once the batch holds all its changes. Commit
// or Discard ends the staging.
func (b *Batch) Stage() error {
	st := newStage(0, b.changes)
	s := b.s
	s.stageMu.Lock()
	defer s.stageMu.Unlock()
	if err := b.set(badger.NewEntry(stagedKey, binary.BigEndian.AppendUint64(nil, s.stageSeq+1))); err != nil {
		return err
	}
	s.stageSeq++
	st.seq = s.stageSeq
	b.stage = st
	list := append(slices.Clone(s.staging()), st)
	s.stages.Store(&list)
	return nil
}

// unstage removes the batch's staged state: it is committed, or dropped.
func (b *Batch) unstage() {
	if b.stage == nil {
		return
	}
	s := b.s
	s.stageMu.Lock()
	defer s.stageMu.Unlock()
	list := slices.DeleteFunc(slices.Clone(s.staging()), func(st *stage) bool { return st == b.stage })
	s.stages.Store(&list)
	b.stage = nil
}

// staging returns the staged batches, oldest first.
func (s *Store) staging() []*stage {
	if p := s.stages.Load(); p != nil {
		return *p
	}
	return nil
}

// lastStaged reads the sequence number of the last staged batch that a
// store's snapshot holds; 0 when none.
func lastStaged(txn *badger.Txn) (uint64, error) {
	return readNumber(txn, stagedKey, "staged batch number")
}

// readNumber reads a number stored under key as 8 big-endian bytes; 0 when
// the key is absent. what names it in errors.
func readNumber(txn *badger.Txn, key []byte, what string) (uint64, error) {
	item, err := txn.Get(key)
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("online store: read the %s: %w", what, err)
	}
	var n uint64
	err = item.Value(func(v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("online store: %s of %d bytes", what, len(v))
		}
		n = binary.BigEndian.Uint64(v)
		return nil
	})
	return n, err
}

// testHookStaged, when set, runs between a read's loading of the staged
// batches and the opening of its snapshot.
var testHookStaged func()

// view calls fn with a reader of one snapshot and the staged batches it
// does not hold. The staged batches are loaded first: one that commits in
// between is in the snapshot, whereas loaded after, a batch that commits
// first would be in neither.
func (s *Store) view(fn func(r *stateReader) error) error {
	stages := s.staging()
	if testHookStaged != nil {
		testHookStaged()
	}
	return s.db.View(func(txn *badger.Txn) error {
		r, err := newStateReader(txn, stages)
		if err != nil {
			return err
		}
		return fn(r)
	})
}

// stateReader reads view state from a snapshot, with the staged batches
// the snapshot does not hold laid over it.
type stateReader struct {
	txn    *badger.Txn
	stages []*stage // oldest first
	now    uint64   // Unix seconds, for the staged entries' expiry
	// entity and entries are the staged entries last merged for an
	// entity (staged), which reads of one entity ask for several times.
	entity  string
	entries []stagedEntry
}

// newStateReader reads from txn with those of stages it does not hold.
func newStateReader(txn *badger.Txn, stages []*stage) (*stateReader, error) {
	r := &stateReader{txn: txn}
	if len(stages) == 0 {
		return r, nil
	}
	held, err := lastStaged(txn)
	if err != nil {
		return nil, err
	}
	for _, st := range stages {
		if st.seq > held {
			r.stages = append(r.stages, st)
		}
	}
	r.now = uint64(time.Now().Unix())
	return r, nil
}

// staged returns the staged entries of the entity whose state keys start
// with prefix (statePrefix), sorted by key, the latest batch winning.
func (r *stateReader) staged(prefix []byte) []stagedEntry {
	if len(r.stages) == 0 {
		return nil
	}
	if r.entity == string(prefix[2:]) {
		return r.entries
	}
	var out []stagedEntry
	n := 0
	for _, st := range r.stages {
		es := st.of(prefix[2:])
		switch {
		case len(es) == 0:
			continue
		case n == 0:
			out = es // read only: no copy
		default:
			out = append(slices.Clip(out), es...)
		}
		n++
	}
	if n > 1 {
		out = sortedLastWins(out)
	}
	r.entity, r.entries = string(prefix[2:]), out
	return out
}

// live reports whether a staged entry holds a value now.
func (r *stateReader) live(e *stagedEntry) bool {
	return e.value != nil && (e.expiresAt == 0 || e.expiresAt > r.now)
}

// get calls fn with the value of key, an entity's state key, and reports
// whether there was one.
func (r *stateReader) get(entity, key []byte, fn func(v []byte) error) (bool, error) {
	staged := r.staged(entity)
	if i, ok := slices.BinarySearchFunc(staged, key, func(e stagedEntry, k []byte) int { return bytes.Compare(e.key, k) }); ok {
		if !r.live(&staged[i]) {
			return false, nil
		}
		return true, fn(staged[i].value)
	}
	item, err := r.txn.Get(key)
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, item.Value(fn)
}

// scan calls fn, in key order, with each key of an entity (entity: its
// statePrefix) that starts with prefix and lies in [from, stop), and its
// value; a nil stop has no end.
func (r *stateReader) scan(entity, prefix, from, stop []byte, fn func(k, v []byte) error) error {
	inRange := func(k []byte) bool {
		return bytes.HasPrefix(k, prefix) && bytes.Compare(k, from) >= 0 && (stop == nil || bytes.Compare(k, stop) < 0)
	}
	var staged []stagedEntry
	for _, e := range r.staged(entity) {
		if inRange(e.key) {
			staged = append(staged, e)
		}
	}
	it := r.txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 64})
	defer it.Close()
	it.Seek(from)
	for {
		var k []byte
		if it.Valid() && inRange(it.Item().Key()) {
			k = it.Item().Key()
		}
		if k == nil && len(staged) == 0 {
			return nil
		}
		if len(staged) > 0 && (k == nil || bytes.Compare(staged[0].key, k) <= 0) {
			e := staged[0]
			staged = staged[1:]
			if k != nil && bytes.Equal(e.key, k) {
				it.Next()
			}
			if r.live(&e) {
				if err := fn(e.key, e.value); err != nil {
					return err
				}
			}
			continue
		}
		if err := it.Item().Value(func(v []byte) error { return fn(k, v) }); err != nil {
			return err
		}
		it.Next()
	}
}
