package offline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/sluicehq/sluice/schemas"
)

// Compaction merges the small files a day of one partition collects, one per
// flush, into few large ones. Each compacted file holds a run of consecutive
// files of one (stream, date, partition), so its name, the smallest first
// and the largest last offset of its rows, still says which offsets it holds
// and never overlaps another file of its date and partition.
//
// A compaction swaps files as a commit does: the merged file is written under
// a temporary name and synced; one Badger transaction records "replace these
// files by that one"; the file is renamed, the replaced files deleted, and
// the record cleared. Open finishes a recorded compaction and deletes the
// temporary file of one that was never recorded. Between the rename and the
// last delete, a few system calls, an engine listing *.parquet sees the rows
// of the replaced files twice; Files (and so ReadStream) never does: it
// leaves out a file whose offsets lie inside another file's of the same date
// and partition, which only a compaction's replaced file can.

// Defaults of CompactOptions.
const (
	DefaultCompactGrace   = time.Hour
	DefaultCompactMaxRows = 5_000_000
	defaultCompactFanIn   = 256
)

// CompactOptions configure compaction. The zero value is usable.
type CompactOptions struct {
	// Grace is how long after a day ends (midnight UTC) CompactClosedDays
	// waits before compacting it, so that late events land first (default
	// DefaultCompactGrace). Events later still are written as usual and
	// compacted by the next run.
	Grace time.Duration
	// MaxRows bounds the rows of one compacted file (default
	// DefaultCompactMaxRows). A day of a partition holding more rows is
	// compacted into several files, each a run of consecutive offsets.
	MaxRows int

	// fanIn bounds how many files one merge pass reads at once (default
	// defaultCompactFanIn); more take several passes through scratch files.
	fanIn int
}

func (o CompactOptions) validate() error {
	if o.Grace < 0 {
		return fmt.Errorf("offline store: Compact.Grace is %v; use a positive duration or 0 for the default", o.Grace)
	}
	if o.MaxRows < 0 {
		return fmt.Errorf("offline store: Compact.MaxRows is %d; use a positive number or 0 for the default", o.MaxRows)
	}
	return nil
}

func (o CompactOptions) withDefaults() CompactOptions {
	o.Grace = cmp.Or(o.Grace, DefaultCompactGrace)
	o.MaxRows = cmp.Or(o.MaxRows, DefaultCompactMaxRows)
	o.fanIn = cmp.Or(o.fanIn, defaultCompactFanIn)
	o.fanIn = max(o.fanIn, 2)
	return o
}

// CompactStats says what a compaction did.
type CompactStats struct {
	Files    int           // small files merged away
	Written  int           // files written in their place
	Rows     int64         // rows rewritten
	Bytes    int64         // bytes of the files written
	Duration time.Duration // wall time of the whole call
}

func (c *CompactStats) add(o CompactStats) {
	c.Files += o.Files
	c.Written += o.Written
	c.Rows += o.Rows
	c.Bytes += o.Bytes
}

// ErrUnknownSchema is returned by Compact for a stream whose schema the sink
// has not seen: it needs the schema's entity key to sort rows.
var ErrUnknownSchema = errors.New("offline store: stream schema unknown to the sink")

// AddSchema makes a stream's schema known to the sink without a row, as Add
// does, so that Compact can merge the stream's files before any of its rows
// arrive after a restart. An older version than the one known is ignored.
func (s *Sink) AddSchema(schema *schemas.Schema) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !validStream(schema.Stream) {
		panic(fmt.Sprintf("offline store: stream name %q cannot name a directory", schema.Stream))
	}
	if cur := s.schemas[schema.Stream]; cur == nil || schema.Version > cur.Version {
		s.schemas[schema.Stream] = schema
	}
}

