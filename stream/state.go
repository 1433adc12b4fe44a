package stream

import (
	"container/list"

	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/featurestore/online"
	"github.com/sluicehq/sluice/featurestore/window"
)

// DefaultStateCacheEntities is how many entity states the engine keeps in
// memory by default.
const DefaultStateCacheEntities = 100_000

// stateCache holds recently used entity states in memory, most recent
// first, so that applying an event reads no tiles from the store. It holds
// at most max states between batches, besides those of the open batch and
// of the batches being committed, which stay until they commit. Every
// state it holds equals the committed one plus the changes of the batches
// in flight and of the open batch.
type stateCache struct {
	max   int
	byKey map[stateKey]*list.Element
	order list.List // of *cached, most recently used at the front
	dirty []*cached // states the open batch changed
	// sealed numbers the batches sealed so far.
	sealed uint64
}

// stateKey names an entity of a view version.
type stateKey struct {
	view    string
	version int
	ent     string
}

type cached struct {
	key       stateKey
	view      *featurestore.CompiledView
	ent       string
	partition int32 // the source partition the entity's records come from
	st        *window.State
	dirty     bool   // changed by the open batch
	batch     uint64 // the last sealed batch that changed it
}

func newStateCache(max int) *stateCache {
	if max <= 0 {
		max = DefaultStateCacheEntities
	}
	return &stateCache{max: max, byKey: map[stateKey]*list.Element{}}
}

// get returns the state of an entity of a view version for the open batch
// b to change, loading it when it is not cached.
func (c *stateCache) get(b *online.Batch, cv *featurestore.CompiledView, ent string, partition int32) (*window.State, error) {
	key := stateKey{cv.View.Name, cv.View.Version, ent}
	if el, ok := c.byKey[key]; ok {
		c.order.MoveToFront(el)
		e := el.Value.(*cached)
		e.partition = partition
		c.touch(e)
		return e.st, nil
	}
	// Not cached, so neither the open batch nor one in flight has
	// changed it: it was committed before the open batch began, and the
	// batch's snapshot holds it. Reading outside the batch's transaction
	// spares Badger sorting the batch's pending writes for every iterator;
	// one snapshot per batch spares a read transaction per entity.
	st, err := b.LoadCommitted(cv.View.Name, cv.View.Version, ent, cv.Layout)
	if err != nil {
		return nil, err
	}
	e := &cached{key: key, view: cv, ent: ent, partition: partition, st: st}
	c.byKey[key] = c.order.PushFront(e)
	c.touch(e)
	return st, nil
}

func (c *stateCache) touch(e *cached) {
	if !e.dirty {
		e.dirty = true
		c.dirty = append(c.dirty, e)
	}
}

// flush ages the open batch's states to horizon (µs: arrival minus the
// view's keep) and writes their changes into b. The states' flags are
// cleared: b holds their changes now, and the next batch marks its own.
func (c *stateCache) flush(b *online.Batch, arrival int64) error {
	for _, e := range c.dirty {
		keep := 2 * e.view.Layout.Retention
		e.view.Layout.Age(e.st, arrival-keep)
		b.SetPartition(e.partition)
		if err := b.PutState(e.view.View.Name, e.view.View.Version, e.ent, e.view.Layout, e.st, keep); err != nil {
			return err
		}
		e.st.Sweep()
	}
	return nil
}

// seal hands the open batch's states to the commit: the batch flushed
// them and is on its way to the store. It returns the batch's number. Its
// states stay cached, unless discarded or reset, until committed is called
// with that number or a later one.
func (c *stateCache) seal() uint64 {
	c.sealed++
	for _, e := range c.dirty {
		e.dirty, e.batch = false, c.sealed
	}
	c.dirty = c.dirty[:0]
	return c.sealed
}

// committed records that the sealed batches up to number upTo are in the
// store, and trims the cache to its bound; states of the open batch and of
// later sealed batches stay.
func (c *stateCache) committed(upTo uint64) {
	for c.order.Len() > c.max {
		el := c.order.Back()
		e := el.Value.(*cached)
		if e.dirty || e.batch > upTo {
			// Every state in front of this one was changed since.
			break
		}
		delete(c.byKey, e.key)
		c.order.Remove(el)
	}
}

// discard forgets the states the open batch changed: they are read again
// from the store, as committed, when next needed. No batch may be in
// flight: its changes may be in them too.
func (c *stateCache) discard() {
	for _, e := range c.dirty {
		if el, ok := c.byKey[e.key]; ok {
			delete(c.byKey, e.key)
			c.order.Remove(el)
		}
	}
	c.dirty = c.dirty[:0]
}

// reset forgets every state, for example when partitions move to another
// worker, which may change them. No batch may be in flight.
func (c *stateCache) reset() {
	c.byKey = map[stateKey]*list.Element{}
	c.order.Init()
	c.dirty = c.dirty[:0]
}
