// Package pit is the point-in-time engine: it joins a spine of (entity,
// time) rows to the feature values that were true at each row's time,
// reading the offline store's history through the time rule of package
// window, the same code that the online store's reads use.
package pit

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/featurestore/offline"
	"github.com/sluicehq/sluice/featurestore/window"
	"github.com/sluicehq/sluice/schemas"
)

// View is one feature view of a query: the features asked of it and each
// spine row's canonical entity key ("" for a row without one, which sees
// no events).
type View struct {
	CV    *featurestore.CompiledView
	Which []int    // indexes into CV.Specs
	Keys  []string // one per spine row
}

// Query asks for feature values at the rows of a spine.
type Query struct {
	Times []int64 // each row's time, µs since the Unix epoch
	Views []View
	Mode  window.Mode
}

// History reads a stream's offline history, calling fn with every row; fn
// must not keep the *Row, and is safe to call from several goroutines at
// once. The offline store holds each event id once, so the engine sees no
// duplicates.
type History func(ctx context.Context, stream string, schema *schemas.Schema, fn func(*offline.Row) error) error

// DefaultMemoryLimit is the history a run holds in memory (encoded) before
// it spills to disk.
const DefaultMemoryLimit = 2 << 30

// Options tunes a run.
type Options struct {
	// Workers evaluates entities in parallel (default: the CPUs).
	Workers int
	// MemoryLimit bounds the encoded history held in memory, in bytes
	// (default DefaultMemoryLimit; negative: no bound). Past it the history
	// is spilled to files in TempDir (default os.TempDir()), partitioned by
	// entity, and evaluated one partition at a time.
	MemoryLimit int64
	TempDir     string
	// Progress, when set, is told how many history rows were read and how
	// many spine rows were evaluated, as they advance; it may be called from
	// several goroutines at once.
	Progress func(historyRows, spineRows int64)
}

// Result holds, per query view and per feature asked of it, one value per
// spine row: int64, float64, bool, string, []any (last_n) or nil.
type Result [][][]any

// Run evaluates q. It reads each stream's history once, keeping only the
// events of entities that some spine row asks about.
func Run(ctx context.Context, q Query, history History, opts Options) (Result, error) {
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.MemoryLimit == 0 {
		opts.MemoryLimit = DefaultMemoryLimit
	}
	for i, v := range q.Views {
		if len(v.Keys) != len(q.Times) {
			return nil, fmt.Errorf("view %q: %d keys for %d spine rows", v.CV.View.Name, len(v.Keys), len(q.Times))
		}
		for _, w := range v.Which {
			if w < 0 || w >= len(v.CV.Specs) {
				return nil, fmt.Errorf("view %q: no feature %d", q.Views[i].CV.View.Name, w)
			}
		}
	}
	r := &run{q: q, opts: opts, res: make(Result, len(q.Views))}
	for i, v := range q.Views {
		r.res[i] = make([][]any, len(v.Which))
		for k := range v.Which {
			r.res[i][k] = make([]any, len(q.Times))
		}
	}
	byStream := map[string][]int{}
	var order []string
	for i, v := range q.Views {
		s := v.CV.Stream.Name
		if _, ok := byStream[s]; !ok {
			order = append(order, s)
		}
		byStream[s] = append(byStream[s], i)
	}
	for _, s := range order {
		if err := r.stream(ctx, history, s, byStream[s]); err != nil {
			return nil, err
		}
	}
	return r.res, nil
}

type run struct {
	q        Query
	opts     Options
	res      Result
	historyN atomic.Int64
	spineN   atomic.Int64
}

// entity is one entity of one view: its spine rows and its events.
type entity struct {
	rows []int32 // spine rows, sorted by time
	// events holds the entity's events encoded (time, arrival, seq, the
	// view's inputs), n of them: far smaller than decoded values, which
	// box every float; sweep decodes one entity at a time.
	events []byte
	n      int
	stripe uint8 // which lock guards events while history is read
	vi     int   // the query view
	idx    int32 // its place among the stream's entities, which picks its spill bucket
}

func (e *entity) add(t, arrival, seq int64, values []any) {
	b := binary.AppendVarint(e.events, t)
	b = binary.AppendVarint(b, arrival)
	b = binary.AppendVarint(b, seq)
	for _, v := range values {
		b = window.AppendValue(b, v)
	}
	e.events, e.n = b, e.n+1
}

