package clickhouse

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/featurestore/offline"
	"github.com/sluicehq/sluice/schemas"
)

// Defaults of LoaderOptions.
const (
	DefaultInterval  = time.Second
	DefaultBatchRows = 64 << 10
	maxRetryDelay    = 30 * time.Second
)

// LoaderOptions configure a Loader. The zero value is usable.
type LoaderOptions struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Interval is how often the loader looks for new Parquet files
	// (default DefaultInterval).
	Interval time.Duration
	// BatchRows bounds the rows of one INSERT (default DefaultBatchRows).
	BatchRows int
}

// Loader copies the offline store's committed Parquet files into ClickHouse,
// every row exactly once, without relying on FINAL or on merges.
//
// The rows of the offline store are already unique by event id. The loader
// inserts the rows of one Kafka partition and UTC day (one date= directory)
// in offset order, in blocks that each fall in one partition of the table
// and so are written atomically, taking the files from a listing without
// holes (see stableFiles). The table therefore always holds, per Kafka partition and day,
// exactly the rows up to some offset: the largest one there. The loader reads
// those marks from ClickHouse when it starts and after any error, and inserts
// only rows above them, so a crash at any point re-inserts nothing and loses
// nothing.
//
// The marks assume one offline store feeds the database: two nodes whose
// offline stores hold rows of the same partition must not share it.
type Loader struct {
	client  *Client
	dir     string
	streams func() []*schemas.Schema
	opts    LoaderOptions
	log     *slog.Logger

	ensured map[string]int            // schema version each table was brought up to
	marks   map[string]map[mark]int64 // per stream; a stream missing is read from ClickHouse

	rows   *prometheus.CounterVec
	errors prometheus.Counter
}

// mark names one Kafka partition's rows of one UTC day.
type mark struct {
	partition int32
	day       int64 // days since the Unix epoch
}

// NewLoader returns a loader of the offline store in dir (the directory
// offline.Open was given) for the streams streams returns, with their
// current schemas.
func NewLoader(client *Client, dir string, streams func() []*schemas.Schema, opts LoaderOptions) *Loader {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	opts.Interval = cmp.Or(opts.Interval, DefaultInterval)
	opts.BatchRows = cmp.Or(opts.BatchRows, DefaultBatchRows)
	l := &Loader{
		client: client, dir: dir, streams: streams, opts: opts,
		log:     opts.Logger.With("component", "clickhouse"),
		ensured: map[string]int{},
		marks:   map[string]map[mark]int64{},
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_clickhouse_rows_total",
			Help: "Rows of the offline store inserted into ClickHouse, by stream.",
		}, []string{"stream"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_clickhouse_load_errors_total",
			Help: "Failed passes of the ClickHouse loader; each is retried.",
		}),
	}
	opts.Registerer.MustRegister(l.rows, l.errors)
	return l
}

// RegistryStreams returns the schemas of a registry's current streams, for
// NewLoader.
func RegistryStreams(reg *featurestore.Registry) func() []*schemas.Schema {
	return func() []*schemas.Schema {
		repo := reg.Repo()
		out := make([]*schemas.Schema, 0, len(repo.Streams))
		for _, s := range repo.Streams {
			out = append(out, s.Schema)
		}
		return out
	}
}

