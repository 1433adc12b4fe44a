package pit

import (
	"encoding/binary"
	"slices"

	"github.com/sluicehq/sluice/featurestore/offline"
	"github.com/sluicehq/sluice/featurestore/window"
	"github.com/sluicehq/sluice/schemas"
)

// byKey is a view's entities in key order.
type byKey struct {
	keys []string
	ents []*entity
}

// reader files one history worker's batches under the entities of the
// views of one stream.
type reader struct {
	worker int
	arena  *arena
	views  []readView
	values []any // a row's values, for views that run Apply
	parts  []string
}

// readView is one query view as a reader sees it.
type readView struct {
	v *View
	byKey
	// direct views read their inputs and key straight from the batch's
	// columns (CompiledView.Direct); others box each row and run Apply.
	direct            bool
	inputs, keyFields []int
	// lastKey and last remember the entity of the previous row, at
	// position cur of keys: a file holds each entity's rows together and
	// sorted by key, so most rows find their entity there or a little past
	// it.
	lastKey string
	last    *entity
	cur     int
}

func newReader(qv []View, views []int, ents []byKey, worker int, a *arena) reader {
	rd := reader{worker: worker, arena: a}
	for j, vi := range views {
		v := &qv[vi]
		inputs, keys, direct := v.CV.Direct()
		rd.views = append(rd.views, readView{v: v, byKey: ents[j], direct: direct, inputs: inputs, keyFields: keys})
	}
	return rd
}

// readFields returns the schema fields that views read: their keys and
// inputs when every one reads them straight from the columns, else nil
// (all of them: filters and derived fields may read any).
func readFields(views []readView) []int {
	var fields []int
	for _, rv := range views {
		if !rv.direct {
			return nil
		}
		fields = append(append(fields, rv.keyFields...), rv.inputs...)
	}
	slices.Sort(fields)
	return slices.Compact(fields)
}

// read files a batch's events and returns how many bytes they took.
func (rd *reader) read(b *offline.Batch) int {
	grew := 0
	for j := range rd.views {
		rv := &rd.views[j]
		if rv.direct {
			grew += rd.readDirect(rv, b)
		} else {
			grew += rd.readApplied(rv, b)
		}
	}
	return grew
}

func (rd *reader) readDirect(rv *readView, b *offline.Batch) int {
	grew := 0
	a := rd.arena
	for i := range b.Len {
		e := rv.entity(rd.key(b, rv.keyFields, i))
		if e == nil {
			continue
		}
		size := 0
		for _, f := range rv.inputs {
			size += vectorSize(&b.Fields[f], i)
		}
		a.start(size, b.EventTime[i], arrival(b, i), window.SeqOf(b.Partition[i], b.Offset[i]))
		slab := a.slab
		for _, f := range rv.inputs {
			slab = appendVector(slab, &b.Fields[f], i)
		}
		a.slab = slab
		grew += a.add(&e.chunks[rd.worker])
	}
	return grew
}

func (rd *reader) readApplied(rv *readView, b *offline.Batch) int {
	if len(rd.values) != len(b.Fields) {
		rd.values = make([]any, len(b.Fields))
	}
	grew := 0
	a := rd.arena
	for i := range b.Len {
		for f := range b.Fields {
			rd.values[f] = b.Fields[f].Value(i)
		}
		ev := schemas.Event{Time: b.EventTime[i], Values: rd.values}
		key, values, pass := rv.v.CV.Apply(&ev)
		if !pass {
			continue
		}
		e := rv.entity(key)
		if e == nil {
			continue
		}
		size := 0
		for _, v := range values {
			size += valueSize(v)
		}
		a.start(size, b.EventTime[i], arrival(b, i), window.SeqOf(b.Partition[i], b.Offset[i]))
		for _, v := range values {
			a.slab = window.AppendValue(a.slab, v)
		}
		grew += a.add(&e.chunks[rd.worker])
	}
	return grew
}

// arrival is row i's arrival time, or 0 when the batch has none (event_time
// runs do not read them).
func arrival(b *offline.Batch, i int) int64 {
	if len(b.Arrival) == 0 {
		return 0
	}
	return b.Arrival[i]
}

// entity returns the entity of key, or nil when no spine row asks about
// it or the key is empty.
func (rv *readView) entity(key string) *entity {
	if key == "" {
		return nil
	}
	if key != rv.lastKey {
		rv.lastKey, rv.last = key, nil
		if i, ok := rv.find(key); ok {
			rv.last = rv.ents[i]
		}
	}
	return rv.last
}

// find returns where key is, or would be, in keys. It gallops forward from
// the last place found, and searches all of keys for a key before it.
func (rv *readView) find(key string) (int, bool) {
	keys := rv.keys
	lo := rv.cur
	if lo >= len(keys) || key < keys[lo] {
		lo = 0
	}
	hi, step := lo+1, 1
	for hi < len(keys) && keys[hi] <= key {
		lo, hi, step = hi, hi+step, step*2
	}
	i, ok := slices.BinarySearch(keys[lo:min(hi, len(keys))], key)
	rv.cur = lo + i
	return rv.cur, ok
}

// key renders row i's canonical entity key from the key fields' columns,
// as CompiledView.Key does from an event.
func (rd *reader) key(b *offline.Batch, keys []int, i int) string {
	if len(keys) == 1 {
		return vectorKey(&b.Fields[keys[0]], i)
	}
	rd.parts = rd.parts[:0]
	for _, k := range keys {
		rd.parts = append(rd.parts, vectorKey(&b.Fields[k], i))
	}
	return schemas.JoinKey(rd.parts)
}

func vectorKey(v *offline.Vector, i int) string {
	if v.Type == schemas.String && (i >= len(v.Null) || !v.Null[i]) {
		return v.Str[i]
	}
	return schemas.KeyPart(v.Value(i))
}

// appendVector appends row i's value of v in window's stored form, as
// window.AppendValue would append it boxed.
func appendVector(dst []byte, v *offline.Vector, i int) []byte {
	if i < len(v.Null) && v.Null[i] {
		return window.AppendNull(dst)
	}
	switch v.Type {
	case schemas.String:
		return window.AppendString(dst, v.Str[i])
	case schemas.Float64:
		return window.AppendFloat(dst, v.Float[i])
	case schemas.Bool:
		return window.AppendBool(dst, v.Bool[i])
	}
	return window.AppendInt(dst, v.Int[i])
}

// maxScalarSize bounds the stored form of a value other than a string.
const maxScalarSize = 1 + binary.MaxVarintLen64

// vectorSize bounds the stored form of row i's value of v.
func vectorSize(v *offline.Vector, i int) int {
	if v.Type == schemas.String && i < len(v.Str) {
		return maxScalarSize + len(v.Str[i])
	}
	return maxScalarSize
}

// valueSize bounds the stored form of v.
func valueSize(v any) int {
	if s, ok := v.(string); ok {
		return maxScalarSize + len(s)
	}
	return maxScalarSize
}
