package pit

import (
	"encoding/binary"

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

// decode returns the entity's events, each with inputs values, and lets
// go of the encoded form.
func (e *entity) decode(inputs int) ([]window.Event, error) {
	n := e.events()
	evs := make([]window.Event, 0, n)
	vals := make([]any, n*inputs)
	for k := range e.chunks {
		for _, span := range e.chunks[k].spans {
			d := window.NewDecoder(span)
			for d.More() {
				if len(evs) == n {
					return nil, window.ErrCorrupt
				}
				i := len(evs)
				ev := window.Event{Time: d.Varint(), Arrival: d.Varint(), Seq: d.Varint(), Values: vals[i*inputs : (i+1)*inputs : (i+1)*inputs]}
				for k := range ev.Values {
					ev.Values[k] = d.Value()
				}
				evs = append(evs, ev)
			}
			if err := d.Err(); err != nil {
				return nil, err
			}
		}
		e.chunks[k] = chunk{}
	}
	if len(evs) != n {
		return nil, window.ErrCorrupt
	}
	return evs, nil
}

// arena holds one history worker's encoded events in large slabs, which
// never move: an entity's chunk points at spans of them, so the history
// grows by exact sizes instead of by doubling a buffer per entity.
type arena struct {
	slab []byte
	last *chunk // the chunk whose last span ends where slab's used part ends
	ev   []byte // the event being encoded
}

// slabSize is the size of an arena's slabs.
const slabSize = 4 << 20

// start begins encoding an event: its time, arrival and seq; the caller
// appends its inputs to a.ev, then calls add.
func (a *arena) start(t, arrival, seq int64) {
	a.ev = binary.AppendVarint(a.ev[:0], t)
	a.ev = binary.AppendVarint(a.ev, arrival)
	a.ev = binary.AppendVarint(a.ev, seq)
}

// add files the encoded event under c and returns its size.
func (a *arena) add(c *chunk) int {
	if cap(a.slab)-len(a.slab) < len(a.ev) {
		a.slab, a.last = make([]byte, 0, max(slabSize, len(a.ev))), nil
	}
	from := len(a.slab)
	a.slab = append(a.slab, a.ev...)
	to := len(a.slab)
	if a.last == c {
		// Consecutive events of one entity, as a file keeps them: one span.
		s := &c.spans[len(c.spans)-1]
		*s = a.slab[from-len(*s) : to : to]
	} else {
		c.spans = append(c.spans, a.slab[from:to:to])
		a.last = c
	}
	c.n++
	return len(a.ev)
}

// reset forgets the slabs, once every chunk has let go of them.
func (a *arena) reset() { a.slab, a.last = nil, nil }