// Run loads new files every Interval until ctx is done, then returns nil.
// After an error it forgets what it knew, waits (longer after each failure,
// up to 30s) and starts over from what ClickHouse holds.
func (l *Loader) Run(ctx context.Context) error {
	delay := l.opts.Interval
	for {
		_, err := l.Sync(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			l.errors.Inc()
			l.log.Warn("loading the offline store into clickhouse failed; retrying", "in", delay, "err", err)
			clear(l.marks)
			clear(l.ensured)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		if err != nil {
			delay = min(2*delay, maxRetryDelay)
		} else {
			delay = l.opts.Interval
		}
	}
}

// Sync inserts every committed row ClickHouse lacks, once, and returns how
// many it inserted. It is not safe to call concurrently with itself or Run.
func (l *Loader) Sync(ctx context.Context) (int, error) {
	streams := l.streams()
	slices.SortFunc(streams, func(a, b *schemas.Schema) int { return cmp.Compare(a.Stream, b.Stream) })
	total := 0
	var errs []error
	for _, s := range streams {
		n, err := l.syncStream(ctx, s)
		total += n
		if err != nil {
			// An insert that failed may have been written all the same:
			// the next pass reads the marks from ClickHouse again.
			delete(l.marks, s.Stream)
			if ctx.Err() != nil {
				return total, ctx.Err()
			}
			errs = append(errs, fmt.Errorf("stream %s: %w", s.Stream, err))
		}
	}
	return total, errors.Join(errs...)
}

func (l *Loader) syncStream(ctx context.Context, s *schemas.Schema) (int, error) {
	if v, ok := l.ensured[s.Stream]; !ok || s.Version > v {
		if err := l.client.EnsureTable(ctx, s); err != nil {
			return 0, err
		}
		l.ensured[s.Stream] = s.Version
	}
	marks := l.marks[s.Stream]
	if marks == nil {
		var err error
		if marks, err = l.client.marks(ctx, s.Stream); err != nil {
			return 0, err
		}
		l.marks[s.Stream] = marks
	}
	files, err := stableFiles(l.dir, s.Stream)
	if err != nil {
		return 0, err
	}
	b := &batch{l: l, stream: s.Stream, marks: marks, added: map[mark]int64{}}
	for _, f := range files {
		if top, ok := marks[f.mark]; ok && f.last <= top {
			continue
		}
		rows, err := offline.ReadFile(f.path)
		if err != nil {
			return b.inserted, err
		}
		if err := b.add(ctx, f, rows); err != nil {
			return b.inserted, err
		}
	}
	return b.inserted, b.flush(ctx)
}

// batch gathers the rows of one partition and day, in offset order, up to
// BatchRows, and inserts them as one block.
type batch struct {
	l        *Loader
	stream   string
	marks    map[mark]int64
	added    map[mark]int64 // the largest offset added this pass, per mark
	mark     mark
	columns  string // the rows' column names, joined
	rows     []map[string]any
	inserted int
}

func (b *batch) add(ctx context.Context, f file, rows []map[string]any) error {
	top, seen := b.marks[f.mark]
	if added, ok := b.added[f.mark]; ok {
		top, seen = max(top, added), true
	}
	type keyed struct {
		offset int64
		row    map[string]any
	}
	sorted := make([]keyed, 0, len(rows))
	for _, r := range rows {
		o, ok := r[schemas.OffsetColumn].(int64)
		if !ok {
			return fmt.Errorf("%s: row without an int64 %s", f.path, schemas.OffsetColumn)
		}
		if !seen || o > top {
			sorted = append(sorted, keyed{o, r})
		}
	}
	slices.SortFunc(sorted, func(a, b keyed) int { return cmp.Compare(a.offset, b.offset) })
	fresh := rows[:0]
	for _, k := range sorted {
		fresh = append(fresh, k.row)
	}
	if len(fresh) == 0 {
		return nil
	}
	cols := columnKey(fresh[0])
	if len(b.rows) > 0 && (b.mark != f.mark || b.columns != cols) {
		if err := b.flush(ctx); err != nil {
			return err
		}
	}
	b.mark, b.columns = f.mark, cols
	b.added[f.mark] = sorted[len(sorted)-1].offset
	for len(fresh) > 0 {
		n := min(len(fresh), b.l.opts.BatchRows-len(b.rows))
		b.rows = append(b.rows, fresh[:n]...)
		fresh = fresh[n:]
		if len(b.rows) >= b.l.opts.BatchRows {
			if err := b.flush(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

func (b *batch) flush(ctx context.Context) error {
	if len(b.rows) == 0 {
		return nil
	}
	if err := b.l.client.Insert(ctx, b.stream, b.rows); err != nil {
		return err
	}
	b.marks[b.mark] = b.rows[len(b.rows)-1][schemas.OffsetColumn].(int64)
	b.inserted += len(b.rows)
	b.l.rows.WithLabelValues(b.stream).Add(float64(len(b.rows)))
	b.rows = nil
	return nil
}

// columnKey names a row's set of columns.
func columnKey(r map[string]any) string {
	names := make([]string, 0, len(r))
	for k := range r {
		names = append(names, k)
	}
	slices.Sort(names)
	return strings.Join(names, "\x00")
}

// marks reads, per partition and day, the largest offset a stream's table
// holds.
func (c *Client) marks(ctx context.Context, stream string) (map[mark]int64, error) {
	t, err := c.table(ctx, stream)
	if err != nil {
		return nil, err
	}
	q := fmt.Sprintf("SELECT %s, %s AS day, max(%s) FROM %s GROUP BY %[1]s, day",
		quote(schemas.PartitionColumn), dayExpr(schemas.EventTimeColumn, t.micros),
		quote(schemas.OffsetColumn), c.tableName(stream))
	rows, err := c.conn.Query(ctx, q)
	if err != nil {
		return nil, c.wrap(ctx, "read loaded offsets of "+stream, err)
	}
	defer rows.Close()
	out := map[mark]int64{}
	for rows.Next() {
		var m mark
		var top int64
		if err := rows.Scan(&m.partition, &m.day, &top); err != nil {
			return nil, fmt.Errorf("read loaded offsets of %s: %w", stream, err)
		}
		out[m] = top
	}
	if err := rows.Err(); err != nil {
		return nil, c.wrap(ctx, "read loaded offsets of "+stream, err)
	}
	return out, nil
}

// file is one committed Parquet file of the offline store.
type file struct {
	path        string
	mark        mark
	first, last int64
}

// stableFiles lists a stream's committed files as they were at one instant.
//
// At any instant the committed files of a partition and day hold every row
// committed so far: the offline sink renames a commit's files into place
// before the next commit, and a compaction renames its merged file into
// place before it deletes the files it replaces. But a directory listing
// that runs while files are renamed or deleted may see a newer file and miss
// an older one, or miss both a merged file and one it replaced: a hole, whose
// rows the loader would then skip for good. So the files are listed until
// two listings in a row agree: a file that exists between them and is missed
// by both would have to appear during the first and vanish during the
// second, and no file lives that briefly.
func stableFiles(dir, stream string) ([]file, error) {
	return stable(func() ([]file, error) { return listFiles(dir, stream) })
}

// maxListings bounds how often stable lists before it gives up for now.
const maxListings = 10

// stable lists with list until two listings in a row agree.
func stable(list func() ([]file, error)) ([]file, error) {
	prev, err := list()
	if err != nil {
		return nil, err
	}
	for range maxListings - 1 {
		next, err := list()
		if err != nil {
			return nil, err
		}
		if slices.EqualFunc(prev, next, func(a, b file) bool { return a.path == b.path }) {
			return next, nil
		}
		prev = next
	}
	return nil, fmt.Errorf("the offline store's files changed during each of %d listings", maxListings)
}

// listFiles lists a stream's committed files in the order of offline.Files:
// by day, partition and first offset.
func listFiles(dir, stream string) ([]file, error) {
	paths, err := offline.Files(dir, stream)
	if err != nil {
		return nil, err
	}
	out := make([]file, 0, len(paths))
	for _, p := range paths {
		f, err := parseFile(p)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// parseFile reads partition, day and offsets from a file's path:
// .../date=YYYY-MM-DD/part-p<partition>-<first>-<last>.parquet.
func parseFile(path string) (file, error) {
	date, ok := strings.CutPrefix(filepath.Base(filepath.Dir(path)), "date=")
	d, err := time.Parse(time.DateOnly, date)
	if !ok || err != nil {
		return file{}, fmt.Errorf("offline file %s: no date= directory", path)
	}
	name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(path), "part-p"), ".parquet")
	parts := strings.Split(name, "-")
	if len(parts) != 3 {
		return file{}, fmt.Errorf("offline file %s: name is not part-p<partition>-<first>-<last>.parquet", path)
	}
	p, err1 := strconv.ParseInt(parts[0], 10, 32)
	first, err2 := strconv.ParseInt(parts[1], 10, 64)
	last, err3 := strconv.ParseInt(parts[2], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return file{}, fmt.Errorf("offline file %s: %w", path, err)
	}
	return file{
		path:  path,
		mark:  mark{partition: int32(p), day: d.Unix() / 86400},
		first: first, last: last,
	}, nil
}
