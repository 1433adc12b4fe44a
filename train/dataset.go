package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"
	"github.com/segmentio/ksuid"

	"github.com/sluicehq/sluice/schemas"
)

// Defaults of WriterOptions.
const (
	DefaultRowsPerPart   = 1 << 20
	DefaultRowGroupRows  = 64 << 10
	DefaultProfileSample = 100_000
)

// The files of a dataset directory besides its parts.
const (
	ManifestFile = "manifest.json"
	ProfileFile  = "profile.json"
)

// The modes of a training set: the point-in-time rule alone, or also
// requiring that data had arrived, as the online store would have served it.
const (
	ModeEventTime = "event_time"
	ModeAsServed  = "as_served"
)

// ErrClosed is returned by a Writer used after Close or Abort.
var ErrClosed = errors.New("dataset writer is closed")

// Column is one dataset column.
type Column struct {
	Name string `json:"name"`
	// Type is the column's type, or with List its elements' type.
	Type     schemas.Type `json:"type"`
	Nullable bool         `json:"nullable"`
	// List makes the column a list of Type (the output of last_n); its
	// elements may be null.
	List bool `json:"list"`
	// Feature marks a feature column, which the profile describes in full;
	// the other columns (entity keys, timestamp, labels) are only counted.
	Feature bool `json:"feature"`
}

// FeatureRef names the feature a column holds.
type FeatureRef struct {
	View    string `json:"view"`
	Feature string `json:"feature"`
	Version int    `json:"version"` // the view's definition version
	Column  string `json:"column"`
}

// FileInfo describes one part file of a dataset.
type FileInfo struct {
	Path   string `json:"path"` // relative to the dataset directory
	Rows   int64  `json:"rows"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"` // lower-case hex
}

// Manifest is DIR/manifest.json: what a dataset is and which files hold it.
type Manifest struct {
	ID        string    `json:"id"` // a ksuid
	CreatedAt time.Time `json:"created_at"`
	Mode      string    `json:"mode"`  // ModeEventTime or ModeAsServed
	Spine     string    `json:"spine"` // the spine file's path, or "stream:<name>"
	Label     string    `json:"label,omitempty"`
	// Features names the feature behind each feature column.
	Features []FeatureRef `json:"features"`
	Columns  []Column     `json:"columns"`
	Rows     int64        `json:"rows"`
	// SourceOffsets holds, per stream and partition, the next offset after
	// those the dataset's features were computed from.
	SourceOffsets map[string]map[int32]int64 `json:"source_offsets"`
	Files         []FileInfo                 `json:"files"`
}

// WriterOptions tunes a Writer; zero fields take their defaults.
type WriterOptions struct {
	// RowsPerPart bounds the rows of one part file (default
	// DefaultRowsPerPart).
	RowsPerPart int
	// RowGroupRows bounds the rows of one Parquet row group, which a reader
	// holds in memory at once (default DefaultRowGroupRows).
	RowGroupRows int
	// ProfileSample bounds the values kept per numeric feature to compute
	// its bin edges (default DefaultProfileSample; 8 bytes each).
	ProfileSample int
	// Workers bounds the goroutines that encode and profile the columns of
	// a block at once (default GOMAXPROCS).
	Workers int
	// Now is the clock that dates a manifest (default time.Now).
	Now func() time.Time
}

