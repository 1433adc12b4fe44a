package stream

import (
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/schemas"
)

// aheadChunk is how many records the decoder hands over at a time.
const aheadChunk = 64

// ahead decodes a poll's records on a goroutine of its own, running ahead
// of the goroutine that applies them, so that parsing and validating JSON
// overlaps applying events on a second core.
type ahead struct {
	evs  []decoded
	done chan int // how many records are decoded, after each chunk
	// ready is how many records the applying goroutine knows decoded.
	ready int
	stop  atomic.Bool
}

// decoded is one record's event, or why it is invalid.
type decoded struct {
	ev  *schemas.Event
	err error
}

// decodeAhead starts decoding recs, those of topics outside topo left
// alone. Call halt when done with the result.
func decodeAhead(topo *topology, recs []*kgo.Record) *ahead {
	a := &ahead{evs: make([]decoded, len(recs)), done: make(chan int, len(recs)/aheadChunk+1)}
	go func() {
		for start := 0; start < len(recs) && !a.stop.Load(); start += aheadChunk {
			end := min(start+aheadChunk, len(recs))
			for i := start; i < end; i++ {
				if job := topo.byTopic[recs[i].Topic]; job != nil {
					a.evs[i].ev, a.evs[i].err = job.dec.Decode(recs[i].Value)
				}
			}
			a.done <- end // never blocks: there is room for every chunk
		}
	}()
	return a
}

// get returns record i's event, waiting for the decoder to reach it.
func (a *ahead) get(i int) (*schemas.Event, error) {
	for a.ready <= i {
		a.ready = <-a.done
	}
	return a.evs[i].ev, a.evs[i].err
}

// halt tells the decoder to stop after its current chunk.
func (a *ahead) halt() { a.stop.Store(true) }
