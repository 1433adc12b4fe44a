package train

import (
	"context"
	"errors"
	"io"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/featurestore/offline"
	"github.com/sluicehq/sluice/featurestore/pit"
	"github.com/sluicehq/sluice/featurestore/window"
	"github.com/sluicehq/sluice/schemas"
)

// BuildOptions says which training set to build.
type BuildOptions struct {
	Repo *featurestore.Repo
	// Features ("view:feature", "view:*") or Service selects the features.
	Features []string
	Service  string
	Mode     window.Mode
	// SpineFile is a CSV or Parquet spine; TimestampColumn names its
	// timestamp column ("" means "timestamp").
	SpineFile       string
	TimestampColumn string
	// SpineStream makes every event of a stream a row at its own event
	// time, with Label (a field of the stream) as its label.
	SpineStream string
	Label       string
	// OfflineDir is the offline store (<data_dir>/offline).
	OfflineDir string
	Out        string
	Workers    int
	// MemoryLimit and TempDir bound the history held in memory and say
	// where the rest spills (pit.Options).
	MemoryLimit int64
	TempDir     string
	// SpineRows bounds the spine rows joined at once (default
	// DefaultSpineRows): a longer spine is joined in runs of that many rows,
	// each reading the history again, so that memory stays bounded however
	// long the spine.
	SpineRows int
	// Progress, when set, hears how many history rows were read and spine
	// rows evaluated.
	Progress func(historyRows, spineRows int64)
	Writer   WriterOptions
}

// Build joins a spine with features through the point-in-time engine and
// writes the training set to o.Out.
func Build(ctx context.Context, o BuildOptions) (Manifest, error) {
	refs, err := o.Repo.Select(o.Features, o.Service)
	if err != nil {
		return Manifest{}, err
	}
	views, order, err := compileViews(o.Repo, refs)
	if err != nil {
		return Manifest{}, err
	}
	src, err := openSpine(ctx, o, views)
	if err != nil {
		return Manifest{}, err
	}
	defer src.close()
	// The first run is read before the dataset's directory is made, so
	// that a spine that cannot be read leaves nothing behind.
	sp, err := src.next()
	if err != nil && !errors.Is(err, io.EOF) {
		return Manifest{}, err
	}
	bd := &build{o: o, offsets: offsets{m: map[string]map[int32]int64{}}}
	for _, name := range order {
		bd.views = append(bd.views, views[name])
	}
	cols, frefs := datasetColumns(src.columns(), bd.views)
	if bd.w, err = NewWriter(o.Out, cols, o.Writer); err != nil {
		return Manifest{}, err
	}
	for sp != nil {
		if err := bd.join(ctx, sp); err != nil {
			_ = bd.w.Abort()
			return Manifest{}, err
		}
		if sp, err = src.next(); errors.Is(err, io.EOF) {
			sp = nil
		} else if err != nil {
			_ = bd.w.Abort()
			return Manifest{}, err
		}
	}
	m := Manifest{Mode: o.Mode.String(), Spine: src.describe(), Label: o.Label, Features: frefs, SourceOffsets: bd.offsets.m}
	return bd.w.Close(m)
}

// build is a training set being built, one run of spine rows at a time.
type build struct {
	o       BuildOptions
	views   []*view
	w       *Writer
	offsets offsets
	history atomic.Int64 // history rows read by the runs so far
}

// join joins a run of spine rows with the features, reading the history
// once, and writes the rows.
func (bd *build) join(ctx context.Context, sp *spine) error {
	if sp.first > 0 {
		// The last run's history and values are garbage now: collect them
		// before this run reads the history again, rather than let the
		// heap grow to twice its size first.
		runtime.GC()
	}
	q := pit.Query{Times: sp.times, Mode: bd.o.Mode}
	for _, v := range bd.views {
		keys, err := sp.keys(v.cv.Entity)
		if err != nil {
			return err
		}
		q.Views = append(q.Views, pit.View{CV: v.cv, Which: v.which, Keys: keys})
	}
	before := bd.history.Load()
	history := func(ctx context.Context, stream string, schema *schemas.Schema, workers int, cols pit.Columns, fn func(*offline.Batch) error) error {
		opts := historyRange(q)
		opts.Workers, opts.Fields, opts.NoEventID, opts.NoArrival = workers, cols.Fields, true, !cols.Arrival
		return offline.ScanBatches(ctx, bd.o.OfflineDir, stream, schema, opts, func(b *offline.Batch) error {
			bd.offsets.note(stream, b)
			bd.history.Add(int64(b.Len))
			return fn(b)
		})
	}
	opts := pit.Options{Workers: bd.o.Workers, MemoryLimit: bd.o.MemoryLimit, TempDir: bd.o.TempDir}
	if bd.o.Progress != nil {
		opts.Progress = func(h, r int64) { bd.o.Progress(before+h, sp.first+r) }
	}
	res, err := pit.Run(ctx, q, history, opts)
	if err != nil {
		return err
	}
	return writeRun(bd.w, sp, res)
}

// view is one feature view of a build and the features asked of it.
type view struct {
	cv    *featurestore.CompiledView
	which []int
}

func compileViews(repo *featurestore.Repo, refs []featurestore.FeatureRef) (map[string]*view, []string, error) {
	views := map[string]*view{}
	var order []string
	for _, r := range refs {
		v := views[r.View]
		if v == nil {
			cv, err := featurestore.Compile(repo, r.View)
			if err != nil {
				return nil, nil, err
			}
			v = &view{cv: cv}
			views[r.View] = v
			order = append(order, r.View)
		}
		if !slices.Contains(v.which, r.Feature) {
			v.which = append(v.which, r.Feature)
		}
	}
	return views, order, nil
}

// historyRange bounds the history a query can see: nothing at or after
// its latest row, and, when every feature looks back a bounded time,
// nothing older than that before its earliest row.
func historyRange(q pit.Query) offline.HistoryOptions {
	var opts offline.HistoryOptions
	if len(q.Times) == 0 {
		return opts
	}
	lo, hi := slices.Min(q.Times), slices.Max(q.Times)
	opts.To = hi
	var back int64
	for _, v := range q.Views {
		for _, s := range v.CV.Specs {
			if _, bounded := s.Lower(0); !bounded {
				return opts
			}
		}
		back = max(back, v.CV.Layout.Retention)
	}
	if lo > math.MinInt64+back {
		opts.From = lo - back
	}
	return opts
}

// offsets tracks the next offset after the history rows read, per stream
// and partition; batches come from several goroutines at once.
type offsets struct {
	mu sync.Mutex
	m  map[string]map[int32]int64
}

func (o *offsets) note(stream string, b *offline.Batch) {
	// A batch is one file's, so of one partition as a rule: find the
	// bound of each partition in it first, then merge them under the lock.
	var bounds []partitionBound
	for i, p := range b.Partition {
		k := slices.IndexFunc(bounds, func(pb partitionBound) bool { return pb.partition == p })
		if k < 0 {
			bounds = append(bounds, partitionBound{partition: p})
			k = len(bounds) - 1
		}
		bounds[k].next = max(bounds[k].next, b.Offset[i]+1)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m[stream] == nil {
		o.m[stream] = map[int32]int64{}
	}
	for _, pb := range bounds {
		o.m[stream][pb.partition] = max(o.m[stream][pb.partition], pb.next)
	}
}

type partitionBound struct {
	partition int32
	next      int64
}
