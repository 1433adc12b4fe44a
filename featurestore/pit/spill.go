package pit

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
)

// spillBuckets is how many files spilled history is spread over; a
// bucket holds the events of every spillBuckets-th entity, so evaluating
// one bucket holds about 1/spillBuckets of the history in memory.
const spillBuckets = 64

// spill moves history that does not fit in memory to bucket files, and
// brings one bucket back at a time. It is safe for concurrent use.
type spill struct {
	limit int64
	dir   string
	held  atomic.Int64 // encoded bytes held in entities
	mu    sync.Mutex   // one spill at a time
	files []*os.File
	w     []*bufio.Writer
	used  bool
}

func newSpill(limit int64, dir string) *spill {
	return &spill{limit: limit, dir: dir}
}

// grew notes n more bytes held, and spills everything when the limit is
// passed. locks are the stripes that guard the entities' events; the
// caller holds none of them.
func (s *spill) grew(n int, all []*entity, locks *[64]sync.Mutex) error {
	if s.limit <= 0 || s.held.Add(int64(n)) <= s.limit {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held.Load() <= s.limit {
		return nil // another caller spilled
	}
	for i := range locks {
		locks[i].Lock()
	}
	defer func() {
		for i := range locks {
			locks[i].Unlock()
		}
	}()
	return s.flushAll(all)
}

// flushAll writes every entity's events to its bucket; the caller holds
// every stripe lock, or reading has ended.
func (s *spill) flushAll(all []*entity) error {
	if err := s.open(); err != nil {
		return err
	}
	for _, e := range all {
		if e.n == 0 {
			continue
		}
		w := s.w[int(e.idx)%spillBuckets]
		var head []byte
		head = binary.AppendUvarint(head, uint64(e.idx))
		head = binary.AppendUvarint(head, uint64(e.n))
		head = binary.AppendUvarint(head, uint64(len(e.events)))
		if _, err := w.Write(head); err != nil {
			return fmt.Errorf("spill history: %w", err)
		}
		if _, err := w.Write(e.events); err != nil {
			return fmt.Errorf("spill history: %w", err)
		}
		e.events, e.n = nil, 0
	}
	s.held.Store(0)
	s.used = true
	return nil
}

func (s *spill) open() error {
	if s.files != nil {
		return nil
	}
	for b := range spillBuckets {
		f, err := os.CreateTemp(s.dir, fmt.Sprintf("sluice-pit-%02d-*", b))
		if err != nil {
			s.close()
			return fmt.Errorf("spill history: %w (set a larger memory limit or another temporary directory)", err)
		}
		os.Remove(f.Name()) // unlinked: gone with the process, whatever happens
		s.files = append(s.files, f)
		s.w = append(s.w, bufio.NewWriterSize(f, 256<<10))
	}
	return nil
}

// load reads bucket b back into its entities.
func (s *spill) load(b int, all []*entity) error {
	if err := s.w[b].Flush(); err != nil {
		return fmt.Errorf("spill history: %w", err)
	}
	f := s.files[b]
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	r := bufio.NewReaderSize(f, 256<<10)
	for {
		idx, err := binary.ReadUvarint(r)
		if err == io.EOF {
			return nil
		}
		n, err2 := binary.ReadUvarint(r)
		size, err3 := binary.ReadUvarint(r)
		if err != nil || err2 != nil || err3 != nil || idx >= uint64(len(all)) {
			return fmt.Errorf("read spilled history: corrupt bucket %d", b)
		}
		e := all[idx]
		start := len(e.events)
		e.events = append(e.events, make([]byte, size)...)
		if _, err := io.ReadFull(r, e.events[start:]); err != nil {
			return fmt.Errorf("read spilled history: %w", err)
		}
		e.n += int(n)
	}
}

func (s *spill) close() {
	for _, f := range s.files {
		f.Close()
	}
	s.files, s.w = nil, nil
}
