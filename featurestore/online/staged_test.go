package online

import (
	"slices"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/sluicehq/sluice/featurestore/window"
)

// countLayout is a layout of one lifetime count.
var countLayout = window.NewLayout([]window.Spec{{Agg: window.Count, Input: -1}}, time.Hour)

// stagedStore opens a store in a fresh directory, closed at the end of
// the test.
func stagedStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// addEvents starts a batch that adds n events, a minute old, to key's
// state as committed, and its raw events.
func addEvents(t *testing.T, s *Store, key string, n int) *Batch {
	t.Helper()
	b := s.NewBatch()
	st, err := b.LoadCommitted("v", 1, key, countLayout)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-time.Minute).UnixMicro()
	for i := range n {
		ev := window.Event{Time: base + int64(i), Seq: time.Now().UnixNano()}
		countLayout.Add(st, &ev, true)
		if err := b.Put("v", 1, key, &ev, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.PutState("v", 1, key, countLayout, st, 0); err != nil {
		t.Fatal(err)
	}
	return b
}

// counts reads key's lifetime count from its state and the number of its
// raw events, through ReadState and Read.
func counts(t *testing.T, s *Store, key string) (state int64, raw int) {
	t.Helper()
	now := time.Now().UnixMicro()
	out := make([]window.Value, 1)
	err := s.ReadState("v", 1, []string{key}, countLayout, func(_ int, st *window.State, rf window.RawFunc) error {
		countLayout.EvalSpecs(now, st, rf, []int{0}, out)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Read("v", 1, []string{key}, now, func(_ int, evs []window.Event) { raw = len(evs) }); err != nil {
		t.Fatal(err)
	}
	return out[0].V.(int64), raw
}

func commit(t *testing.T, b *Batch) {
	t.Helper()
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
}

func stageBatch(t *testing.T, b *Batch) {
	t.Helper()
	if err := b.Stage(); err != nil {
		t.Fatal(err)
	}
}

// TestStagedBatchIsReadBeforeCommit follows a batch from staged to
// committed, and another from staged to discarded.
func TestStagedBatchIsReadBeforeCommit(t *testing.T) {
	s := stagedStore(t, t.TempDir())
	commit(t, addEvents(t, s, "a", 2))

	b := addEvents(t, s, "a", 1)
	if st, raw := counts(t, s, "a"); st != 2 || raw != 2 {
		t.Errorf("before staging: count %d, %d raw events; want the committed 2", st, raw)
	}
	stageBatch(t, b)
	if st, raw := counts(t, s, "a"); st != 3 || raw != 3 {
		t.Errorf("staged: count %d, %d raw events; want 3", st, raw)
	}
	if st, raw := counts(t, s, "b"); st != 0 || raw != 0 {
		t.Errorf("an entity the batch did not change: count %d, %d raw events; want 0", st, raw)
	}
	commit(t, b)
	if n := len(s.staging()); n != 0 {
		t.Errorf("%d batches staged after the commit, want 0", n)
	}
	if st, raw := counts(t, s, "a"); st != 3 || raw != 3 {
		t.Errorf("committed: count %d, %d raw events; want 3", st, raw)
	}

	dropped := addEvents(t, s, "a", 5)
	stageBatch(t, dropped)
	if st, _ := counts(t, s, "a"); st != 8 {
		t.Errorf("second batch staged: count %d, want 8", st)
	}
	dropped.Discard()
	if st, raw := counts(t, s, "a"); st != 3 || raw != 3 {
		t.Errorf("second batch discarded: count %d, %d raw events; want 3", st, raw)
	}
}

// TestTwoStagedBatches reads a batch staged over another that is still
// committing: the later one's values win.
func TestTwoStagedBatches(t *testing.T) {
	s := stagedStore(t, t.TempDir())
	first := addEvents(t, s, "a", 2)
	stageBatch(t, first)
	// The engine applies the next batch to its own copy of the state: here
	// the committed one, plus the first batch's events again.
	second := addEvents(t, s, "a", 5)
	stageBatch(t, second)
	if st, raw := counts(t, s, "a"); st != 5 || raw != 7 {
		t.Errorf("two staged batches: count %d, %d raw events; want the second's 5 and all 7 raw", st, raw)
	}
	commit(t, first)
	if st, _ := counts(t, s, "a"); st != 5 {
		t.Errorf("first committed: count %d, want 5", st)
	}
	second.Discard()
	if st, raw := counts(t, s, "a"); st != 2 || raw != 2 {
		t.Errorf("second discarded: count %d, %d raw events; want 2", st, raw)
	}
}

// TestReadSkipsStagedBatchesItsSnapshotHolds reads with a list of staged
// batches taken before they committed and a later one overwrote their
// values: the snapshot holds them, so they are not laid over it.
func TestReadSkipsStagedBatchesItsSnapshotHolds(t *testing.T) {
	s := stagedStore(t, t.TempDir())
	first := addEvents(t, s, "a", 2)
	stageBatch(t, first)
	stale := s.staging()
	commit(t, first)
	second := addEvents(t, s, "a", 3)
	stageBatch(t, second)
	commit(t, second)

	err := s.db.View(func(txn *badger.Txn) error {
		r, err := newStateReader(txn, stale)
		if err != nil {
			return err
		}
		st, err := loadState(r, "v", 1, "a", countLayout)
		if err != nil {
			return err
		}
		out := make([]window.Value, 1)
		countLayout.EvalSpecs(time.Now().UnixMicro(), st, nil, []int{0}, out)
		if got := out[0].V.(int64); got != 5 {
			t.Errorf("count with a stale list of staged batches = %d, want 5", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestStagedNumbersGoOnAfterReopen stages a batch in a reopened store: it
// is numbered after the batches the store holds, so reads lay it over.
func TestStagedNumbersGoOnAfterReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		b := addEvents(t, s, "a", 1)
		stageBatch(t, b)
		commit(t, b)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = stagedStore(t, dir)
	b := addEvents(t, s, "a", 1)
	defer b.Discard()
	stageBatch(t, b)
	if st, _ := counts(t, s, "a"); st != 4 {
		t.Errorf("staged after reopening: count %d, want 4", st)
	}
}

// TestStateReaderMerges lays staged entries over stored ones: a staged
// value replaces a stored one, a staged deletion or an expired staged
// entry hides its key, and keys come in order within the range asked.
func TestStateReaderMerges(t *testing.T) {
	s := stagedStore(t, t.TempDir())
	ent := statePrefix('b', "v", 1, "k")
	key := func(tag byte, n byte) []byte { return append(statePrefix(tag, "v", 1, "k"), n) }
	b := s.NewBatch()
	for _, n := range []byte{1, 2, 3, 5} {
		if err := b.Apply(key('e', n), encodeEvent(nil, &window.Event{}), 0); err != nil {
			t.Fatal(err)
		}
	}
	commit(t, b)
	past := uint64(time.Now().Add(-time.Hour).Unix())
	st := newStage(1, []Change{
		{View: "v", Key: key('e', 2)},                                      // deleted
		{View: "v", Key: key('e', 3), Value: []byte("new")},                // replaced
		{View: "v", Key: key('e', 4), Value: []byte("added")},              // added
		{View: "v", Key: key('e', 6), Value: []byte("x"), ExpiresAt: past}, // expired
		{View: "v", Key: key('e', 7), Value: []byte("beyond")},             // past the stop
		{View: "w", Key: statePrefix('e', "w", 1, "k"), Value: []byte("other view")},
	})
	err := s.db.View(func(txn *badger.Txn) error {
		r, err := newStateReader(txn, []*stage{st})
		if err != nil {
			return err
		}
		var got []string
		prefix := statePrefix('e', "v", 1, "k")
		err = r.scan(ent, prefix, key('e', 0), key('e', 7), func(k, v []byte) error {
			if len(v) > 3 {
				v = v[:3]
			}
			got = append(got, string(rune('0'+k[len(k)-1]))+":"+string(v))
			return nil
		})
		if err != nil {
			return err
		}
		stored := string(encodeEvent(nil, &window.Event{}))
		if len(stored) > 3 {
			stored = stored[:3]
		}
		want := []string{"1:" + stored, "3:new", "4:add", "5:" + stored}
		if !slices.Equal(got, want) {
			t.Errorf("scan = %q, want %q", got, want)
		}
		for n, want := range map[byte]bool{1: true, 2: false, 3: true, 6: false} {
			found, err := r.get(ent, key('e', n), func([]byte) error { return nil })
			if err != nil {
				return err
			}
			if found != want {
				t.Errorf("get key %d: found %v, want %v", n, found, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestReadAcrossACommit commits a staged batch after a read has loaded the
// staged batches and before it opens its snapshot: the read must still
// see the batch, which it finds in one or the other.
func TestReadAcrossACommit(t *testing.T) {
	s := stagedStore(t, t.TempDir())
	commit(t, addEvents(t, s, "a", 1))
	b := addEvents(t, s, "a", 2)
	stageBatch(t, b)
	testHookStaged = func() {
		testHookStaged = nil
		commit(t, b)
	}
	defer func() { testHookStaged = nil }()
	if st, raw := counts(t, s, "a"); st != 3 || raw != 3 {
		t.Errorf("read across the commit: count %d, %d raw events; want 3", st, raw)
	}
}
