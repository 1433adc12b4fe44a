package train

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/parquet-go/parquet-go"
)

// partFile is a part being written. Two row groups take turns: while the
// columns of one are filled (encoded and compressed page by page), a
// goroutine of the part's commits the other to the file. At most two row
// groups of pages are held in memory.
type partFile struct {
	name    string
	file    *os.File
	out     *hashWriter
	pw      *parquet.Writer
	rows    int64
	cur     *rowGroup      // the row group being filled
	commits chan *rowGroup // to the committer
	free    chan *rowGroup // back from it, committed and empty
	done    chan error     // the committer's first error, once commits is closed
}

// rowGroup is a row group of a part, filled column by column.
type rowGroup struct {
	w    *parquet.ConcurrentRowGroupWriter
	rows int
	err  error // from committing it
}

func (w *Writer) openPart() error {
	name := fmt.Sprintf("part-%05d.parquet", len(w.files))
	f, err := os.OpenFile(filepath.Join(w.dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("create part: %w", err)
	}
	w.parts = append(w.parts, name)
	out := &hashWriter{w: f, h: sha256.New()}
	pw := parquet.NewWriter(out, w.schema,
		parquet.Compression(w.codec),
		parquet.MaxRowsPerRowGroup(int64(w.opts.RowGroupRows)))
	p := &partFile{
		name:    name,
		file:    f,
		out:     out,
		pw:      pw,
		cur:     &rowGroup{w: pw.BeginRowGroup()},
		commits: make(chan *rowGroup),
		free:    make(chan *rowGroup, 2),
		done:    make(chan error, 1),
	}
	p.free <- &rowGroup{w: pw.BeginRowGroup()}
	go p.commit()
	w.part = p
	return nil
}

// commit writes the row groups it is handed to the file, in order, until
// commits closes.
func (p *partFile) commit() {
	var first error
	for rg := range p.commits {
		if first == nil {
			_, first = rg.w.Commit()
		}
		rg.rows, rg.err = 0, first
		p.free <- rg
	}
	p.done <- first
}

// endRowGroup hands the row group being filled to the committer and takes
// the other one back, reporting an error its commit met.
func (p *partFile) endRowGroup() error {
	if p.cur.rows == 0 {
		return nil
	}
	p.commits <- p.cur
	p.cur = <-p.free
	if p.cur.err != nil {
		return fmt.Errorf("write %s: %w", p.name, p.cur.err)
	}
	return nil
}

// stop ends the committer and waits for it, returning its error.
func (p *partFile) stop() error {
	close(p.commits)
	return <-p.done
}

// finishPart completes the part being written and records it.
func (w *Writer) finishPart() error {
	p := w.part
	err := p.endRowGroup()
	if serr := p.stop(); err == nil {
		err = serr
	}
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

// writeBlock writes the rows of b, which Write or WriteBlock checked, in
// row groups of RowGroupRows and parts of RowsPerPart.
func (w *Writer) writeBlock(b *Block) error {
	for lo := 0; lo < b.Rows; {
		if w.part == nil {
			if err := w.openPart(); err != nil {
				return err
			}
		}
		p := w.part
		n := min(b.Rows-lo, w.opts.RowGroupRows-p.cur.rows, int(int64(w.opts.RowsPerPart)-p.rows))
		if err := w.encode(p.cur, b, lo, lo+n); err != nil {
			return fmt.Errorf("write %s: %w", p.name, err)
		}
		p.cur.rows += n
		p.rows += int64(n)
		lo += n
		var err error
		switch {
		case p.rows >= int64(w.opts.RowsPerPart):
			err = w.finishPart()
		case p.cur.rows >= w.opts.RowGroupRows:
			err = p.endRowGroup()
		}
		if err != nil {
			return err
		}
	}
	return nil
}
