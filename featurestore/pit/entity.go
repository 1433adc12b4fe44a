package pit

import (
	"encoding/binary"
	"slices"

	"github.com/sluicehq/sluice/featurestore/window"
)

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

// decode returns the entity's events, each with inputs cells, in evs and
// cells reused, and lets go of the encoded form. ends receives where each
// history worker's events end in evs.
func (e *entity) decode(inputs int, evs []window.Event, cells []window.Cell, ends []int) ([]window.Event, []window.Cell, []int, error) {
	n := e.events()
	evs, ends = slices.Grow(evs[:0], n), ends[:0]
	if cap(cells) < n*inputs {
		cells = make([]window.Cell, n*inputs)
	}
	cells = cells[:n*inputs]
	for k := range e.chunks {
		for _, span := range e.chunks[k].spans {
			d := window.NewDecoder(span)
			for d.More() {
				if len(evs) == n {
					return nil, cells, ends, window.ErrCorrupt
				}
				i := len(evs)
				ev := window.Event{Time: d.Varint(), Arrival: d.Varint(), Seq: d.Varint(), Cells: cells[i*inputs : (i+1)*inputs : (i+1)*inputs]}
				for k := range ev.Cells {
					ev.Cells[k] = d.Cell()
				}
				evs = append(evs, ev)
			}
			if err := d.Err(); err != nil {
				return nil, cells, ends, err
			}
		}
		e.chunks[k] = chunk{}
		ends = append(ends, len(evs))
	}
	if len(evs) != n {
		return nil, cells, ends, window.ErrCorrupt
	}
	return evs, cells, ends, nil
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
