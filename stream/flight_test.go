package stream

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connectors/kafka"
	"github.com/sluicehq/sluice/featurestore"
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
	f := &flight{logged: make(chan struct{}), logErr: lost, done: make(chan struct{}), err: lost}
	close(f.logged)
	close(f.done)
	e.flights = []*flight{f}
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
	e, cv, topo := clicksMember(t)
	before := &flight{logged: make(chan struct{}), done: make(chan struct{})}
	close(before.logged)
	e.flights = []*flight{before}
	ts := time.Now().Add(-time.Minute).UnixMilli()
	var recs []*kgo.Record
	for i := range 3 {
		recs = append(recs, &kgo.Record{Topic: "clicks", Offset: int64(i), Timestamp: time.Now(), Key: []byte("u"),
			Value: fmt.Appendf(nil, `{"user_id":"u","ts":%d}`, ts+int64(i))})
	}
	handled := make(chan error, 1)
	go func() { handled <- e.handle(t.Context(), topo, recs) }()
	err := testkit.Eventually(t.Context(), 10*time.Second, func() error {
		if n := clickCount(t, e, cv); n != 3 {
			return fmt.Errorf("count %d while the batch waits to commit, want 3", n)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	if next := committedOffset(t, e); next != 0 {
		t.Errorf("offsets committed up to %d while the batch before was in flight", next)
	}
	close(before.done)
	if err := <-handled; err != nil {
		t.Fatal(err)
	}
	if err := e.settle(); err != nil {
		t.Fatal(err)
	}
	if n, next := clickCount(t, e, cv), committedOffset(t, e); n != 3 || next != 3 {
		t.Errorf("committed: count %d, next offset %d; want 3 and 3", n, next)
	}
}

// clicksMember makes an engine over clicksRepo that is a member of its
// consumer group, with the user_clicks view and the topology.
func clicksMember(t *testing.T) (*Engine, *featurestore.CompiledView, *topology) {
	t.Helper()
	e, reg, _ := newTestEngine(t, clicksRepo)
	joinGroup(t, e, "clicks")
	_, cv, topo := layout(t, reg, "user_clicks")
	return e, cv, topo
}

// heldFlight is a batch in flight whose changelog is written (or failed
// with logErr) and whose store commit waits until done is closed.
func heldFlight(logErr error) *flight {
	f := &flight{logged: make(chan struct{}), logErr: logErr, done: make(chan struct{})}
	close(f.logged)
	return f
}

// clickRecords returns n click records of user u from offset from, in
// partition 0.
func clickRecords(from, n int) []*kgo.Record {
	ts := time.Now().Add(-time.Minute).UnixMilli()
	var recs []*kgo.Record
	for i := from; i < from+n; i++ {
		recs = append(recs, &kgo.Record{Topic: "clicks", Offset: int64(i), Timestamp: time.Now(), Key: []byte("u"),
			Value: fmt.Appendf(nil, `{"user_id":"u","ts":%d}`, ts+int64(i))})
	}
	return recs
}

// committedOffset returns the next offset of clicks' partition 0 that the
// store holds.
func committedOffset(t *testing.T, e *Engine) int64 {
	t.Helper()
	offs, err := e.store.Offsets("clicks")
	if err != nil {
		t.Fatal(err)
	}
	return offs[0]
}

// settledAt waits for the batches in flight and checks that the store
// committed clicks' partition 0 up to next.
func settledAt(t *testing.T, e *Engine, next int64) {
	t.Helper()
	if err := e.settle(); err != nil {
		t.Fatal(err)
	}
	if got := committedOffset(t, e); got != next {
		t.Errorf("store committed up to %d, want %d", got, next)
	}
}

// TestChangelogIsWrittenWhileTheBatchBeforeCommits holds the store commit
// of the batch before: the next batch's changelog transaction commits in
// the meantime, and its store commit follows that of the batch before.
func TestChangelogIsWrittenWhileTheBatchBeforeCommits(t *testing.T) {
	e, _, topo := clicksMember(t)
	before := heldFlight(nil)
	e.flights = []*flight{before}
	if err := e.handle(t.Context(), topo, clickRecords(0, 3)); err != nil {
		t.Fatal(err)
	}
	topic := kafka.ChangelogTopic("user_clicks")
	err := testkit.Eventually(t.Context(), 10*time.Second, func() error {
		ends, err := kafka.EndOffsets(t.Context(), e.producer, topic)
		if err != nil || ends[topic][0] == 0 {
			return fmt.Errorf("changelog empty while the batch before commits (%v)", err)
		}
		if keys := changelogRecords(t, e, topic, true); len(keys) == 0 {
			return errors.New("no changelog record committed while the batch before commits")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if next := committedOffset(t, e); next != 0 {
		t.Errorf("store committed up to %d before the batch before", next)
	}
	close(before.done)
	settledAt(t, e, 3)
}

// TestBatchAfterAFailedOneDoesNotCommit fails the batch before, once in
// its changelog and once in its store commit. The next batch writes no
// changelog after a failed one, does not commit to the store after either,
// and the engine reports the first failure.
func TestBatchAfterAFailedOneDoesNotCommit(t *testing.T) {
	lost := errors.New("lost")
	for _, tc := range []struct {
		name      string
		logErr    error
		changelog bool // whether the next batch writes its changelog
	}{
		{"changelog failed", lost, false},
		{"store commit failed", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, _, topo := clicksMember(t)
			before := heldFlight(tc.logErr)
			before.err = lost
			e.flights = []*flight{before}
			if err := e.handle(t.Context(), topo, clickRecords(0, 3)); err != nil {
				t.Fatal(err)
			}
			next := e.flights[len(e.flights)-1]
			<-next.logged
			close(before.done)
			if err := e.settle(); !errors.Is(err, lost) {
				t.Fatalf("settle: %v, want the failure of the batch before", err)
			}
			if !errors.Is(next.err, errBatchBefore) {
				t.Errorf("next batch: %v, want %v", next.err, errBatchBefore)
			}
			if off := committedOffset(t, e); off != 0 {
				t.Errorf("store committed up to %d after a failed batch", off)
			}
			topic := kafka.ChangelogTopic("user_clicks")
			ends, err := kafka.EndOffsets(t.Context(), e.producer, topic)
			if err != nil {
				t.Fatal(err)
			}
			wrote := ends[topic][0] > 0 && len(changelogRecords(t, e, topic, true)) > 0
			if wrote != tc.changelog {
				t.Errorf("changelog committed: %v, want %v", wrote, tc.changelog)
			}
		})
	}
}

// TestApplyWaitsForRoomInFlight holds maxFlights batches in flight: the
// next is applied and staged, and handed over only once the oldest has
// committed.
func TestApplyWaitsForRoomInFlight(t *testing.T) {
	e, _, topo := clicksMember(t)
	var held []*flight
	for range maxFlights {
		held = append(held, heldFlight(nil))
	}
	e.flights = slices.Clone(held)
	handled := make(chan error, 1)
	go func() { handled <- e.handle(t.Context(), topo, clickRecords(0, 3)) }()
	select {
	case err := <-handled:
		t.Fatalf("handed over with %d batches in flight (err %v)", maxFlights, err)
	case <-time.After(200 * time.Millisecond):
	}
	close(held[0].done)
	if err := <-handled; err != nil {
		t.Fatal(err)
	}
	if n := len(e.flights); n != maxFlights {
		t.Errorf("%d batches in flight, want %d", n, maxFlights)
	}
	for _, f := range held[1:] {
		close(f.done)
	}
	settledAt(t, e, 3)
}

// TestDuplicateOfABatchInFlight sends again an event that one of two
// batches in flight applied: neither is in the store yet, and the copy
// must still count as a duplicate.
func TestDuplicateOfABatchInFlight(t *testing.T) {
	for _, which := range []int{0, 1} {
		t.Run(fmt.Sprintf("flight %d", which), func(t *testing.T) {
			e, cv, topo := clicksMember(t)
			flights := []*flight{heldFlight(nil), heldFlight(nil)}
			flights[which].seen = map[seenID]struct{}{{viewKey(cv), "ev-1"}: {}}
			for _, f := range flights {
				close(f.done)
			}
			e.flights = flights
			recs := clickRecords(0, 2)
			for i, r := range recs {
				r.Headers = []kgo.RecordHeader{{Key: kafka.HeaderEventID, Value: fmt.Appendf(nil, "ev-%d", i+1)}}
			}
			if err := e.handle(t.Context(), topo, recs); err != nil {
				t.Fatal(err)
			}
			if err := e.settle(); err != nil {
				t.Fatal(err)
			}
			if n := clickCount(t, e, cv); n != 1 {
				t.Errorf("count %d, want 1: ev-1 was applied by a batch in flight", n)
			}
		})
	}
}

// clickCount reads user u's count of clicks.
func clickCount(t *testing.T, e *Engine, cv *featurestore.CompiledView) int64 {
	t.Helper()
	out := make([]window.Value, 1)
	err := e.store.ReadState(cv.View.Name, cv.View.Version, []string{"u"}, cv.Layout, func(_ int, st *window.State, raw window.RawFunc) error {
		cv.Layout.EvalSpecs(time.Now().UnixMicro(), st, raw, []int{0}, out)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	n, _ := out[0].V.(int64)
	return n
}

// TestFailedOldestFlightStopsTheNextBatch fails the oldest batch in flight
// before the next one is handed over: the next must not go on without it
// (its offsets would pass the records of the batch that was lost).
func TestFailedOldestFlightStopsTheNextBatch(t *testing.T) {
	lost := errors.New("lost")
	for _, n := range []int{1, maxFlights} {
		t.Run(fmt.Sprintf("%d in flight", n), func(t *testing.T) {
			e, _, topo := clicksMember(t)
			for i := range n {
				f := heldFlight(nil)
				f.err = lost
				if i > 0 {
					f.err = errBatchBefore
				}
				close(f.done)
				e.flights = append(e.flights, f)
			}
			if err := e.handle(t.Context(), topo, clickRecords(0, 3)); !errors.Is(err, lost) {
				t.Fatalf("handle: %v, want the failure of the oldest batch", err)
			}
			if len(e.flights) != 0 || e.progress != nil {
				t.Errorf("after the failure: %d batches in flight, progress %v; want none", len(e.flights), e.progress)
			}
			if off := committedOffset(t, e); off != 0 {
				t.Errorf("store committed up to %d after a failed batch", off)
			}
		})
	}
}

// TestChangelogWaitsForTheOneBefore holds the changelog transaction of the
// batch before: the next batch writes nothing until it has ended (one
// client runs one transaction at a time).
func TestChangelogWaitsForTheOneBefore(t *testing.T) {
	e, _, topo := clicksMember(t)
	before := &flight{logged: make(chan struct{}), done: make(chan struct{})}
	e.flights = []*flight{before}
	if err := e.handle(t.Context(), topo, clickRecords(0, 3)); err != nil {
		t.Fatal(err)
	}
	topic := kafka.ChangelogTopic("user_clicks")
	end := func() int64 {
		t.Helper()
		ends, err := kafka.EndOffsets(t.Context(), e.producer, topic)
		if err != nil {
			t.Fatal(err)
		}
		return ends[topic][0]
	}
	time.Sleep(300 * time.Millisecond)
	if n := end(); n != 0 {
		t.Fatalf("changelog holds %d records while the transaction before is open", n)
	}
	close(before.logged)
	close(before.done)
	if err := e.settle(); err != nil {
		t.Fatal(err)
	}
	if n, next := end(), committedOffset(t, e); n == 0 || next != 3 {
		t.Errorf("changelog end %d, store at %d; want records and 3", n, next)
	}
}

// TestOverlappingBatchesStayExact applies real batches one after another
// without waiting for them, so that each commits while the next is applied
// and writes its changelog; events come twice, in the same batch and in
// the next. The count takes each once, the store's offsets and changelog
// position follow every batch.
func TestOverlappingBatchesStayExact(t *testing.T) {
	e, cv, topo := clicksMember(t)
	if err := e.restore(t.Context(), topo, map[string][]int32{"clicks": {2}}); err != nil {
		t.Fatal(err)
	}
	ts := time.Now().Add(-time.Minute).UnixMilli()
	var offset int64
	const batches, perBatch = 9, 4
	for b := range batches {
		var recs []*kgo.Record
		for i := range perBatch {
			// Ids 2b and 2b+1, each sent twice: a copy in the batch and
			// one of the batch before's last id.
			id := 2*b + i/2
			if i == 0 && b > 0 {
				id = 2*b - 1
			}
			recs = append(recs, &kgo.Record{Topic: "clicks", Partition: 2, Offset: offset, Timestamp: time.Now(), Key: []byte("u"),
				Headers: []kgo.RecordHeader{{Key: kafka.HeaderEventID, Value: fmt.Appendf(nil, "ev-%d", id)}},
				Value:   fmt.Appendf(nil, `{"user_id":"u","ts":%d}`, ts+int64(id))})
			offset++
		}
		if err := e.handle(t.Context(), topo, recs); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.settle(); err != nil {
		t.Fatal(err)
	}
	if n := clickCount(t, e, cv); n != 2*batches {
		t.Errorf("count %d, want %d distinct events", n, 2*batches)
	}
	offs, err := e.store.Offsets("clicks")
	if err != nil {
		t.Fatal(err)
	}
	if offs[2] != offset {
		t.Errorf("store at offset %d, want %d", offs[2], offset)
	}
	positionAtLastMarker(t, e, 2)
}