// decode returns the entity's events, each with inputs values, and frees
// the encoded form.
func (e *entity) decode(inputs int) ([]window.Event, error) {
	d := window.NewDecoder(e.events)
	evs := make([]window.Event, e.n)
	vals := make([]any, e.n*inputs)
	for i := range evs {
		ev := &evs[i]
		ev.Time, ev.Arrival, ev.Seq = d.Varint(), d.Varint(), d.Varint()
		ev.Values = vals[i*inputs : (i+1)*inputs : (i+1)*inputs]
		for k := range ev.Values {
			ev.Values[k] = d.Value()
		}
	}
	e.events = nil
	return evs, d.Err()
}

// stream evaluates the views (indexes into q.Views) of one stream.
func (r *run) stream(ctx context.Context, history History, name string, views []int) error {
	var all []*entity
	ents := make([]map[string]*entity, len(views))
	for j, vi := range views {
		ents[j] = r.group(&r.q.Views[vi], vi)
		for _, e := range ents[j] {
			e.idx = int32(len(all))
			all = append(all, e)
		}
	}
	var schema *schemas.Schema
	for _, vi := range views {
		schema = r.q.Views[vi].CV.Stream.Schema
	}
	sp := newSpill(r.opts.MemoryLimit, r.opts.TempDir)
	defer sp.close()
	var locks [64]sync.Mutex // striped by entity, for concurrent readers
	err := history(ctx, name, schema, func(row *offline.Row) error {
		ev := schemas.Event{ID: row.EventID, Time: row.EventTime, Values: row.Values}
		for j, vi := range views {
			cv := r.q.Views[vi].CV
			key, values, pass := cv.Apply(&ev)
			if !pass || key == "" {
				continue
			}
			e := ents[j][key]
			if e == nil {
				continue // no spine row asks about this entity
			}
			mu := &locks[e.stripe]
			mu.Lock()
			before := len(e.events)
			e.add(row.EventTime, row.Arrival, window.SeqOf(row.Partition, row.Offset), values)
			grew := len(e.events) - before
			mu.Unlock()
			if err := sp.grew(grew, all, &locks); err != nil {
				return err
			}
		}
		if n := r.historyN.Add(1); n%65536 == 0 {
			r.progress()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read the offline history of stream %q: %w", name, err)
	}
	r.progress()
	if !sp.used {
		return r.evaluate(ctx, all)
	}
	// Part of the history is on disk: move the rest there too, then
	// evaluate one bucket of entities at a time.
	if err := sp.flushAll(all); err != nil {
		return err
	}
	for b := range spillBuckets {
		if err := sp.load(b, all); err != nil {
			return err
		}
		var bucket []*entity
		for i := b; i < len(all); i += spillBuckets {
			bucket = append(bucket, all[i])
		}
		if err := r.evaluate(ctx, bucket); err != nil {
			return err
		}
	}
	return nil
}

// group gathers a view's spine rows by entity key, each entity's rows in
// time order.
func (r *run) group(v *View, vi int) map[string]*entity {
	ents := map[string]*entity{}
	for i, k := range v.Keys {
		e := ents[k]
		if e == nil {
			e = &entity{stripe: uint8(len(ents) % 64), vi: vi}
			ents[k] = e
		}
		e.rows = append(e.rows, int32(i))
	}
	for _, e := range ents {
		slices.SortStableFunc(e.rows, func(a, b int32) int { return cmp.Compare(r.q.Times[a], r.q.Times[b]) })
	}
	return ents
}

// evaluate sweeps entities on the workers.
func (r *run) evaluate(ctx context.Context, ents []*entity) error {
	work := make(chan *entity, 256)
	g, gctx := errgroup.WithContext(ctx)
	for range r.opts.Workers {
		g.Go(func() error {
			outs := make([][]window.Value, len(r.q.Views))
			for e := range work {
				if outs[e.vi] == nil {
					outs[e.vi] = make([]window.Value, len(r.q.Views[e.vi].Which))
				}
				if err := r.sweep(e.vi, e, outs[e.vi]); err != nil {
					return err
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(work)
		for _, e := range ents {
			select {
			case work <- e:
			case <-gctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	err := g.Wait()
	r.progress()
	return err
}

func (r *run) progress() {
	if r.opts.Progress != nil {
		r.opts.Progress(r.historyN.Load(), r.spineN.Load())
	}
}