// CompactClosedDays compacts, for every stream whose schema the sink knows,
// every date that ended at least Options.Compact.Grace before now and holds
// more than one file of a partition. A stream whose schema the sink has not
// seen yet is left for a later call. It stops at the first error but keeps
// what it compacted before.
func (s *Sink) CompactClosedDays(ctx context.Context, now time.Time) (CompactStats, error) {
	start := time.Now()
	var total CompactStats
	streams, err := os.ReadDir(filepath.Join(s.dir, streamsDir))
	if err != nil {
		return total, fmt.Errorf("compact closed days: %w", err)
	}
	grace := s.opts.Compact.withDefaults().Grace
	for _, st := range streams {
		if !st.IsDir() || !validStream(st.Name()) {
			continue
		}
		days, err := closedDays(streamDir(s.dir, st.Name()), now.Add(-grace))
		if err != nil {
			return total, fmt.Errorf("compact closed days: %w", err)
		}
		for _, day := range days {
			got, err := s.Compact(ctx, st.Name(), day)
			total.add(got)
			if errors.Is(err, ErrUnknownSchema) {
				s.log.Info("compaction waits for the stream's schema", "stream", st.Name())
				break
			}
			if err != nil {
				total.Duration = time.Since(start)
				return total, err
			}
		}
	}
	total.Duration = time.Since(start)
	return total, nil
}

// closedDays returns the dates under a stream's directory that ended at or
// before cutoff.
func closedDays(root string, cutoff time.Time) ([]time.Time, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var out []time.Time
	for _, e := range entries {
		name, ok := strings.CutPrefix(e.Name(), datePrefix)
		if !e.IsDir() || !ok {
			continue
		}
		day, err := time.Parse(time.DateOnly, name)
		if err != nil {
			continue
		}
		if !day.Add(24 * time.Hour).After(cutoff) {
			out = append(out, day)
		}
	}
	return out, nil
}

// Compact merges the files of one stream's day (the UTC date of day) into as
// few files as Options.Compact.MaxRows allows, per partition, rows sorted by
// entity key, event time and offset. A partition with a single file is left
// alone. It can run while the sink adds and flushes rows, even to the same
// day; it holds the sink's lock only to swap files, not while it merges.
// Compactions run one at a time.
func (s *Sink) Compact(ctx context.Context, stream string, day time.Time) (CompactStats, error) {
	start := time.Now()
	stats, err := s.compact(ctx, stream, day)
	stats.Duration = time.Since(start)
	if err != nil {
		return stats, fmt.Errorf("compact stream %q date %s: %w", stream, day.UTC().Format(time.DateOnly), err)
	}
	if stats.Files > 0 {
		s.log.Info("compacted", "stream", stream, "date", day.UTC().Format(time.DateOnly),
			"files", stats.Files, "written", stats.Written, "rows", stats.Rows, "duration", stats.Duration)
	}
	return stats, nil
}

func (s *Sink) compact(ctx context.Context, stream string, day time.Time) (CompactStats, error) {
	var stats CompactStats
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	if err := s.finishCompactions(); err != nil {
		return stats, err
	}
	target, err := s.compactTarget(stream)
	if err != nil {
		return stats, err
	}
	opts := s.opts.Compact.withDefaults()
	rel := filepath.Join(streamsDir, stream, dateDirName(day.UnixMicro()))
	parts, err := listDay(filepath.Join(s.dir, rel))
	if err != nil {
		return stats, err
	}
	for _, p := range slices.Sorted(maps.Keys(parts)) {
		for _, run := range planRuns(parts[p], int64(opts.MaxRows)) {
			if len(run) < 2 {
				continue
			}
			if err := ctx.Err(); err != nil {
				return stats, err
			}
			got, err := s.compactRun(ctx, target, opts, rel, p, run)
			stats.add(got)
			if err != nil {
				return stats, fmt.Errorf("partition %d: %w", p, err)
			}
		}
	}
	return stats, nil
}

// compactTarget returns the schema compacted files are written with: the
// stream's newest, as for a flush.
func (s *Sink) compactTarget(stream string) (fileSchema, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return fileSchema{}, ErrClosed
	case s.crashed:
		return fileSchema{}, errCrash
	case s.schemas[stream] == nil:
		return fileSchema{}, fmt.Errorf("%w; pass it to AddSchema, or Add a row of the stream, first", ErrUnknownSchema)
	}
	return s.fileSchema(stream), nil
}

// dayFile is one committed file of a date directory.
type dayFile struct {
	name        string
	first, last int64
	rows        int64
	version     int // the schema version it was written with
}

