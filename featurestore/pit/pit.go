// Package pit is the point-in-time engine: it joins a spine of (entity,
// time) rows to the feature values that were true at each row's time,
// reading the offline store's history through the time rule of package
// window, the same code that the online store's reads use.
package pit

import (
	"cmp"
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
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

// History reads a stream's offline history on workers goroutines,
// calling fn with batches of rows (offline.ScanBatches); each batch's
// Worker says which goroutine read it. fn must not keep the batch. cols
// says what the engine reads of each row; it never reads event ids. The
// offline store holds each event id once, so the engine sees no
// duplicates.
type History func(ctx context.Context, stream string, schema *schemas.Schema, workers int, cols Columns, fn func(*offline.Batch) error) error

// Columns says what of a stream's history a run reads (for
// offline.HistoryOptions' Fields and NoArrival).
type Columns struct {
	// Fields are the schema fields (indexes) read, nil for all of them.
	Fields []int
	// Arrival says whether arrival times are read (as_served); without
	// them, batches may come without Arrival.
	Arrival bool
}

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
		r.res[i] = make([]*Column, len(v.Which))
		for k, w := range v.Which {
			r.res[i][k] = newColumn(&v.CV.Specs[w], len(q.Times))
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

// stream evaluates the views (indexes into q.Views) of one stream.
func (r *run) stream(ctx context.Context, history History, name string, views []int) error {
	var all []*entity
	ents := make([]byKey, len(views))
	for j, vi := range views {
		ents[j] = r.group(&r.q.Views[vi], vi)
		for _, e := range ents[j].ents {
			e.idx = int32(len(all))
			all = append(all, e)
		}
	}
	var schema *schemas.Schema
	for _, vi := range views {
		schema = r.q.Views[vi].CV.Stream.Schema
	}
	workers := r.opts.Workers
	chunks := make([]chunk, len(all)*workers)
	for i, e := range all {
		e.chunks = chunks[i*workers : (i+1)*workers : (i+1)*workers]
	}
	arenas := make([]*arena, workers)
	readers := make([]reader, workers)
	for w := range readers {
		arenas[w] = &arena{}
		readers[w] = newReader(r.q.Views, views, ents, w, arenas[w])
	}
	sp := newSpill(r.opts.MemoryLimit, r.opts.TempDir, arenas)
	defer sp.close()
	cols := Columns{Fields: readFields(readers[0].views), Arrival: r.q.Mode == window.AsServed}
	err := history(ctx, name, schema, workers, cols, func(b *offline.Batch) error {
		rd := &readers[b.Worker]
		sp.mu[b.Worker].Lock()
		grew := rd.read(b)
		sp.mu[b.Worker].Unlock()
		if err := sp.grew(b.Worker, grew, all); err != nil {
			return err
		}
		r.historyN.Add(int64(b.Len))
		r.progress()
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

// packed copies keys into one string, so that keys next to each other in
// the slice are next to each other in memory.
func packed(keys []string) []string {
	all := strings.Join(keys, "")
	out := make([]string, len(keys))
	at := 0
	for i, k := range keys {
		out[i] = all[at : at+len(k)]
		at += len(k)
	}
	return out
}

// group gathers a view's spine rows by entity key ("" for rows without
// one, which see no events). The entities come in key order, and side by
// side in memory: files keep entities sorted by key, so the history
// readers' lookups and appends walk them nearly in sequence, neighbours
// have their events side by side in the arenas, and a sweep in this order
// reads memory nearly in sequence. Each entity's rows are in time order.
func (r *run) group(v *View, vi int) byKey {
	index := map[string]int32{}
	var keys []string
	var counts []int32
	of := make([]int32, len(v.Keys)) // each row's entity, in order of first sight
	for i, k := range v.Keys {
		e, ok := index[k]
		if !ok {
			e = int32(len(keys))
			index[k] = e
			keys, counts = append(keys, k), append(counts, 0)
		}
		of[i] = e
		counts[e]++
	}
	order := make([]int32, len(keys)) // entities in key order
	for e := range order {
		order[e] = int32(e)
	}
	slices.SortFunc(order, func(a, b int32) int { return strings.Compare(keys[a], keys[b]) })
	rank := make([]int32, len(keys))
	sorted := make([]string, len(keys))
	for x, e := range order {
		rank[e], sorted[x] = int32(x), keys[e]
	}
	// Rows by entity, each entity's in spine order, then time order.
	starts := make([]int32, len(keys)+1)
	for x, e := range order {
		starts[x+1] = starts[x] + counts[e]
	}
	rows := make([]int32, len(v.Keys))
	next := slices.Clone(starts[:len(keys)])
	for i, e := range of {
		x := rank[e]
		rows[next[x]] = int32(i)
		next[x]++
	}
	flat := make([]entity, len(keys))
	out := byKey{keys: packed(sorted), ents: make([]*entity, len(keys))}
	for x := range flat {
		e := &flat[x]
		e.vi, e.rows = vi, rows[starts[x]:starts[x+1]:starts[x+1]]
		slices.SortStableFunc(e.rows, func(a, b int32) int { return cmp.Compare(r.q.Times[a], r.q.Times[b]) })
		out.ents[x] = e
	}
	return out
}

// evaluate sweeps entities on the workers.
func (r *run) evaluate(ctx context.Context, ents []*entity) error {
	work := make(chan *entity, 256)
	g, gctx := errgroup.WithContext(ctx)
	for range r.opts.Workers {
		g.Go(func() error {
			// Each worker reuses one state and one output row per view.
			sw := make([]*sweeper, len(r.q.Views))
			for e := range work {
				if sw[e.vi] == nil {
					sw[e.vi] = r.newSweeper(e.vi)
				}
				if err := sw[e.vi].sweep(e); err != nil {
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
