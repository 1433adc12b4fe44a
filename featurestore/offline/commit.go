package offline

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/dgraph-io/badger/v4"
	"github.com/parquet-go/parquet-go"

	"github.com/sluicehq/sluice/schemas"
)

// Points of a commit where tests stop it as a crash would.
const (
	crashBeforeCommit = "before-commit" // temporary files written and synced
	crashAfterCommit  = "after-commit"  // Badger transaction committed
	crashMidRename    = "mid-rename"    // first file renamed
)

// errCrash is returned where a test stopped a commit as a crash would; the
// sink then does nothing more but close.
var errCrash = errors.New("offline store: simulated crash")

func (s *Sink) crashAt(point string) bool {
	if s.opts.crash != nil && s.opts.crash(point) {
		s.crashed = true
		return true
	}
	return false
}

// unit is what one commit writes: a prefix of each of some partitions'
// buffered rows, and the partitions' new next offsets.
type unit struct {
	chunks []chunk
	next   map[partKey]int64
	rows   int
}

type chunk struct {
	key  partKey
	rows []pendingRow
}

// output is one file a commit writes.
type output struct {
	stream      string
	rows        []pendingRow
	temp, final string // relative to the store's directory
}

// Flush writes every buffered row to the offline store and commits it,
// together with the offsets consumed. When it returns nil, a crash loses
// nothing flushed. A large buffer is committed in several commits of at most
// Options.CommitRows rows; if one fails, those before it stay committed and
// the rest stay buffered for the next Flush.
func (s *Sink) Flush(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrClosed
	case s.crashed:
		return errCrash
	}
	if s.pendingRenames {
		renames, err := loadPending(s.db)
		if err != nil {
			return fmt.Errorf("flush offline store: %w", err)
		}
		if err := s.applyRenames(renames); err != nil {
			return fmt.Errorf("flush offline store: finish previous commit: %w", err)
		}
	}
	limit := s.opts.CommitRows
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("flush offline store: %w", err)
		}
		u := s.nextUnit(limit)
		if u == nil {
			return nil
		}
		committed, err := s.commit(u)
		if committed {
			s.release(u)
		}
		if errors.Is(err, badger.ErrTxnTooBig) && u.rows > 1 {
			limit = u.rows / 2
			continue
		}
		if err != nil {
			return fmt.Errorf("flush offline store: %w", err)
		}
	}
}

// nextUnit plans the next commit: up to limit rows, taken from the partitions
// in order, each partition's rows in offset order. It returns nil when there
// is nothing to commit.
func (s *Sink) nextUnit(limit int) *unit {
	u := &unit{next: map[partKey]int64{}}
	for _, k := range s.sortedParts() {
		if u.rows >= limit {
			break
		}
		p := s.parts[k]
		cmpOffset := func(a, b pendingRow) int { return cmp.Compare(a.Offset, b.Offset) }
		if !slices.IsSortedFunc(p.rows, cmpOffset) {
			slices.SortStableFunc(p.rows, cmpOffset)
		}
		n := min(len(p.rows), limit-u.rows)
		next := p.next
		if n < len(p.rows) {
			next = p.rows[n].Offset
		}
		if n > 0 {
			u.chunks = append(u.chunks, chunk{key: k, rows: p.rows[:n]})
			u.rows += n
		}
		if next > s.committed[k] {
			u.next[k] = next
		}
	}
	if u.rows == 0 && len(u.next) == 0 {
		return nil
	}
	return u
}

// release drops a committed unit from the buffer.
func (s *Sink) release(u *unit) {
	for _, c := range u.chunks {
		p := s.parts[c.key]
		for _, r := range c.rows {
			delete(s.ids[c.key.stream], r.EventID)
		}
		p.rows = slices.Clone(p.rows[len(c.rows):])
		s.buffered -= len(c.rows)
	}
	for k, next := range u.next {
		s.committed[k] = next
	}
	for k, p := range s.parts {
		if len(p.rows) == 0 && p.next <= s.committed[k] {
			delete(s.parts, k)
		}
	}
}

