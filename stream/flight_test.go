package stream

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestFailedFlightStopsAFullBatch fails the batch in flight while the next
// one overflows its transaction: the failure must end the poll, rather than
// the full batch being retried smaller and committing offsets past the
// records of the batch that was lost.
func TestFailedFlightStopsAFullBatch(t *testing.T) {
	e, reg, _ := newTestEngine(t, `
kind: entity
name: user
key: user_id
---
kind: stream
name: clicks
entity: user
timestamp: ts
timestamp_unit: ms
schema:
  - {name: user_id, type: string}
  - {name: s, type: string}
  - {name: ts, type: timestamp}
---
kind: feature_view
name: latest
entity: user
source: clicks
features:
  - {name: s, field: s, agg: last}
`)
	store := e.store
	topo, err := newTopology(reg.Repo(), true)
	if err != nil {
		t.Fatal(err)
	}
	// The batch in flight held offsets 0 to 99. The next holds 1,000
	// records of 8 KB, more than one transaction takes.
	lost := errors.New("changelog not written")
	f := &flight{done: make(chan struct{}), err: lost}
	close(f.done)
	e.flight = f
	ts := time.Now().Add(-time.Minute).UnixMilli()
	pad := strings.Repeat("x", 8<<10)
	var recs []*kgo.Record
	for i := 100; i < 1100; i++ {
		recs = append(recs, &kgo.Record{Topic: "clicks", Offset: int64(i), Timestamp: time.Now(),
			Value: fmt.Appendf(nil, `{"user_id":"u%d","s":%q,"ts":%d}`, i%10, pad, ts)})
	}
	if err := e.handle(t.Context(), topo, recs); !errors.Is(err, lost) {
		t.Fatalf("handle after the batch in flight failed: %v, want its error", err)
	}
	if err := e.settle(); err != nil {
		t.Fatal(err)
	}
	offs, err := store.Offsets("clicks")
	if err != nil {
		t.Fatal(err)
	}
	if len(offs) != 0 {
		t.Errorf("offsets committed past the lost batch: %v", offs)
	}
}