// listDay returns a date directory's committed files per partition, each
// partition's in offset order. It leaves out files a compaction replaced
// but has not deleted yet.
func listDay(dir string) (map[int32][]dayFile, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if _, _, _, ok := parseFileName(e.Name()); ok && e.Type().IsRegular() {
			names = append(names, filepath.Join(dir, e.Name()))
		}
	}
	out := map[int32][]dayFile{}
	for _, path := range withoutReplaced(names) {
		p, first, last, _ := parseFileName(filepath.Base(path))
		rows, version, err := fileFooter(path)
		if err != nil {
			return nil, err
		}
		out[p] = append(out[p], dayFile{name: filepath.Base(path), first: first, last: last, rows: rows, version: version})
	}
	for _, files := range out {
		slices.SortFunc(files, func(a, b dayFile) int { return cmp.Compare(a.first, b.first) })
	}
	return out, nil
}

// fileFooter reads a file's row count and schema version from its footer.
func fileFooter(path string) (rows int64, version int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	pf, err := parquet.OpenFile(f, st.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return 0, 0, fmt.Errorf("read %s: %w", path, err)
	}
	v, _ := pf.Lookup("sluice.schema_version")
	version, err = strconv.Atoi(v)
	if err != nil {
		return 0, 0, fmt.Errorf("read %s: schema version %q: not a number", path, v)
	}
	return pf.NumRows(), version, nil
}

// planRuns splits a partition's files of a day, in offset order, into runs
// of consecutive files of at most maxRows rows together; a file of maxRows
// rows or more is a run of its own.
func planRuns(files []dayFile, maxRows int64) [][]dayFile {
	var runs [][]dayFile
	var cur []dayFile
	var rows int64
	for _, f := range files {
		if len(cur) > 0 && rows+f.rows > maxRows {
			runs = append(runs, cur)
			cur, rows = nil, 0
		}
		cur = append(cur, f)
		rows += f.rows
	}
	if len(cur) > 0 {
		runs = append(runs, cur)
	}
	return runs
}

// compactRun merges one run of files of a date directory (rel, relative to
// the store) into one file and swaps it in.
func (s *Sink) compactRun(ctx context.Context, target fileSchema, opts CompactOptions, rel string, p int32, run []dayFile) (CompactStats, error) {
	rec := compaction{
		Final: filepath.Join(rel, fileName(p, run[0].first, run[len(run)-1].last)),
	}
	rec.Temp = filepath.Join(rel, tempName(filepath.Base(rec.Final)))
	var want int64
	inputs := make([]string, len(run))
	for i, f := range run {
		if f.version > target.schema.Version {
			return CompactStats{}, fmt.Errorf("%s has schema version %d, newer than version %d known to the sink; "+
				"pass the newest schema to AddSchema", f.name, f.version, target.schema.Version)
		}
		rec.Inputs = append(rec.Inputs, filepath.Join(rel, f.name))
		inputs[i] = filepath.Join(s.dir, rec.Inputs[i])
		want += f.rows
	}
	temp := filepath.Join(s.dir, rec.Temp)
	m := merger{target: target, rowGroupRows: s.opts.RowGroupRows, fanIn: opts.fanIn}
	rows, size, err := m.mergeFiles(ctx, inputs, temp)
	if err == nil && rows != want {
		err = fmt.Errorf("merged %d rows from files holding %d", rows, want)
	}
	if err == nil {
		err = syncDir(filepath.Dir(temp))
	}
	if err != nil {
		s.removeScratch(temp)
		return CompactStats{}, fmt.Errorf("merge into %s: %w", rec.Final, err)
	}
	if err := s.swap(rec); err != nil {
		return CompactStats{}, err
	}
	return CompactStats{Files: len(run), Written: 1, Rows: rows, Bytes: size}, nil
}

// removeScratch deletes a file that no commit or compaction recorded,
// unless a test stopped the sink as a crash would; Open deletes any it
// misses.
func (s *Sink) removeScratch(path string) {
	s.mu.Lock()
	crashed := s.crashed
	s.mu.Unlock()
	if crashed {
		return
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("remove scratch file", "err", err)
	}
}
