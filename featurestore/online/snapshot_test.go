package online_test

import (
	"testing"
	"time"

	"github.com/sluicehq/sluice/featurestore/window"
)

// TestLoadCommittedReadsOneSnapshot checks what a batch's loads see: what
// was committed before its first load, not a commit made after it, nor
// the batch's own writes.
func TestLoadCommittedReadsOneSnapshot(t *testing.T) {
	s := newStore(t)
	l := window.NewLayout([]window.Spec{{Agg: window.Count, Input: -1}}, time.Hour)
	count := func(st *window.State) int64 {
		out := make([]window.Value, 1)
		l.EvalSpecs(time.Now().UnixMicro(), st, nil, []int{0}, out)
		return out[0].V.(int64)
	}
	put := func(key string, events int) {
		t.Helper()
		b := s.NewBatch()
		st := l.NewState()
		for i := range events {
			l.Add(st, &window.Event{Time: time.Now().Add(-time.Minute).UnixMicro() + int64(i), Seq: int64(i)}, true)
		}
		if err := b.PutState("v", 1, key, l, st, 0); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	load := func(b interface {
		LoadCommitted(string, int, string, *window.Layout) (*window.State, error)
	}, key string) int64 {
		t.Helper()
		st, err := b.LoadCommitted("v", 1, key, l)
		if err != nil {
			t.Fatal(err)
		}
		return count(st)
	}

	put("a", 2)
	b := s.NewBatch()
	defer b.Discard()
	if got := load(b, "a"); got != 2 {
		t.Errorf("a before its first load: %d events, want 2", got)
	}
	put("b", 3) // committed after the batch's first load
	if got := load(b, "b"); got != 0 {
		t.Errorf("b, committed after the first load: %d events, want 0", got)
	}
	own := l.NewState()
	l.Add(own, &window.Event{Time: time.Now().Add(-time.Minute).UnixMicro()}, true)
	if err := b.PutState("v", 1, "c", l, own, 0); err != nil {
		t.Fatal(err)
	}
	if got := load(b, "c"); got != 0 {
		t.Errorf("c, written by the batch itself: %d events, want 0", got)
	}
	later := s.NewBatch()
	defer later.Discard()
	if got := load(later, "b"); got != 3 {
		t.Errorf("b in a later batch: %d events, want 3", got)
	}
}
