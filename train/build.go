package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"sync"

	"github.com/sluicehq/sluice/connectors/files"
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
	// Progress, when set, hears how many history rows were read and spine
	// rows evaluated.
	Progress func(historyRows, spineRows int64)
	Writer   WriterOptions
}

// spine is a spine held in memory, column by column.
type spine struct {
	cols  []Column
	vecs  []Vector // per column, one value per row
	times []int64
	desc  string
}

// add appends a row of values, one per column, as files.Spine.Next gives
// them.
func (sp *spine) add(row []any) error {
	for i, v := range row {
		if err := sp.vecs[i].add(sp.cols[i], v); err != nil {
			return fmt.Errorf("spine %s: row %d: column %q: %w", sp.desc, len(sp.times)+1, sp.cols[i].Name, err)
		}
	}
	return nil
}

// reserve makes room for n rows.
func (sp *spine) reserve(n int) {
	if sp.vecs == nil {
		sp.vecs = make([]Vector, len(sp.cols))
	}
	for i := range sp.vecs {
		sp.vecs[i].reserve(sp.cols[i], n)
	}
	sp.times = slices.Grow(sp.times, n)
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
	sp, err := loadSpine(ctx, o, views)
	if err != nil {
		return Manifest{}, err
	}
	q := pit.Query{Times: sp.times, Mode: o.Mode}
	for _, name := range order {
		v := views[name]
		keys, err := sp.keys(v.cv.Entity)
		if err != nil {
			return Manifest{}, err
		}
		q.Views = append(q.Views, pit.View{CV: v.cv, Which: v.which, Keys: keys})
	}
	offsets := offsets{m: map[string]map[int32]int64{}}
	history := func(ctx context.Context, stream string, schema *schemas.Schema, workers int, fields []int, fn func(*offline.Batch) error) error {
		opts := historyRange(q)
		opts.Workers, opts.Fields, opts.NoEventID = workers, fields, true
		return offline.ScanBatches(ctx, o.OfflineDir, stream, schema, opts, func(b *offline.Batch) error {
			offsets.note(stream, b)
			return fn(b)
		})
	}
	res, err := pit.Run(ctx, q, history, pit.Options{Workers: o.Workers, Progress: o.Progress, MemoryLimit: o.MemoryLimit, TempDir: o.TempDir})
	if err != nil {
		return Manifest{}, err
	}
	return write(o, sp, q, res, offsets.m)
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

// keys renders each row's canonical key of an entity from its key columns.
func (sp *spine) keys(ent *featurestore.Entity) ([]string, error) {
	idx := make([]int, len(ent.Keys))
	for i, k := range ent.Keys {
		idx[i] = slices.IndexFunc(sp.cols, func(c Column) bool { return c.Name == k })
		if idx[i] < 0 {
			return nil, fmt.Errorf("spine %s: no column %q, the key of entity %q", sp.desc, k, ent.Name)
		}
	}
	out := make([]string, len(sp.times))
	parts := make([]string, len(idx))
	for row := range out {
		missing := false
		for i, c := range idx {
			v := &sp.vecs[c]
			missing = missing || v.null(row)
			if sp.cols[c].Type == schemas.String {
				parts[i] = v.Str[row]
			} else {
				parts[i] = schemas.KeyPart(v.Int[row])
			}
		}
		if !missing {
			out[row] = schemas.JoinKey(parts)
		}
	}
	return out, nil
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

// loadSpine reads the spine file or stream into memory.
func loadSpine(ctx context.Context, o BuildOptions, views map[string]*view) (*spine, error) {
	keyTypes := map[string]schemas.Type{}
	for _, v := range views {
		for i, k := range v.cv.Entity.Keys {
			keyTypes[k] = v.cv.Entity.Types[i]
		}
	}
	switch {
	case o.SpineFile != "" && o.SpineStream != "":
		return nil, errors.New("give either a spine file or a spine stream, not both")
	case o.SpineFile != "":
		return spineFromFile(o.SpineFile, o.TimestampColumn, keyTypes)
	case o.SpineStream != "":
		return spineFromStream(ctx, o, slices.Sorted(maps.Keys(keyTypes)))
	}
	return nil, errors.New("no spine: give a spine file (--spine) or a stream and its label (--spine-stream, --label)")
}

func spineFromFile(path, tsCol string, keyTypes map[string]schemas.Type) (*spine, error) {
	f, err := files.OpenSpine(path, tsCol, keyTypes)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sp := &spine{desc: path}
	for _, c := range f.Columns() {
		sp.cols = append(sp.cols, Column{Name: c.Name, Type: c.Type, Nullable: c.Nullable})
	}
	sp.reserve(max(0, int(f.Rows())))
	ti := f.TimeIndex()
	row := make([]any, len(sp.cols))
	for {
		err := f.Next(row)
		if errors.Is(err, io.EOF) {
			return sp, nil
		}
		if err != nil {
			return nil, err
		}
		if row[ti] == nil {
			return nil, fmt.Errorf("spine %s: row %d has no timestamp", path, len(sp.times)+1)
		}
		if err := sp.add(row); err != nil {
			return nil, err
		}
		sp.times = append(sp.times, row[ti].(int64))
	}
}

// spineFromStream makes a row of every event of a stream: its entity key
// fields, its event time and the label field.
func spineFromStream(ctx context.Context, o BuildOptions, keys []string) (*spine, error) {
	st := o.Repo.Streams[o.SpineStream]
	if st == nil {
		return nil, fmt.Errorf("spine stream %q: unknown stream", o.SpineStream)
	}
	if o.Label == "" {
		return nil, fmt.Errorf("spine stream %q: name its label field with --label", st.Name)
	}
	sc := st.Schema
	var idx []int
	sp := &spine{desc: "stream:" + st.Name}
	for _, name := range append(keys, o.Label) {
		i := sc.Index(name)
		if i < 0 {
			return nil, fmt.Errorf("spine stream %q has no field %q (its fields are the schema's)", st.Name, name)
		}
		f := sc.Fields[i]
		sp.cols = append(sp.cols, Column{Name: f.Name, Type: f.Type, Nullable: f.Nullable})
		idx = append(idx, i)
	}
	sp.cols = append(sp.cols, Column{Name: files.DefaultTimestampColumn, Type: schemas.Timestamp})
	sp.reserve(0)
	values := make([]any, len(sp.cols))
	err := offline.Scan(ctx, o.OfflineDir, st.Name, sc, offline.HistoryOptions{}, func(row *offline.Row) error {
		for c, i := range idx {
			values[c] = row.Values[i]
		}
		values[len(idx)] = row.EventTime
		if err := sp.add(values); err != nil {
			return err
		}
		sp.times = append(sp.times, row.EventTime)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read spine stream %q: %w", st.Name, err)
	}
	return sp, nil
}
