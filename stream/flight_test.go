package stream

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/featurestore/window"
	"github.com/sluicehq/sluice/testkit"
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

// TestBatchIsReadBeforeItCommits holds the batch before the next one in
// flight: the next one is read from the store while the engine waits to
// commit it, before its offsets are, and after.
func TestBatchIsReadBeforeItCommits(t *testing.T) {
	e, reg, _ := newTestEngine(t, clicksRepo)
	joinGroup(t, e, "clicks")
	_, cv, topo := layout(t, reg, "user_clicks")
	count := func() int64 {
		t.Helper()
		out := make([]window.Value, 1)
		err := e.store.ReadState(cv.View.Name, cv.View.Version, []string{"u"}, cv.Layout, func(_ int, st *window.State, raw window.RawFunc) error {
			cv.Layout.EvalSpecs(time.Now().UnixMicro(), st, raw, []int{0}, out)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out[0].V.(int64)
	}
	committed := func() int64 {
		t.Helper()
		offs, err := e.store.Offsets("clicks")
		if err != nil {
			t.Fatal(err)
		}
		return offs[0]
	}
	before := &flight{done: make(chan struct{})}
	e.flight = before
	ts := time.Now().Add(-time.Minute).UnixMilli()
	var recs []*kgo.Record
	for i := range 3 {
		recs = append(recs, &kgo.Record{Topic: "clicks", Offset: int64(i), Timestamp: time.Now(), Key: []byte("u"),
			Value: fmt.Appendf(nil, `{"user_id":"u","ts":%d}`, ts+int64(i))})
	}
	handled := make(chan error, 1)
	go func() { handled <- e.handle(t.Context(), topo, recs) }()
	err := testkit.Eventually(t.Context(), 10*time.Second, func() error {
		if n := count(); n != 3 {
			return fmt.Errorf("count %d while the batch waits to commit, want 3", n)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	if next := committed(); next != 0 {
		t.Errorf("offsets committed up to %d while the batch before was in flight", next)
	}
	close(before.done)
	if err := <-handled; err != nil {
		t.Fatal(err)
	}
	if err := e.settle(); err != nil {
		t.Fatal(err)
	}
	if n, next := count(), committed(); n != 3 || next != 3 {
		t.Errorf("committed: count %d, next offset %d; want 3 and 3", n, next)
	}
}