func (o *WriterOptions) setDefaults() error {
	for _, f := range []struct {
		name string
		v    *int
		def  int
	}{
		{"RowsPerPart", &o.RowsPerPart, DefaultRowsPerPart},
		{"RowGroupRows", &o.RowGroupRows, DefaultRowGroupRows},
		{"ProfileSample", &o.ProfileSample, DefaultProfileSample},
		{"Workers", &o.Workers, runtime.GOMAXPROCS(0)},
	} {
		switch {
		case *f.v < 0:
			return fmt.Errorf("writer options: %s is %d (use a positive number, or 0 for the default %d)", f.name, *f.v, f.def)
		case *f.v == 0:
			*f.v = f.def
		}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// writeBatch is how many rows Write collects before it writes them.
const writeBatch = 4096

// zstdLevel is the zstd level of the parts' pages.
const zstdLevel = zstd.SpeedFastest

// Writer writes a dataset directory. It is not safe for concurrent use.
type Writer struct {
	dir     string
	created bool // NewWriter made dir
	cols    []Column
	opts    WriterOptions
	schema  *parquet.Schema
	codec   *zstd.Codec
	enc     []columnEncoder
	prof    *profiler

	part    *partFile  // the part being written, or nil
	files   []FileInfo // the parts finished
	parts   []string   // the names of every part created, for Abort
	rows    int64      // the rows taken, pending ones included
	pending Block      // the rows Write took and has not written yet
	err     error      // the first write failure; the writer is unusable after it
	closed  bool
}

// NewWriter starts a dataset in dir with the given columns, creating dir if
// needed. It refuses a dir that holds anything, so a dataset never mixes with
// other files.
func NewWriter(dir string, cols []Column, opts WriterOptions) (*Writer, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, fmt.Errorf("dataset %s: %w", dir, err)
	}
	if err := validateColumns(cols); err != nil {
		return nil, fmt.Errorf("dataset %s: %w", dir, err)
	}
	created, err := prepareDir(dir)
	if err != nil {
		return nil, err
	}
	pending := Block{Cols: make([]Vector, len(cols))}
	for i, c := range cols {
		pending.Cols[i].reserve(c, writeBatch)
	}
	return &Writer{
		dir:     dir,
		created: created,
		cols:    slices.Clone(cols),
		opts:    opts,
		schema:  parquetSchema(cols),
		codec:   &zstd.Codec{Level: zstdLevel},
		enc:     newColumnEncoders(cols),
		prof:    newProfiler(cols, opts.ProfileSample),
		pending: pending,
	}, nil
}

func validateColumns(cols []Column) error {
	if len(cols) == 0 {
		return errors.New("no columns (declare at least one)")
	}
	seen := make(map[string]bool, len(cols))
	for i, c := range cols {
		switch {
		case c.Name == "":
			return fmt.Errorf("column %d has no name", i)
		case seen[c.Name]:
			return fmt.Errorf("column %q is declared twice", c.Name)
		}
		seen[c.Name] = true
		switch c.Type {
		case schemas.String, schemas.Int64, schemas.Float64, schemas.Bool, schemas.Timestamp:
		default:
			return fmt.Errorf("column %q: unknown type %v (use string, int64, float64, bool or timestamp)", c.Name, c.Type)
		}
	}
	return nil
}

// prepareDir makes sure dir exists and is empty, and reports whether it
// created it.
func prepareDir(dir string) (created bool, err error) {
	if dir == "" {
		return false, errors.New("no dataset directory given (name a new output directory)")
	}
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return false, fmt.Errorf("create dataset directory: %w", err)
		}
		return true, nil
	case err != nil:
		return false, fmt.Errorf("open dataset directory: %w", err)
	case len(entries) > 0:
		return false, fmt.Errorf("dataset directory %s is not empty (it holds %s): choose a new output directory or empty this one",
			dir, entries[0].Name())
	}
	return false, nil
}

// Write adds one row: one value per column in column order, nil for null.
// Values are string, int64, float64 and bool for the types of the same
// names, int64 microseconds since the Unix epoch for timestamp, and []any
// of such values (or nil) for a list column. A row with a value of the
// wrong type is refused, naming the column, and nothing of it is written.
//
// Write collects rows into a Block, which it writes as WriteBlock does once
// it holds writeBatch rows; WriteBlock writes many rows faster.
func (w *Writer) Write(row []any) error {
	switch {
	case w.closed:
		return ErrClosed
	case w.err != nil:
		return w.err
	case len(row) != len(w.cols):
		return fmt.Errorf("write row %d: got %d values for the %d columns", w.rows, len(row), len(w.cols))
	}
	b := &w.pending
	for i, c := range w.cols {
		if err := b.Cols[i].add(c, row[i]); err != nil {
			for k := range i {
				b.Cols[k].truncate(w.cols[k], b.Rows)
			}
			return fmt.Errorf("write row %d: column %q: %w", w.rows, c.Name, err)
		}
	}
	b.Rows++
	w.rows++
	if b.Rows >= writeBatch {
		return w.flushPending()
	}
	return nil
}

// WriteBlock adds the rows of b, in order after those written before. It
// checks the whole block first: a block with a vector of the wrong length, a
// null in a column that is not nullable or a list item of the wrong type is
// refused, naming the row and column, and nothing of it is written. The
// writer does not keep b: the caller may reuse it once WriteBlock returns.
func (w *Writer) WriteBlock(b Block) error {
	switch {
	case w.closed:
		return ErrClosed
	case w.err != nil:
		return w.err
	}
	if err := b.check(w.cols, w.rows); err != nil {
		return err
	}
	if err := w.flushPending(); err != nil {
		return err
	}
	w.rows += int64(b.Rows)
	if err := w.writeBlock(&b); err != nil {
		return w.fail(err)
	}
	return nil
}

// flushPending writes the rows Write collected.
func (w *Writer) flushPending() error {
	b := &w.pending
	if b.Rows == 0 {
		return nil
	}
	err := w.writeBlock(b)
	for i, c := range w.cols {
		b.Cols[i].truncate(c, 0)
	}
	b.Rows = 0
	if err != nil {
		return w.fail(err)
	}
	return nil
}

func (w *Writer) fail(err error) error {
	w.err = fmt.Errorf("dataset %s: %w", w.dir, err)
	return w.err
}

