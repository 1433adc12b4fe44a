package pit

import "encoding/binary"

// entity is one entity of one view: its spine rows and its events.
type entity struct {
	rows []int32 // spine rows, sorted by time
	// chunks hold the entity's events encoded (time, arrival, seq, the
	// view's inputs), one chunk per history worker so that workers append
	// without locks: far smaller than decoded values, which box every
	// float; a sweep decodes one entity at a time.
	chunks []chunk
	vi     int   // the query view
	idx    int32 // its place among the stream's entities, which picks its spill bucket
}

// chunk is the events one history worker read of an entity: spans of that
// worker's arena.
type chunk struct {
	spans [][]byte
	n     int
}

// events counts the entity's events.
func (e *entity) events() int {
	n := 0
	for _, c := range e.chunks {
		n += c.n
	}
	return n
}

// size is how many bytes the entity's events take.
func (e *entity) size() int {
	n := 0
	for _, c := range e.chunks {
		for _, s := range c.spans {
			n += len(s)
		}
	}
	return n
}

// arena holds one history worker's encoded events in large slabs, which
// never move: an entity's chunk points at spans of them, so the history
// grows by exact sizes instead of by doubling a buffer per entity. Events
// are encoded in place at the end of the current slab.
type arena struct {
	slab []byte
	last *chunk // the chunk whose last span ends where the event being encoded begins
	from int    // where the event being encoded begins in slab
}

// slabSize is the size of an arena's slabs.
const slabSize = 4 << 20

// start begins encoding an event of at most size bytes besides its time,
// arrival and seq, which it writes; the caller appends the event's inputs
// to a.slab, then calls add. An event longer than size still encodes
// correctly, only into a copy of the slab.
func (a *arena) start(size int, t, arrival, seq int64) {
	size += 3 * binary.MaxVarintLen64
	if cap(a.slab)-len(a.slab) < size {
		a.slab, a.last = make([]byte, 0, max(slabSize, size)), nil
	}
	a.from = len(a.slab)
	a.slab = binary.AppendVarint(a.slab, t)
	a.slab = binary.AppendVarint(a.slab, arrival)
	a.slab = binary.AppendVarint(a.slab, seq)
}

// add files the event being encoded under c and returns its size.
func (a *arena) add(c *chunk) int {
	from, to := a.from, len(a.slab)
	if a.last == c {
		// Consecutive events of one entity, as a file keeps them: one span.
		s := &c.spans[len(c.spans)-1]
		*s = a.slab[from-len(*s) : to : to]
	} else {
		c.spans = append(c.spans, a.slab[from:to:to])
		a.last = c
	}
	c.n++
	return to - from
}

// reset forgets the slabs, once every chunk has let go of them.
func (a *arena) reset() { a.slab, a.last = nil, nil }
