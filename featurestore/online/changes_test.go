package online

import (
	"strings"
	"testing"

	"github.com/sluicehq/sluice/featurestore/window"
)

// TestChangesReplicate copies a batch's changes into another store, as a
// serve replica does from a changelog, and reads the same events back.
func TestChangesReplicate(t *testing.T) {
	src, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()

	b := src.NewBatch()
	evs := []window.Event{
		{Time: 10, Arrival: 11, Seq: 1, Values: []any{int64(5), "a"}},
		{Time: 20, Arrival: 21, Seq: 2, Values: []any{nil, "b"}},
	}
	for i := range evs {
		if err := b.Put("v", 1, "k", &evs[i], 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.MarkSeen("s", "id1"); err != nil { // not view state: no change
		t.Fatal(err)
	}
	changes := b.Changes()
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if len(changes) != 2 || changes[0].View != "v" {
		t.Fatalf("changes = %+v, want the two events of view v", changes)
	}
	rb := dst.NewBatch()
	for _, c := range append(changes, changes...) { // applied twice: harmless
		if err := rb.Apply(c.Key, c.Value, c.ExpiresAt); err != nil {
			t.Fatal(err)
		}
	}
	if err := rb.Commit(); err != nil {
		t.Fatal(err)
	}
	var got []window.Event
	if err := dst.Read("v", 1, []string{"k"}, 100, func(_ int, e []window.Event) { got = append(got, e...) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Values[0] != int64(5) || got[1].Values[0] != nil || got[1].Arrival != 21 {
		t.Fatalf("replicated events = %+v", got)
	}

	bad := dst.NewBatch()
	defer bad.Discard()
	if err := bad.Apply([]byte("x\x00s"), []byte{0}, 0); err == nil {
		t.Error("Apply took a key that is neither state, a seen id nor an offset")
	}
	if err := bad.Apply(changes[0].Key, []byte{0xff}, 0); err == nil {
		t.Error("Apply took a corrupt value")
	}
}

// TestCollectGarbage runs value-log GC over a store with expired and
// overwritten state: it reclaims what it can and reports no error, and the
// live state reads back unchanged.
func TestCollectGarbage(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for round := range 3 {
		b := s.NewBatch()
		for i := range 200 {
			ev := window.Event{Time: int64(i), Seq: int64(i), Values: []any{strings.Repeat("x", 2000), int64(round)}}
			if err := b.Put("v", 1, "k", &ev, 0); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CollectGarbage(); err != nil {
		t.Fatal(err)
	}
	var got []window.Event
	if err := s.Read("v", 1, []string{"k"}, 1000, func(_ int, e []window.Event) { got = append(got, e...) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 200 || got[199].Values[1] != int64(2) {
		t.Fatalf("after gc: %d events, last %v; want 200 from the last round", len(got), got[len(got)-1].Values)
	}
}
