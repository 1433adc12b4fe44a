package online

import (
	"fmt"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/ristretto/v2/z"
)

// seenFilter answers most dedupe lookups without reading Badger: per
// namespace, Bloom filters of every event id the store may hold. An id
// they have never been told of is certainly not held; one they may hold is
// looked up. Ids expire from Badger after the dedupe horizon, and Bloom
// filters cannot forget, so each namespace keeps two generations: ids go
// into the current one, which becomes the previous one once a horizon
// old, and the previous one is dropped when the next takes its place. An
// id added at t stays in one of them until at least t plus the horizon.
type seenFilter struct {
	horizon time.Duration
	now     func() time.Time
	// maxBytes bounds one generation of one namespace.
	maxBytes int
	mu       sync.Mutex
	ns       map[string]*nsFilter
}

// nsFilter is one namespace's generations.
type nsFilter struct {
	cur, prev *generation
	since     time.Time // when cur began
	used      time.Time // when last used
	loaded    bool      // the ids in Badger were added
}

// generation is a growing set of Bloom filters: when the last is full, a
// twice larger one follows, so memory follows the ids held; past its
// bound it stops growing and answers "maybe" for every id.
type generation struct {
	max     int // bytes
	filters []*z.Bloom
	room    int // ids the last filter takes before it is full
	bytes   int
	full    bool
}

const (
	firstFilterIDs = 1 << 16
	// filterFalseRate is each filter's false positive rate.
	filterFalseRate = 0.01
	// maxFilterBytes bounds one generation of one namespace: 64 MiB hold
	// about 50 million ids.
	maxFilterBytes = 64 << 20
)

func newSeenFilter(horizon time.Duration) *seenFilter {
	return &seenFilter{horizon: horizon, now: time.Now, maxBytes: maxFilterBytes, ns: map[string]*nsFilter{}}
}

// mayHold reports whether the store may hold id under ns, reading the
// namespace's ids from db the first time.
func (f *seenFilter) mayHold(db *badger.DB, ns, id string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.namespace(ns)
	if !n.loaded {
		if err := f.load(db, ns, n); err != nil {
			return true, err
		}
	}
	h := hashOf(id)
	return n.cur.has(h) || n.prev != nil && n.prev.has(h), nil
}

// add records that the store may hold id under ns.
func (f *seenFilter) add(ns, id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.namespace(ns).cur.add(hashOf(id))
}

// addIfKept is add for an id written from elsewhere (a changelog): a
// namespace nobody has looked up yet takes its ids from Badger when first
// looked up, so a serve replica, which never looks up, keeps no filters.
func (f *seenFilter) addIfKept(ns, id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.ns[ns]; ok {
		f.namespace(ns).cur.add(hashOf(id))
	}
}

// namespace returns ns's filters, rotating them when a horizon has passed.
func (f *seenFilter) namespace(ns string) *nsFilter {
	n := f.ns[ns]
	now := f.now()
	if n == nil {
		n = &nsFilter{cur: &generation{max: f.maxBytes}, since: now}
		f.ns[ns] = n
	}
	n.used = now
	if now.Sub(n.since) >= f.horizon {
		n.prev, n.cur, n.since = n.cur, &generation{max: f.maxBytes}, now
		f.dropUnused(now)
	}
	return n
}

// dropUnused forgets the filters of namespaces unused for a horizon, such
// as a view version that has been replaced: they are read from Badger again
// if it is ever used.
func (f *seenFilter) dropUnused(now time.Time) {
	for ns, n := range f.ns {
		if now.Sub(n.used) > f.horizon {
			delete(f.ns, ns)
		}
	}
}

// load adds the ids that db holds under ns.
func (f *seenFilter) load(db *badger.DB, ns string, n *nsFilter) error {
	prefix := dedupeKey(ns, "")
	err := db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n.cur.add(z.MemHash(it.Item().Key()[len(prefix):]))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("online store: read the seen ids of %q: %w", ns, err)
	}
	n.loaded = true
	return nil
}

func (g *generation) add(h uint64) {
	if g.full {
		return
	}
	if g.room == 0 {
		ids := firstFilterIDs << len(g.filters)
		b := z.NewBloomFilter(float64(ids), filterFalseRate)
		if g.bytes+b.TotalSize() > g.max {
			g.full, g.filters = true, nil
			return
		}
		g.filters, g.room, g.bytes = append(g.filters, b), ids, g.bytes+b.TotalSize()
	}
	g.filters[len(g.filters)-1].Add(h)
	g.room--
}

func (g *generation) has(h uint64) bool {
	if g.full {
		return true
	}
	for _, b := range g.filters {
		if b.Has(h) {
			return true
		}
	}
	return false
}

func hashOf(id string) uint64 { return z.MemHashString(id) }
