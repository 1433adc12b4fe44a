package stream_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connectors/kafka"
	"github.com/sluicehq/sluice/featurestore/offline"
	"github.com/sluicehq/sluice/featurestore/online"
	"github.com/sluicehq/sluice/schemas"
	"github.com/sluicehq/sluice/stream"
	"github.com/sluicehq/sluice/testkit"
)

// TestBackfillTakesOnlyTheOwnedPartitions backfills a new view while
// another member of the workers' group holds part of the stream's
// partitions: the engine must build only the partitions it owns, in
// transactions, and leave the others' history and changelog to their
// owner.
func TestBackfillTakesOnlyTheOwnedPartitions(t *testing.T) {
	h := newHarness(t, repoYAML)
	rows, offsets := pastClicks(t, h)
	history, _, _ := gatedHistory(rows, offsets, func(int32) bool { return false })
	held := holdPartitions(t, h)
	waitHeld(t, held, 8, 20*time.Second) // all of them, before the engine joins
	store := testkit.OnlineStore(t)
	startEngine(t, h.cluster, h, store, history)
	mine := waitBackfilled(t, store, held, offsets)
	checkBuiltOnly(t, h, store, rows, mine)
}

// TestRebalanceDuringABackfill lets a second member join the group while
// the engine backfills every partition from a history that does not
// answer yet: the rebalance must not wait for the backfill, and the engine
// then builds only the partitions it kept.
func TestRebalanceDuringABackfill(t *testing.T) {
	h := newHarness(t, repoYAML)
	rows, offsets := pastClicks(t, h)
	history, reading, release := gatedHistory(rows, offsets, func(int32) bool { return true })
	store := testkit.OnlineStore(t)
	startEngine(t, h.cluster, h, store, history)
	select {
	case <-reading:
	case <-time.After(20 * time.Second):
		t.Fatal("the engine did not start its backfill")
	}
	held := holdPartitions(t, h)
	// Well within the group's rebalance timeout, which a rebalance held
	// up by the backfill would wait out.
	waitHeld(t, held, 1, 5*time.Second)
	release()
	mine := waitBackfilled(t, store, held, offsets)
	checkBuiltOnly(t, h, store, rows, mine)
}

// TestBuiltPartitionsResumeAtTheHistoryEnd adds two views to a stream a
// worker has consumed, over a history that the second view's backfill
// waits for: the partitions stay paused until both are built, then the
// worker fetches only the records after the history's end.
func TestBuiltPartitionsResumeAtTheHistoryEnd(t *testing.T) {
	h := newHarness(t, repoYAML)
	rows, offsets := pastClicks(t, h)
	store := testkit.OnlineStore(t)
	runEngine(t, h, store)() // the job and its first view have consumed it all
	h.apply(t, repoYAML+extraView+strings.ReplaceAll(extraView, "user_clicks_late", "user_clicks_third"))
	later := make([]rec, 30)
	for i := range later {
		later[i] = click(fmt.Sprintf("u%d", i), fmt.Sprintf("l%d", i), 1, pastTS+int64(100+i))
	}
	h.produce(t, later...)
	history, blocked, release := gatedHistory(rows, offsets, func(call int32) bool { return call == 2 })
	seen := &fetched{offs: map[int32][]int64{}}
	hooked := h.cluster
	hooked.Opts = append(slices.Clone(hooked.Opts), kgo.WithHooks(seen))
	eng := startEngine(t, hooked, h, store, history)
	select {
	case <-blocked:
	case <-time.After(20 * time.Second):
		t.Fatal("the second backfill did not start")
	}
	time.Sleep(time.Second)
	if n := seen.count(); n != 0 {
		t.Errorf("%d records fetched while a backfill still held their partitions", n)
	}
	release()
	waitLag(t, func(ctx context.Context) (int64, error) { return eng.Lag(ctx, h.registry) })
	for p, offs := range seen.offsets() {
		for _, o := range offs {
			if o < offsets[p] {
				t.Errorf("partition %d: record %d fetched again, below the history's end %d", p, o, offsets[p])
			}
		}
	}
	if n := seen.count(); n < len(later) {
		t.Errorf("%d records fetched, want the %d after the history", n, len(later))
	}
	repo := h.registry.Repo()
	for _, view := range []string{"user_clicks_late", "user_clicks_third"} {
		for u := range 30 {
			got := read(t, store, repo, view, fmt.Sprintf("u%d", u), pastTS*1000+time.Hour.Microseconds())
			if got[0].V != int64(3) {
				t.Errorf("%s u%d: count %v, want 3 (two from the history, one after)", view, u, got[0].V)
			}
		}
	}
}

// pastTS is when pastClicks' events happened, in ms.
var pastTS = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

// pastClicks writes two clicks of each of 30 users, and returns them as
// history rows with the offsets they cover.
func pastClicks(t *testing.T, h *harness) ([]offline.Row, map[int32]int64) {
	t.Helper()
	var past []rec
	for i := range 60 {
		past = append(past, click(fmt.Sprintf("u%d", i%30), fmt.Sprintf("h%d", i), 1, pastTS+int64(i)))
	}
	h.produce(t, past...)
	return historyOf(t, h)
}

