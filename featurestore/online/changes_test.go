package online

import (
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
	if err := bad.Apply(offsetKey("s", 0), []byte{0}, 0); err == nil {
		t.Error("Apply took an offset key; only view state may be replicated")
	}
	if err := bad.Apply(changes[0].Key, []byte{0xff}, 0); err == nil {
		t.Error("Apply took a corrupt value")
	}
}
