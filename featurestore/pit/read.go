package pit

import (
	"github.com/sluicehq/sluice/featurestore/offline"
	"github.com/sluicehq/sluice/featurestore/window"
	"github.com/sluicehq/sluice/schemas"
)

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
	v    *View
	ents map[string]*entity
	// direct views read their inputs and key straight from the batch's
	// columns (CompiledView.Direct); others box each row and run Apply.
	direct       bool
	inputs, keys []int
	// lastKey and last remember the entity of the previous row: a file
	// holds each entity's rows together, so most rows skip the map.
	lastKey string
	last    *entity
}

func newReader(qv []View, views []int, ents []map[string]*entity, worker int, a *arena) reader {
	rd := reader{worker: worker, arena: a}
	for j, vi := range views {
		v := &qv[vi]
		inputs, keys, direct := v.CV.Direct()
		rd.views = append(rd.views, readView{v: v, ents: ents[j], direct: direct, inputs: inputs, keys: keys})
	}
	return rd
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
	for i := range b.Len {
		e := rv.entity(rd.key(b, rv.keys, i))
		if e == nil {
			continue
		}
		a := rd.arena
		a.start(b.EventTime[i], b.Arrival[i], window.SeqOf(b.Partition[i], b.Offset[i]))
		for _, f := range rv.inputs {
			a.ev = appendVector(a.ev, &b.Fields[f], i)
		}
		grew += a.add(&e.chunks[rd.worker])
	}
	return grew
}

func (rd *reader) readApplied(rv *readView, b *offline.Batch) int {
	if len(rd.values) != len(b.Fields) {
		rd.values = make([]any, len(b.Fields))
	}
	grew := 0
	for i := range b.Len {
		for f := range b.Fields {
			rd.values[f] = b.Fields[f].Value(i)
		}
		ev := schemas.Event{ID: b.EventID[i], Time: b.EventTime[i], Values: rd.values}
		key, values, pass := rv.v.CV.Apply(&ev)
		if !pass {
			continue
		}
		e := rv.entity(key)
		if e == nil {
			continue
		}
		a := rd.arena
		a.start(b.EventTime[i], b.Arrival[i], window.SeqOf(b.Partition[i], b.Offset[i]))
		for _, v := range values {
			a.ev = window.AppendValue(a.ev, v)
		}
		grew += a.add(&e.chunks[rd.worker])
	}
	return grew
}

// entity returns the entity of key, or nil when no spine row asks about
// it or the key is empty.
func (rv *readView) entity(key string) *entity {
	if key == "" {
		return nil
	}
	if key != rv.lastKey {
		rv.lastKey, rv.last = key, rv.ents[key]
	}
	return rv.last
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
