package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/sluicehq/sluice/connectors/files"
	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/featurestore/offline"
	"github.com/sluicehq/sluice/schemas"
)

// DefaultSpineRows is how many spine rows a build joins at once unless
// BuildOptions.SpineRows says otherwise.
const DefaultSpineRows = 4 << 20

// unknownRows is the room a run of a spine of unknown length starts
// with; it grows as rows come.
const unknownRows = 64 << 10

// spine is a run of a spine's rows held in memory, column by column.
type spine struct {
	cols  []Column
	vecs  []Vector // per column, one value per row
	times []int64
	desc  string
	first int64 // how many rows of the spine come before these
}

// newSpine returns an empty run of rows after first others, with room for
// rows.
func newSpine(cols []Column, desc string, first int64, rows int) *spine {
	sp := &spine{cols: cols, vecs: make([]Vector, len(cols)), desc: desc, first: first}
	for i := range sp.vecs {
		sp.vecs[i].reserve(cols[i], rows)
	}
	sp.times = make([]int64, 0, rows)
	return sp
}

// add appends a row of values, one per column, as files.Spine.Next gives
// them, and its time.
func (sp *spine) add(row []any, t int64) error {
	for i, v := range row {
		if err := sp.vecs[i].add(sp.cols[i], v); err != nil {
			return fmt.Errorf("spine %s: row %d: column %q: %w", sp.desc, sp.first+int64(len(sp.times))+1, sp.cols[i].Name, err)
		}
	}
	sp.times = append(sp.times, t)
	return nil
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

// spineSource hands out a spine's rows in runs of at most a fixed number,
// so that a build holds one run at a time however long the spine.
type spineSource interface {
	// next returns the next run of rows, or io.EOF after the last.
	next() (*spine, error)
	columns() []Column
	describe() string
	close() error
}

// openSpine opens the spine file or stream of o, to be read in runs of
// o.SpineRows rows.
func openSpine(ctx context.Context, o BuildOptions, views map[string]*view) (spineSource, error) {
	keyTypes := map[string]schemas.Type{}
	for _, v := range views {
		for i, k := range v.cv.Entity.Keys {
			keyTypes[k] = v.cv.Entity.Types[i]
		}
	}
	rows := o.SpineRows
	if rows <= 0 {
		rows = DefaultSpineRows
	}
	switch {
	case o.SpineFile != "" && o.SpineStream != "":
		return nil, errors.New("give either a spine file or a spine stream, not both")
	case o.SpineFile != "":
		return openSpineFile(o.SpineFile, o.TimestampColumn, keyTypes, rows)
	case o.SpineStream != "":
		return openSpineStream(ctx, o, slices.Sorted(maps.Keys(keyTypes)), rows)
	}
	return nil, errors.New("no spine: give a spine file (--spine) or a stream and its label (--spine-stream, --label)")
}

// fileSpine reads a spine file.
type fileSpine struct {
	f    files.Spine
	cols []Column
	path string
	rows int   // per run
	left int64 // rows not yet read, when the file says; else -1
	done int64 // rows read
	row  []any
}

func openSpineFile(path, tsCol string, keyTypes map[string]schemas.Type, rows int) (*fileSpine, error) {
	f, err := files.OpenSpine(path, tsCol, keyTypes)
	if err != nil {
		return nil, err
	}
	s := &fileSpine{f: f, path: path, rows: rows, left: f.Rows()}
	for _, c := range f.Columns() {
		s.cols = append(s.cols, Column{Name: c.Name, Type: c.Type, Nullable: c.Nullable})
	}
	s.row = make([]any, len(s.cols))
	return s, nil
}

func (s *fileSpine) columns() []Column { return s.cols }
func (s *fileSpine) describe() string  { return s.path }
func (s *fileSpine) close() error      { return s.f.Close() }

func (s *fileSpine) next() (*spine, error) {
	size := min(s.rows, unknownRows) // a CSV spine's length is not known
	if s.left >= 0 {
		size = int(min(int64(s.rows), s.left))
	}
	sp := newSpine(s.cols, s.path, s.done, size)
	ti := s.f.TimeIndex()
	for len(sp.times) < s.rows {
		err := s.f.Next(s.row)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if s.row[ti] == nil {
			return nil, fmt.Errorf("spine %s: row %d has no timestamp", s.path, s.done+int64(len(sp.times))+1)
		}
		if err := sp.add(s.row, s.row[ti].(int64)); err != nil {
			return nil, err
		}
	}
	if len(sp.times) == 0 {
		return nil, io.EOF
	}
	s.left -= int64(len(sp.times))
	s.done += int64(len(sp.times))
	return sp, nil
}

// streamSpine makes a row of every event of a stream in the offline store:
// its entity key fields, its event time and the label field. A goroutine
// reads the stream and fills the next run while the last one is joined.
type streamSpine struct {
	cols   []Column
	desc   string
	runs   chan *spine
	err    error // the reader's, once runs is closed
	cancel context.CancelFunc
}

func openSpineStream(ctx context.Context, o BuildOptions, keys []string, rows int) (*streamSpine, error) {
	st := o.Repo.Streams[o.SpineStream]
	if st == nil {
		return nil, fmt.Errorf("spine stream %q: unknown stream", o.SpineStream)
	}
	if o.Label == "" {
		return nil, fmt.Errorf("spine stream %q: name its label field with --label", st.Name)
	}
	sc := st.Schema
	var idx []int
	s := &streamSpine{desc: "stream:" + st.Name, runs: make(chan *spine)}
	for _, name := range append(keys, o.Label) {
		i := sc.Index(name)
		if i < 0 {
			return nil, fmt.Errorf("spine stream %q has no field %q (its fields are the schema's)", st.Name, name)
		}
		f := sc.Fields[i]
		s.cols = append(s.cols, Column{Name: f.Name, Type: f.Type, Nullable: f.Nullable})
		idx = append(idx, i)
	}
	s.cols = append(s.cols, Column{Name: files.DefaultTimestampColumn, Type: schemas.Timestamp})
	ctx, s.cancel = context.WithCancel(ctx)
	go func() {
		defer close(s.runs)
		s.err = s.read(ctx, o.OfflineDir, sc, idx, rows)
	}()
	return s, nil
}

// read sends the stream's rows down s.runs, rows at a time.
func (s *streamSpine) read(ctx context.Context, dir string, sc *schemas.Schema, idx []int, rows int) error {
	var done int64
	sp := newSpine(s.cols, s.desc, done, 0)
	send := func() error {
		select {
		case s.runs <- sp:
			done += int64(len(sp.times))
			sp = newSpine(s.cols, s.desc, done, 0)
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	values := make([]any, len(s.cols))
	err := offline.Scan(ctx, dir, sc.Stream, sc, offline.HistoryOptions{}, func(row *offline.Row) error {
		for c, i := range idx {
			values[c] = row.Values[i]
		}
		values[len(idx)] = row.EventTime
		if err := sp.add(values, row.EventTime); err != nil {
			return err
		}
		if len(sp.times) == rows {
			return send()
		}
		return nil
	})
	if err == nil && len(sp.times) > 0 {
		err = send()
	}
	if err != nil {
		return fmt.Errorf("read spine stream %q: %w", sc.Stream, err)
	}
	return nil
}

func (s *streamSpine) columns() []Column { return s.cols }
func (s *streamSpine) describe() string  { return s.desc }

func (s *streamSpine) next() (*spine, error) {
	sp, ok := <-s.runs
	if !ok {
		if s.err != nil {
			return nil, s.err
		}
		return nil, io.EOF
	}
	return sp, nil
}

func (s *streamSpine) close() error {
	s.cancel()
	for range s.runs {
	}
	return nil
}