// gatedHistory reads rows as a stream's history. A read (numbered from 1)
// that gate picks first closes started, once, then waits for release.
func gatedHistory(rows []offline.Row, offsets map[int32]int64, gate func(call int32) bool) (stream.HistoryFunc, <-chan struct{}, func()) {
	var calls atomic.Int32
	started, released := make(chan struct{}), make(chan struct{})
	var start, free sync.Once
	history := func(ctx context.Context, _ string, _ *schemas.Schema, fn func(*offline.Row) error) (map[int32]int64, error) {
		if gate(calls.Add(1)) {
			start.Do(func() { close(started) })
			select {
			case <-released:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		for i := range rows {
			if err := fn(&rows[i]); err != nil {
				return nil, err
			}
		}
		return offsets, nil
	}
	return history, started, func() { free.Do(func() { close(released) }) }
}

// startEngine runs an engine with a history on cluster until the test
// ends, without waiting for it to catch up.
func startEngine(t *testing.T, cluster kafka.Cluster, h *harness, store *online.Store, history stream.HistoryFunc) *stream.Engine {
	t.Helper()
	eng := stream.NewEngine(cluster, h.registry, store, h.producer, stream.Options{History: history})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("engine: %v", err)
		}
	})
	return eng
}

// checkBuiltOnly requires the store to count each user's two history
// events on the engine's partitions (mine) and nothing on the others, and
// the changelog to hold records, all written in transactions, of the
// engine's partitions only.
func checkBuiltOnly(t *testing.T, h *harness, store *online.Store, rows []offline.Row, mine map[int32]bool) {
	t.Helper()
	repo := h.registry.Repo()
	perUser := map[string]int32{}
	for _, r := range rows {
		perUser[r.Key] = r.Partition
	}
	for user, p := range perUser {
		got := read(t, store, repo, "user_clicks", user, pastTS*1000+time.Hour.Microseconds())
		want := map[bool]int64{true: 2, false: 0}[mine[p]]
		if count, _ := got[1].V.(int64); count != want {
			t.Errorf("user %s on partition %d (the engine's: %v): count %v, want %d", user, p, mine[p], got[1].V, want)
		}
	}
	written := map[int32]bool{}
	for _, r := range consumeAll(t, h, kafka.ChangelogTopic("user_clicks")) {
		written[r.Partition] = true
		if !r.Attrs.IsTransactional() {
			t.Errorf("changelog record at %d/%d written outside a transaction", r.Partition, r.Offset)
		}
	}
	if !maps.Equal(written, mine) {
		t.Errorf("changelog partitions written %v, want the engine's %v", written, mine)
	}
}

// waitBackfilled waits until the store holds the history's offsets on
// the partitions that held (the other member's) does not list, and none
// on those it does, and returns the former.
func waitBackfilled(t *testing.T, store *online.Store, held func() map[int32]bool, offsets map[int32]int64) map[int32]bool {
	t.Helper()
	var mine map[int32]bool
	err := testkit.Eventually(t.Context(), 30*time.Second, func() error {
		others := held()
		offs, err := store.Offsets("view.user_clicks.1")
		if err != nil {
			return err
		}
		mine = map[int32]bool{}
		for p, next := range offs {
			if others[p] {
				return fmt.Errorf("partition %d backfilled, but the other member holds it", p)
			}
			if next != offsets[p] {
				return fmt.Errorf("partition %d backfilled up to %d, want %d", p, next, offsets[p])
			}
			mine[p] = true
		}
		if len(mine) == 0 || len(mine)+len(others) != 8 {
			return fmt.Errorf("backfilled partitions %v, the other member's %v: want all 8 between them", mine, others)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return mine
}

// holdPartitions joins the stream workers' group with a plain consumer of
// clicks; the returned func lists the partitions it holds.
func holdPartitions(t *testing.T, h *harness) func() map[int32]bool {
	t.Helper()
	var mu sync.Mutex
	held := map[int32]bool{}
	track := func(on bool) func(context.Context, *kgo.Client, map[string][]int32) {
		return func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			mu.Lock()
			defer mu.Unlock()
			for _, p := range m["clicks"] {
				held[p] = on
				if !on {
					delete(held, p)
				}
			}
		}
	}
	cl, err := h.cluster.Client(kgo.ConsumerGroup("sluice-stream"), kgo.ConsumeTopics("clicks"), kgo.DisableAutoCommit(),
		kgo.OnPartitionsAssigned(track(true)), kgo.OnPartitionsRevoked(track(false)), kgo.OnPartitionsLost(track(false)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for ctx.Err() == nil && !cl.PollFetches(ctx).IsClientClosed() {
		}
	}()
	t.Cleanup(func() { cancel(); <-polled; cl.Close() })
	list := func() map[int32]bool {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(held)
	}
	return list
}

// waitHeld waits until the plain member holds at least n partitions.
func waitHeld(t *testing.T, held func() map[int32]bool, n int, within time.Duration) {
	t.Helper()
	err := testkit.Eventually(t.Context(), within, func() error {
		if got := len(held()); got < n {
			return fmt.Errorf("the plain member holds %d partitions, want %d", got, n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// fetched records the offsets of clicks records its client fetched.
type fetched struct {
	mu   sync.Mutex
	offs map[int32][]int64
}

func (f *fetched) OnFetchRecordBuffered(r *kgo.Record) {
	if r.Topic != "clicks" {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.offs[r.Partition] = append(f.offs[r.Partition], r.Offset)
}

func (f *fetched) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, offs := range f.offs {
		n += len(offs)
	}
	return n
}

func (f *fetched) offsets() map[int32][]int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.offs)
}