// commit writes and commits one unit. committed reports whether its Badger
// transaction happened: then its rows are stored even if err is set, and
// what remains (renames) is finished by the next Flush or Open.
func (s *Sink) commit(u *unit) (committed bool, err error) {
	outs, err := s.writeTemps(u)
	if err != nil {
		return false, err
	}
	if s.crashAt(crashBeforeCommit) {
		return false, errCrash
	}
	renames := make([]rename, len(outs))
	for i, o := range outs {
		renames[i] = rename{Temp: o.temp, Final: o.final}
	}
	if err := s.db.Update(func(txn *badger.Txn) error { return s.record(txn, u, renames) }); err != nil {
		s.removeTemps(outs)
		return false, fmt.Errorf("commit %d rows: %w", u.rows, err)
	}
	if s.crashAt(crashAfterCommit) {
		return false, errCrash
	}
	if len(renames) > 0 {
		s.pendingRenames = true
		if err := s.applyRenames(renames); err != nil {
			return true, err
		}
	}
	s.log.Debug("committed", "rows", u.rows, "files", len(outs))
	return true, nil
}

// record writes a unit's commit into txn: its event ids, its partitions'
// next offsets and its renames still to do.
func (s *Sink) record(txn *badger.Txn, u *unit, renames []rename) error {
	for _, c := range u.chunks {
		for _, r := range c.rows {
			if err := txn.Set(idKey(c.key.stream, r.EventID), nil); err != nil {
				return err
			}
		}
	}
	for k, next := range u.next {
		if err := txn.Set(offsetKey(k), binary.BigEndian.AppendUint64(nil, uint64(next))); err != nil {
			return err
		}
	}
	if len(renames) == 0 {
		return nil
	}
	v, err := json.Marshal(renames)
	if err != nil {
		return err
	}
	return txn.Set([]byte(pendingKey), v)
}

// writeTemps writes a unit's files under their temporary names, one per
// partition and date, and syncs their directories.
func (s *Sink) writeTemps(u *unit) ([]output, error) {
	var outs []output
	for _, c := range u.chunks {
		byDate := map[string][]pendingRow{}
		for _, r := range c.rows {
			d := dateDirName(r.EventTime)
			byDate[d] = append(byDate[d], r)
		}
		for _, d := range slices.Sorted(maps.Keys(byDate)) {
			outs = append(outs, s.plan(c.key, d, byDate[d]))
		}
	}
	dirs := map[string]bool{}
	for i := range outs {
		if err := s.writeTemp(&outs[i]); err != nil {
			s.removeTemps(outs[:i+1])
			return nil, err
		}
		dirs[filepath.Dir(filepath.Join(s.dir, outs[i].temp))] = true
	}
	for d := range dirs {
		if err := syncDir(d); err != nil {
			s.removeTemps(outs)
			return nil, err
		}
	}
	return outs, nil
}

// plan names the file of one partition's rows of one date and sorts them.
func (s *Sink) plan(k partKey, date string, rows []pendingRow) output {
	first, last := rows[0].Offset, rows[0].Offset
	for _, r := range rows {
		first, last = min(first, r.Offset), max(last, r.Offset)
	}
	slices.SortFunc(rows, func(a, b pendingRow) int {
		return cmp.Or(cmp.Compare(a.Key, b.Key), cmp.Compare(a.EventTime, b.EventTime), cmp.Compare(a.Offset, b.Offset))
	})
	final := filepath.Join(streamsDir, k.stream, date, fileName(k.partition, first, last))
	return output{
		stream: k.stream,
		rows:   rows,
		final:  final,
		temp:   filepath.Join(filepath.Dir(final), tempName(filepath.Base(final))),
	}
}

