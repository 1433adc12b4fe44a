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
// brings one bucket back at a time. Each history worker appends to the
// entities' chunks, in its own arena, under its own lock, which a spill
// takes all of.
type spill struct {
	limit int64
	dir   string
	held  atomic.Int64 // encoded bytes held in entities, as workers last reported
	// pending is each worker's growth not yet added to held: workers
	// report in steps, so that they rarely touch the shared counter.
	pending []paddedInt
	mu      []paddedMutex // per worker
	spillMu sync.Mutex    // one spill at a time
	arenas  []*arena      // per worker
	files   []*os.File
	w       []*bufio.Writer
	used    bool
}

// paddedMutex and paddedInt fill a cache line each, so that workers do
// not slow each other down through false sharing.
type paddedMutex struct {
	sync.Mutex
	_ [56]byte
}

type paddedInt struct {
	n int64
	_ [56]byte
}

// reportStep is how much a worker's history grows before it reports.
const reportStep = 1 << 20

func newSpill(limit int64, dir string, arenas []*arena) *spill {
	return &spill{limit: limit, dir: dir, arenas: arenas, pending: make([]paddedInt, len(arenas)), mu: make([]paddedMutex, len(arenas))}
}

// grew notes that worker's history grew by n bytes, and spills everything
// when the limit is passed. The caller holds no worker lock.
func (s *spill) grew(worker, n int, all []*entity) error {
	p := &s.pending[worker]
	if p.n += int64(n); s.limit <= 0 || p.n < reportStep && p.n < s.limit/int64(4*len(s.pending)) {
		return nil
	}
	held := s.held.Add(p.n)
	p.n = 0
	if held <= s.limit {
		return nil
	}
	s.spillMu.Lock()
	defer s.spillMu.Unlock()
	if s.held.Load() <= s.limit {
		return nil // another worker spilled
	}
	for i := range s.mu {
		s.mu[i].Lock()
	}
	defer func() {
		for i := range s.mu {
			s.mu[i].Unlock()
		}
	}()
	return s.flushAll(all)
}

// flushAll writes every entity's events to its bucket; the caller holds
// every worker lock, or reading has ended.
func (s *spill) flushAll(all []*entity) error {
	if err := s.open(); err != nil {
		return err
	}
	for _, e := range all {
		n := e.events()
		if n == 0 {
			continue
		}
		w := s.w[int(e.idx)%spillBuckets]
		var head []byte
		head = binary.AppendUvarint(head, uint64(e.idx))
		head = binary.AppendUvarint(head, uint64(n))
		head = binary.AppendUvarint(head, uint64(e.size()))
		if _, err := w.Write(head); err != nil {
			return fmt.Errorf("spill history: %w", err)
		}
		for k := range e.chunks {
			for _, span := range e.chunks[k].spans {
				if _, err := w.Write(span); err != nil {
					return fmt.Errorf("spill history: %w", err)
				}
			}
			e.chunks[k] = chunk{}
		}
	}
	for _, a := range s.arenas {
		a.reset()
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
		span := make([]byte, size)
		if _, err := io.ReadFull(r, span); err != nil {
			return fmt.Errorf("read spilled history: %w", err)
		}
		c := &all[idx].chunks[0]
		c.spans, c.n = append(c.spans, span), c.n+int(n)
	}
}

func (s *spill) close() {
	for _, f := range s.files {
		f.Close()
	}
	s.files, s.w = nil, nil
}
