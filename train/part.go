package train

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/parquet-go/parquet-go"
)

// partFile is a part being written. Its Parquet writer runs on a goroutine
// of its own, so that converting the next rows overlaps encoding and
// compressing the last ones; two row batches take turns.
type partFile struct {
	name string
	file *os.File
	out  *hashWriter
	pw   *parquet.Writer
	rows int64
	jobs chan *rowBatch // to the encoder
	free chan *rowBatch // back from it, written
	done chan error     // the encoder's first error, once jobs is closed
}

// rowBatch is rows converted for Parquet, held as one run of values.
type rowBatch struct {
	values parquet.Row
	ends   []int // where each row ends in values
	rows   []parquet.Row
	err    error // from writing the batch
}

func (b *rowBatch) add(row parquet.Row) {
	b.values = append(b.values, row...)
	b.ends = append(b.ends, len(b.values))
}

func (b *rowBatch) write(pw *parquet.Writer) error {
	b.rows = b.rows[:0]
	start := 0
	for _, end := range b.ends {
		b.rows = append(b.rows, b.values[start:end])
		start = end
	}
	_, err := pw.WriteRows(b.rows)
	clear(b.rows)
	b.values, b.ends = b.values[:0], b.ends[:0]
	return err
}

func (w *Writer) openPart() error {
	name := fmt.Sprintf("part-%05d.parquet", len(w.files))
	f, err := os.OpenFile(filepath.Join(w.dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("create part: %w", err)
	}
	w.parts = append(w.parts, name)
	out := &hashWriter{w: f, h: sha256.New()}
	p := &partFile{
		name: name,
		file: f,
		out:  out,
		pw: parquet.NewWriter(out, w.schema,
			parquet.Compression(&parquet.Zstd),
			parquet.MaxRowsPerRowGroup(int64(w.opts.RowGroupRows))),
		jobs: make(chan *rowBatch),
		free: make(chan *rowBatch, 2),
		done: make(chan error, 1),
	}
	p.free <- w.spare
	w.spare = nil
	go p.encode()
	w.part = p
	return nil
}

// encode writes the batches it is handed until jobs closes.
func (p *partFile) encode() {
	var first error
	for b := range p.jobs {
		if first == nil {
			first = b.write(p.pw)
		} else {
			b.values, b.ends = b.values[:0], b.ends[:0]
		}
		b.err = first
		p.free <- b
	}
	p.done <- first
}

// flush hands the buffered rows to the part's encoder and takes the other
// batch back, reporting an error its last write met.
func (w *Writer) flush() error {
	if len(w.cur.ends) == 0 {
		return nil
	}
	w.part.jobs <- w.cur
	w.cur = <-w.part.free
	if w.cur.err != nil {
		return fmt.Errorf("write %s: %w", w.part.name, w.cur.err)
	}
	return nil
}

// stop ends the encoder and waits for it, returning its error.
func (p *partFile) stop() error {
	close(p.jobs)
	return <-p.done
}

// finishPart completes the part being written and records it.
func (w *Writer) finishPart() error {
	p := w.part
	err := w.flush()
	if serr := p.stop(); err == nil {
		err = serr
	}
	w.spare = <-p.free
	if err == nil {
		err = p.pw.Close()
	}
	if err == nil {
		err = p.file.Sync()
	}
	if cerr := p.file.Close(); err == nil {
		err = cerr
	}
	w.part = nil
	if err != nil {
		return fmt.Errorf("write %s: %w", p.name, err)
	}
	w.files = append(w.files, FileInfo{
		Path:   p.name,
		Rows:   p.rows,
		Bytes:  p.out.n,
		SHA256: hex.EncodeToString(p.out.h.Sum(nil)),
	})
	return nil
}