// Close finishes the last part and writes profile.json, then manifest.json.
// It takes the caller's manifest and fills in Columns, Rows and Files, and ID,
// CreatedAt and Mode where they are empty; it returns the manifest written.
// A manifest Close refuses (an unknown mode, a feature naming no feature
// column) leaves the writer open, so the caller can fix it and call Close
// again.
func (w *Writer) Close(m Manifest) (Manifest, error) {
	switch {
	case w.closed:
		return Manifest{}, ErrClosed
	case w.err != nil:
		return Manifest{}, w.err
	}
	if err := w.completeManifest(&m); err != nil {
		return Manifest{}, fmt.Errorf("dataset %s: manifest: %w", w.dir, err)
	}
	if err := w.flushPending(); err != nil {
		return Manifest{}, err
	}
	if w.part == nil && len(w.files) == 0 {
		// An empty dataset still has one part, so readers learn its schema.
		if err := w.openPart(); err != nil {
			return Manifest{}, w.fail(err)
		}
	}
	if w.part != nil {
		if err := w.finishPart(); err != nil {
			return Manifest{}, w.fail(err)
		}
	}
	m.Rows, m.Files = w.rows, slices.Clone(w.files)
	profile, err := json.MarshalIndent(w.prof.profile(w.rows, w.opts.Workers), "", "  ")
	if err != nil {
		return Manifest{}, w.fail(fmt.Errorf("encode profile: %w", err))
	}
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return Manifest{}, w.fail(fmt.Errorf("encode manifest: %w", err))
	}
	if err := writeFileAtomic(w.dir, ProfileFile, append(profile, '\n')); err != nil {
		return Manifest{}, w.fail(err)
	}
	if err := writeFileAtomic(w.dir, ManifestFile, append(manifest, '\n')); err != nil {
		return Manifest{}, w.fail(err)
	}
	w.closed = true
	return m, nil
}

// completeManifest checks the caller's part of m and fills in the rest but
// Rows and Files.
func (w *Writer) completeManifest(m *Manifest) error {
	switch m.Mode {
	case "":
		m.Mode = ModeEventTime
	case ModeEventTime, ModeAsServed:
	default:
		return fmt.Errorf("unknown mode %q (use %s or %s)", m.Mode, ModeEventTime, ModeAsServed)
	}
	features := map[string]bool{}
	for _, c := range w.cols {
		features[c.Name] = c.Feature
	}
	for _, f := range m.Features {
		if !features[f.Column] {
			return fmt.Errorf("feature %s:%s names column %q, which is not a feature column of the dataset", f.View, f.Feature, f.Column)
		}
	}
	if m.ID == "" {
		m.ID = ksuid.New().String()
	}
	if m.CreatedAt.IsZero() {
		m.CreatedAt = w.opts.Now()
	}
	m.CreatedAt = m.CreatedAt.UTC()
	if m.Features == nil {
		m.Features = []FeatureRef{}
	}
	if m.SourceOffsets == nil {
		m.SourceOffsets = map[string]map[int32]int64{}
	}
	m.Columns = slices.Clone(w.cols)
	return nil
}

// Abort stops writing and removes what the writer wrote, and dir too if
// NewWriter created it. It does nothing after Close.
func (w *Writer) Abort() error {
	if w.closed {
		return nil
	}
	w.closed = true
	var errs []error
	if w.part != nil {
		w.part.stop()
		errs = append(errs, w.part.file.Close())
		w.part = nil
	}
	for _, name := range append(w.parts, tempName(ProfileFile), tempName(ManifestFile)) {
		if err := os.Remove(filepath.Join(w.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if w.created {
		errs = append(errs, os.Remove(w.dir))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("abort dataset %s: %w", w.dir, err)
	}
	return nil
}

// ReadManifest reads DIR/manifest.json.
func ReadManifest(dir string) (Manifest, error) {
	var m Manifest
	if err := readJSON(dir, ManifestFile, &m); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

// readJSON decodes DIR/name into v.
func readJSON(dir, name string, v any) error {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read dataset %s: no %s, so the directory is not a finished dataset (build it again)", dir, name)
	}
	if err != nil {
		return fmt.Errorf("read dataset: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("read dataset %s: %s: %w", dir, name, err)
	}
	return nil
}

func tempName(name string) string { return "." + name + ".tmp" }

// writeFileAtomic writes DIR/name through a temporary file renamed into
// place, and makes it durable.
func writeFileAtomic(dir, name string, data []byte) error {
	temp := filepath.Join(dir, tempName(name))
	f, err := os.OpenFile(temp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(temp, filepath.Join(dir, name))
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		_ = os.Remove(temp)
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// syncDir makes a directory's entries durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// hashWriter passes writes on and keeps their count and SHA-256.
type hashWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (hw *hashWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	hw.h.Write(p[:n])
	hw.n += int64(n)
	return n, err
}

// parquetSchema returns the Parquet schema of a dataset's parts, its columns
// in declaration order.
func parquetSchema(cols []Column) *parquet.Schema {
	group := parquet.Group{}
	for _, c := range cols {
		node := schemas.ParquetNode(c.Type)
		if c.List {
			node = parquet.List(parquet.Optional(node))
		}
		if c.Nullable {
			node = parquet.Optional(node)
		}
		group[c.Name] = node
	}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	return parquet.NewSchema("dataset", schemas.OrderedGroup(group, names))
}
