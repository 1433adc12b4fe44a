package online_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/goleak"

	"github.com/sluicehq/sluice/featurestore/online"
	"github.com/sluicehq/sluice/featurestore/window"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func openStore(t *testing.T, dir string, opts online.Options) *online.Store {
	t.Helper()
	s, err := online.Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return s
}

// newStore opens a store in a fresh directory, closed at the end of the test.
func newStore(t *testing.T) *online.Store {
	t.Helper()
	s := openStore(t, t.TempDir(), online.Options{})
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// entry is one event of one view version and entity key.
type entry struct {
	view    string
	version int
	key     string
	ev      window.Event
}

// write puts entries in one committed batch.
func write(t *testing.T, s *online.Store, entries ...entry) {
	t.Helper()
	b := s.NewBatch()
	defer b.Discard()
	for _, e := range entries {
		if err := b.Put(e.view, e.version, e.key, &e.ev, 0); err != nil {
			t.Fatalf("Put(%q, %d, %q, %+v): %v", e.view, e.version, e.key, e.ev, err)
		}
	}
	if err := b.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// read returns copies of the events of each key before t.
func read(t *testing.T, s *online.Store, view string, version int, keys []string, at int64) [][]window.Event {
	t.Helper()
	out := make([][]window.Event, len(keys))
	calls := 0
	err := s.Read(view, version, keys, at, func(i int, evs []window.Event) {
		if i != calls {
			t.Errorf("Read called fn for key %d, want %d (keys in order)", i, calls)
		}
		calls++
		out[i] = append([]window.Event{}, evs...)
	})
	if err != nil {
		t.Fatalf("Read(%q, %d, %q, %d): %v", view, version, keys, at, err)
	}
	if calls != len(keys) {
		t.Fatalf("Read called fn %d times for %d keys", calls, len(keys))
	}
	return out
}

func readOne(t *testing.T, s *online.Store, view string, version int, key string, at int64) []window.Event {
	t.Helper()
	return read(t, s, view, version, []string{key}, at)[0]
}

var equateEmpty = cmpopts.EquateEmpty()

func ev(time, seq int64, values ...any) window.Event {
	return window.Event{Time: time, Arrival: time + 1000, Seq: seq, Values: values}
}

func TestReadSortsByTimeThenSeq(t *testing.T) {
	const day = int64(86400_000_000)
	sorted := []window.Event{
		ev(math.MinInt64, 0, "min"),
		ev(-365*day, 3, "1969"),
		ev(-1, 0, "just before 1970"),
		ev(0, 0, "epoch"),
		ev(1, 0, "just after 1970"),
		ev(20000*day, -1, "tie, seq -1"),
		ev(20000*day, 0, "tie, seq 0"),
		ev(20000*day, 1, "tie, seq 1"),
		ev(20000*day, 256, "tie, seq 256"),
		ev(20000*day, math.MaxInt64, "tie, seq max"),
		ev(20000*day+1, 2, "later"),
		ev(math.MaxInt64-1, 0, "max-1"),
	}
	s := newStore(t)
	shuffled := slices.Clone(sorted)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, e := range shuffled { // one batch per event: order of commits must not matter
		write(t, s, entry{"user_txn", 1, "u1", e})
	}

	got := readOne(t, s, "user_txn", 1, "u1", math.MaxInt64)
	if diff := cmp.Diff(sorted, got, equateEmpty); diff != "" {
		t.Fatalf("Read(t=max) (-want +got):\n%s", diff)
	}
	// Every bound: the events strictly before it, never one at it.
	var bounds []int64
	for _, e := range sorted {
		bounds = append(bounds, e.Time-1, e.Time, e.Time+1)
	}
	for _, at := range bounds {
		var want []window.Event
		for _, e := range sorted {
			if e.Time < at {
				want = append(want, e)
			}
		}
		got := readOne(t, s, "user_txn", 1, "u1", at)
		if diff := cmp.Diff(want, got, equateEmpty); diff != "" {
			t.Errorf("Read(t=%d) (-want +got):\n%s", at, diff)
		}
	}
}

func TestReadKeepsViewsVersionsAndKeysApart(t *testing.T) {
	type loc struct {
		view    string
		version int
		key     string
	}
	locs := []loc{
		{"v", 1, "u1"},
		{"v", 1, "u10"}, // "u1" is a prefix of it
		{"v", 1, "u"},
		{"v", 1, ""},
		{"v", 1, "u1|m1"},
		{"v", 1, "u1|m1|x"},
		{"v", 1, "u1\\|m1"},
		{"v", 1, "u1\x00"},
		{"v", 1, "\x00"},
		{"v", 1, "\x00\x00"},
		{"v", 1, "\xff"},
		{"v", 2, "u1"},
		{"v", 256, "u1"}, // version bytes differ from 1 only in a higher byte
		{"v", 0, "u1"},
		{"vv", 1, "u1"},
		{"v_2", 1, "u1"},
		{"w", 1, "u1"},
		{"", 1, "u1"},
	}
	s := newStore(t)
	var entries []entry
	for i, l := range locs {
		tag := fmt.Sprintf("%s/%d/%q", l.view, l.version, l.key)
		// Two events each, at times that interleave with the other locations.
		entries = append(entries,
			entry{l.view, l.version, l.key, ev(int64(i), int64(i), tag, "first")},
			entry{l.view, l.version, l.key, ev(int64(100+i), int64(i), tag, "second")})
	}
	write(t, s, entries...)

	for i, l := range locs {
		tag := fmt.Sprintf("%s/%d/%q", l.view, l.version, l.key)
		want := []window.Event{ev(int64(i), int64(i), tag, "first"), ev(int64(100+i), int64(i), tag, "second")}
		got := readOne(t, s, l.view, l.version, l.key, math.MaxInt64)
		if diff := cmp.Diff(want, got, equateEmpty); diff != "" {
			t.Errorf("Read(%q, %d, %q) (-want +got):\n%s", l.view, l.version, l.key, diff)
		}
	}
	// Keys never written read as nothing.
	for _, l := range []loc{{"v", 1, "u2"}, {"v", 1, "u1|"}, {"v", 3, "u1"}, {"x", 1, "u1"}, {"v", 1, "u100"}} {
		if got := readOne(t, s, l.view, l.version, l.key, math.MaxInt64); len(got) != 0 {
			t.Errorf("Read(%q, %d, %q) = %v, want nothing", l.view, l.version, l.key, got)
		}
	}
}

func TestReadManyKeys(t *testing.T) {
	s := newStore(t)
	write(t, s,
		entry{"v", 1, "a", ev(10, 1, 1.5)},
		entry{"v", 1, "a", ev(20, 2, 2.5)},
		entry{"v", 1, "c", ev(15, 3, 3.5)},
	)
	got := read(t, s, "v", 1, []string{"c", "missing", "a", "a"}, 20)
	want := [][]window.Event{
		{ev(15, 3, 3.5)},
		nil,
		{ev(10, 1, 1.5)},
		{ev(10, 1, 1.5)},
	}
	if diff := cmp.Diff(want, got, equateEmpty); diff != "" {
		t.Errorf("Read(c, missing, a, a) (-want +got):\n%s", diff)
	}
	if err := s.Read("v", 1, nil, 20, func(int, []window.Event) { t.Error("fn called without keys") }); err != nil {
		t.Errorf("Read without keys: %v", err)
	}
}

// Replays after a crash put the same (time, seq) again: the store must hold
// one event, not two.
func TestPutSameTimeAndSeqReplaces(t *testing.T) {
	s := newStore(t)
	write(t, s, entry{"v", 1, "u1", ev(50, 7, "old")})
	write(t, s, entry{"v", 1, "u1", ev(50, 7, "new")}, entry{"v", 1, "u1", ev(50, 8, "next")})
	got := readOne(t, s, "v", 1, "u1", 51)
	want := []window.Event{ev(50, 7, "new"), ev(50, 8, "next")}
	if diff := cmp.Diff(want, got, equateEmpty); diff != "" {
		t.Errorf("Read after replay (-want +got):\n%s", diff)
	}
}

func TestOffsets(t *testing.T) {
	s := newStore(t)
	set := func(offsets map[string]map[int32]int64) {
		t.Helper()
		b := s.NewBatch()
		defer b.Discard()
		for stream, parts := range offsets {
			for p, next := range parts {
				if err := b.SetOffset(stream, p, next); err != nil {
					t.Fatalf("SetOffset(%q, %d, %d): %v", stream, p, next, err)
				}
			}
		}
		if err := b.Commit(); err != nil {
			t.Fatalf("Commit: %v", err)
		}
	}
	check := func(when string, want map[string]map[int32]int64) {
		t.Helper()
		for stream, parts := range want {
			got, err := s.Offsets(stream)
			if err != nil {
				t.Fatalf("Offsets(%q): %v", stream, err)
			}
			if got == nil {
				t.Errorf("%s: Offsets(%q) = nil, want an empty map", when, stream)
			}
			if diff := cmp.Diff(parts, got, equateEmpty); diff != "" {
				t.Errorf("%s: Offsets(%q) (-want +got):\n%s", when, stream, diff)
			}
		}
	}
	check("empty store", map[string]map[int32]int64{"transactions": {}})
	set(map[string]map[int32]int64{
		"transactions":  {0: 10, 1: 0, 7: 1 << 40, math.MaxInt32: math.MaxInt64},
		"transactions2": {0: 3},
		"transaction":   {0: 4}, // a prefix of the others
		"clicks":        {2: 99},
	})
	check("first batch", map[string]map[int32]int64{
		"transactions":  {0: 10, 1: 0, 7: 1 << 40, math.MaxInt32: math.MaxInt64},
		"transactions2": {0: 3},
		"transaction":   {0: 4},
		"clicks":        {2: 99},
		"unknown":       {},
		"":              {},
	})
	set(map[string]map[int32]int64{"transactions": {0: 11, 3: 5}})
	check("second batch", map[string]map[int32]int64{
		"transactions": {0: 11, 1: 0, 3: 5, 7: 1 << 40, math.MaxInt32: math.MaxInt64},
		"transaction":  {0: 4},
	})
}

func TestSeen(t *testing.T) {
	s := newStore(t)
	seen := func(b *online.Batch, stream, id string) bool {
		t.Helper()
		ok, err := b.Seen(stream, id)
		if err != nil {
			t.Fatalf("Seen(%q, %q): %v", stream, id, err)
		}
		return ok
	}
	b := s.NewBatch()
	if seen(b, "transactions", "e1") {
		t.Fatal("Seen(e1) in an empty store = true")
	}
	if err := b.MarkSeen("transactions", "e1"); err != nil {
		t.Fatalf("MarkSeen: %v", err)
	}
	if !seen(b, "transactions", "e1") {
		t.Error("Seen(e1) after MarkSeen in the same batch = false")
	}
	if err := b.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}

	b = s.NewBatch()
	defer b.Discard()
	tests := []struct {
		stream, id string
		want       bool
	}{
		{"transactions", "e1", true},
		{"clicks", "e1", false}, // ids are per stream
		{"transactions", "e", false},
		{"transactions", "e10", false},
		{"transactions", "", false},
		{"transactions\x00e1", "", false},
		{"transaction", "s\x00e1", false},
	}
	for _, tc := range tests {
		if got := seen(b, tc.stream, tc.id); got != tc.want {
			t.Errorf("after commit: Seen(%q, %q) = %v, want %v", tc.stream, tc.id, got, tc.want)
		}
	}
}

func TestDiscardLeavesNothing(t *testing.T) {
	s := newStore(t)
	b := s.NewBatch()
	e := ev(5, 1, "x")
	if err := b.Put("v", 1, "u1", &e, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.SetOffset("transactions", 0, 2); err != nil {
		t.Fatal(err)
	}
	if err := b.MarkSeen("transactions", "e1"); err != nil {
		t.Fatal(err)
	}
	b.Discard()

	if got := readOne(t, s, "v", 1, "u1", math.MaxInt64); len(got) != 0 {
		t.Errorf("Read after Discard = %v, want nothing", got)
	}
	offs, err := s.Offsets("transactions")
	if err != nil || len(offs) != 0 {
		t.Errorf("Offsets after Discard = %v, %v; want none", offs, err)
	}
	b = s.NewBatch()
	defer b.Discard()
	if ok, err := b.Seen("transactions", "e1"); ok || err != nil {
		t.Errorf("Seen after Discard = %v, %v; want false", ok, err)
	}
}

func TestBatchFull(t *testing.T) {
	s := newStore(t)
	b := s.NewBatch()
	defer b.Discard()
	payload := strings.Repeat("p", 4096)
	n := 0
	for ; ; n++ {
		e := ev(int64(n), int64(n), payload)
		err := b.Put("v", 1, "u1", &e, 0)
		if errors.Is(err, online.ErrBatchFull) {
			break
		}
		if err != nil {
			t.Fatalf("Put %d: %v", n, err)
		}
		if n > 1_000_000 {
			t.Fatal("the batch never filled up")
		}
	}
	if n == 0 {
		t.Fatal("the first Put already filled the batch")
	}
	// The batch keeps what it took before it filled up.
	if err := b.Commit(); err != nil {
		t.Fatalf("Commit of a full batch: %v", err)
	}
	got := readOne(t, s, "v", 1, "u1", math.MaxInt64)
	if len(got) != n || got[n-1].Seq != int64(n-1) {
		t.Errorf("Read after a full batch: %d events, want %d", len(got), n)
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, online.Options{})
	b := s.NewBatch()
	events := []window.Event{ev(-5, 0, nil, "a"), ev(10, 1, int64(3), "b"), ev(10, 2, 2.5, "c")}
	for i := range events {
		if err := b.Put("v", 3, "u1|m1", &events[i], 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.SetOffset("transactions", 4, 12); err != nil {
		t.Fatal(err)
	}
	if err := b.MarkSeen("transactions", "e9"); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = openStore(t, dir, online.Options{})
	defer s.Close()
	if diff := cmp.Diff(events, readOne(t, s, "v", 3, "u1|m1", math.MaxInt64), equateEmpty); diff != "" {
		t.Errorf("events after reopen (-want +got):\n%s", diff)
	}
	offs, err := s.Offsets("transactions")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[int32]int64{4: 12}, offs); diff != "" {
		t.Errorf("offsets after reopen (-want +got):\n%s", diff)
	}
	b = s.NewBatch()
	defer b.Discard()
	if ok, err := b.Seen("transactions", "e9"); !ok || err != nil {
		t.Errorf("Seen(e9) after reopen = %v, %v; want true", ok, err)
	}
}

func TestOpenTwiceFails(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, online.Options{})
	defer s.Close()
	if s2, err := online.Open(dir, online.Options{}); err == nil {
		s2.Close()
		t.Fatal("a second Open of a store in use succeeded")
	} else if !strings.Contains(err.Error(), dir) {
		t.Errorf("error %q does not name the directory %s", err, dir)
	}
}

// The dedupe horizon forgets ids once it passes, and the default keeps them
// far longer. Badger's TTL has second granularity (an id may expire up to a
// second early), so the horizon is 2s: the id is surely seen for the first
// second, and gone within a few.
func TestDedupeHorizon(t *testing.T) {
	short := openStore(t, t.TempDir(), online.Options{DedupeHorizon: 2 * time.Second})
	defer short.Close()
	long := openStore(t, t.TempDir(), online.Options{})
	defer long.Close()
	for _, s := range []*online.Store{short, long} {
		b := s.NewBatch()
		if err := b.MarkSeen("transactions", "e1"); err != nil {
			t.Fatal(err)
		}
		e := ev(1, 1, "kept")
		if err := b.Put("v", 1, "u1", &e, 0); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	seen := func(s *online.Store) bool {
		t.Helper()
		b := s.NewBatch()
		defer b.Discard()
		ok, err := b.Seen("transactions", "e1")
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !seen(short) {
		t.Fatal("Seen right after MarkSeen = false with a 2s horizon")
	}
	deadline := time.Now().Add(6 * time.Second)
	for seen(short) {
		if time.Now().After(deadline) {
			t.Fatal("an id with a 2s dedupe horizon is still seen after 6s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !seen(long) {
		t.Error("an id with the default (24h) horizon was forgotten within seconds")
	}
	for name, s := range map[string]*online.Store{"2s": short, "default": long} {
		if got := readOne(t, s, "v", 1, "u1", 2); len(got) != 1 {
			t.Errorf("%s horizon: events read %v, want the one event (events never expire)", name, got)
		}
	}
}

// A read sees each batch whole or not at all, and never one older than a
// read before it, while batches commit, staged or not.
func TestReadSeesWholeBatches(t *testing.T) {
	for _, staged := range []bool{false, true} {
		t.Run(fmt.Sprintf("staged=%v", staged), func(t *testing.T) { readWholeBatches(t, staged) })
	}
}

func readWholeBatches(t *testing.T, staged bool) {
	s := newStore(t)
	const batches = 200
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range batches {
			b := s.NewBatch()
			for _, k := range []string{"a", "b"} {
				e := ev(int64(i), int64(i), k)
				if err := b.Put("v", 1, k, &e, 0); err != nil {
					t.Errorf("Put: %v", err)
				}
			}
			if err := b.SetOffset("s", 0, int64(i+1)); err != nil {
				t.Errorf("SetOffset: %v", err)
			}
			if staged {
				if err := b.Stage(); err != nil {
					t.Errorf("Stage: %v", err)
				}
			}
			if err := b.Commit(); err != nil {
				t.Errorf("Commit: %v", err)
			}
		}
	}()
	for last := 0; last < batches; {
		var na, nb int
		err := s.Read("v", 1, []string{"a", "b"}, math.MaxInt64, func(i int, evs []window.Event) {
			if i == 0 {
				na = len(evs)
			} else {
				nb = len(evs)
			}
		})
		if err != nil {
			t.Errorf("Read: %v", err)
			break
		}
		if na != nb {
			t.Errorf("Read saw %d events of a and %d of b; batches put one of each", na, nb)
			break
		}
		if na < last {
			t.Errorf("Read saw %d events after having seen %d", na, last)
			break
		}
		last = na
	}
	wg.Wait()
	offs, err := s.Offsets("s")
	if err != nil || offs[0] != batches {
		t.Errorf("Offsets after %d batches = %v, %v", batches, offs, err)
	}
}

// TestApplyDeletionsFillABatch applies changelog deletions until the batch
// is full: it must say so with ErrBatchFull, as for writes, so that a
// restore commits and goes on in a new batch.
func TestApplyDeletionsFillABatch(t *testing.T) {
	s := newStore(t)
	b := s.NewBatch()
	defer b.Discard()
	for n := 0; ; n++ {
		err := b.Apply(fmt.Appendf(nil, "t\x00v\x00%0200d", n), nil, 0)
		if errors.Is(err, online.ErrBatchFull) {
			break
		}
		if err != nil {
			t.Fatalf("deletion %d: %v", n, err)
		}
		if n > 10_000_000 {
			t.Fatal("the batch never filled up")
		}
	}
}

// TestOffsetOf reads the progress name and partition back from offsets
// entries' keys, and refuses other keys.
func TestOffsetOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    int32
	}{{"clicks", 0}, {"view.user_clicks.3", 11}, {"reroute.v.1", 1 << 20}} {
		key := online.OffsetChange("v", tc.name, tc.p, 42).Key
		name, p, ok := online.OffsetOf(key)
		if !ok || name != tc.name || p != tc.p {
			t.Errorf("OffsetOf(%q) = %q, %d, %v; want %q, %d", key, name, p, ok, tc.name, tc.p)
		}
	}
	for _, key := range []string{"", "o", "t\x00v\x00\x00\x00\x00\x01", "o\x00x"} {
		if _, _, ok := online.OffsetOf([]byte(key)); ok {
			t.Errorf("OffsetOf(%q) took a key that is not offsets", key)
		}
	}
}

func TestNodeIDOutlivesReopening(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, online.Options{})
	first, err := s.NodeID()
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.NodeID()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, online.Options{})
	defer s.Close()
	reopened, err := s.NodeID()
	if err != nil {
		t.Fatal(err)
	}
	elsewhere, err := newStore(t).NodeID()
	if err != nil {
		t.Fatal(err)
	}
	if first == "" || again != first || reopened != first {
		t.Errorf("node ids %q, %q, %q: want one id kept across reopening", first, again, reopened)
	}
	if elsewhere == first {
		t.Errorf("two stores share node id %q", first)
	}
}

func TestRunNumberOutlivesReopening(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, online.Options{})
	first, err := s.LastRun()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetRun(7); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, online.Options{})
	defer s.Close()
	again, err := s.LastRun()
	if err != nil {
		t.Fatal(err)
	}
	if first != 0 || again != 7 {
		t.Errorf("runs %d before any and %d after reopening, want 0 and 7", first, again)
	}
}