// writeTemp writes one file under its temporary name and syncs it.
func (s *Sink) writeTemp(o *output) error {
	final := filepath.Join(s.dir, o.final)
	if _, err := os.Lstat(final); err == nil {
		return fmt.Errorf("write %s: the file already exists, so offsets %s were stored before; "+
			"check the store's state in %s", final, offsetRange(o.final), filepath.Join(s.dir, stateDir))
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("write %s: %w", final, err)
	}
	path := filepath.Join(s.dir, o.temp)
	if err := ensureDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("write %s: %w", final, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("write %s: %w", final, err)
	}
	err = s.writeParquet(f, o)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", final, err)
	}
	return nil
}

// writeRowsBatch is how many rows writeParquet converts at a time.
const writeRowsBatch = 1024

// writeParquet writes a file's rows in the stream's newest schema.
func (s *Sink) writeParquet(f *os.File, o *output) error {
	target := s.fileSchema(o.stream)
	w := parquet.NewWriter(f, target.parquet,
		parquet.Compression(&parquet.Zstd),
		parquet.MaxRowsPerRowGroup(int64(s.opts.RowGroupRows)),
		parquet.KeyValueMetadata("sluice.stream", o.stream),
		parquet.KeyValueMetadata("sluice.schema_version", strconv.Itoa(target.schema.Version)))
	conv := converter{to: target.schema}
	width := len(target.schema.Fields) + len(schemas.MetaColumns())
	values := make(parquet.Row, 0, writeRowsBatch*width)
	rows := make([]parquet.Row, 0, writeRowsBatch)
	for start := 0; start < len(o.rows); start += writeRowsBatch {
		batch := o.rows[start:min(start+writeRowsBatch, len(o.rows))]
		values, rows = values[:0], rows[:0]
		for _, r := range batch {
			vals, err := conv.convert(r.schema, r.Values)
			if err != nil {
				return err
			}
			values, err = schemas.AppendParquetRow(values, target.schema, vals, schemas.ParquetMeta{
				EventID: r.EventID, EventTime: r.EventTime, ArrivalTime: r.Arrival,
				Partition: r.Partition, Offset: r.Offset,
			})
			if err != nil {
				return fmt.Errorf("offset %d: %w", r.Offset, err)
			}
		}
		for i := range batch {
			rows = append(rows, values[i*width:(i+1)*width])
		}
		if _, err := w.WriteRows(rows); err != nil {
			return err
		}
	}
	return w.Close()
}

// removeTemps deletes the temporary files of a commit that did not happen;
// Open deletes any it misses.
func (s *Sink) removeTemps(outs []output) {
	if s.crashed {
		return
	}
	for _, o := range outs {
		if err := os.Remove(filepath.Join(s.dir, o.temp)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("remove uncommitted file", "err", err)
		}
	}
}

func offsetRange(final string) string {
	p, first, last, ok := parseFileName(filepath.Base(final))
	if !ok {
		return final
	}
	return fmt.Sprintf("%d-%d of partition %d", first, last, p)
}

// converter converts rows of older schema versions to the version files are
// written with, matching fields by name.
type converter struct {
	to    *schemas.Schema
	from  *schemas.Schema
	index []int // per field of to, its index in from or -1
}

func (c *converter) convert(from *schemas.Schema, values []any) ([]any, error) {
	if from == c.to {
		return values, nil
	}
	if from != c.from {
		c.from, c.index = from, make([]int, len(c.to.Fields))
		for i, f := range c.to.Fields {
			c.index[i] = from.Index(f.Name)
		}
	}
	out := make([]any, len(c.to.Fields))
	for i, f := range c.to.Fields {
		j := c.index[i]
		switch {
		case j >= 0:
			out[i] = values[j]
			if x, ok := out[i].(int64); ok && f.Type == schemas.Float64 {
				out[i] = float64(x) // widened
			}
		case f.Default != nil:
			out[i] = f.Default
		case f.Nullable:
			out[i] = nil
		default:
			return nil, &schemas.FieldError{Stream: c.to.Stream, Field: f.Name, Problem: fmt.Sprintf(
				"version %d added the field without a default and not nullable, so rows of version %d have no value for it",
				c.to.Version, from.Version)}
		}
	}
	return out, nil
}
