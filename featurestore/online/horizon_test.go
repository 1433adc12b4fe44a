package online

import (
	"testing"
	"time"

	"github.com/sluicehq/sluice/featurestore/window"
)

// TestFoldedTileLeftBehindIsIgnored stores a lifetime count's tile again
// after the state folded it into its base, as a catch-up from a changelog
// whose deletion of the tile was compacted away leaves it: reads must
// count its events once, from the base.
func TestFoldedTileLeftBehindIsIgnored(t *testing.T) {
	s := stagedStore(t, t.TempDir())
	old := time.Now().Add(-48 * time.Hour).UnixMicro()

	b := s.NewBatch()
	st := countLayout.NewState()
	countLayout.Add(st, &window.Event{Time: old}, true)
	if err := b.PutState("v", 1, "a", countLayout, st, 0); err != nil {
		t.Fatal(err)
	}
	var tile Change
	for _, c := range b.Changes() {
		if c.Key[0] == 't' {
			tile = c
		}
	}
	if tile.Key == nil {
		t.Fatal("the first batch wrote no tile")
	}
	commit(t, b)

	b = s.NewBatch()
	st, err := b.LoadCommitted("v", 1, "a", countLayout)
	if err != nil {
		t.Fatal(err)
	}
	countLayout.Age(st, time.Now().UnixMicro())
	if err := b.PutState("v", 1, "a", countLayout, st, 0); err != nil {
		t.Fatal(err)
	}
	commit(t, b)
	if n, _ := counts(t, s, "a"); n != 1 {
		t.Fatalf("after folding the tile: count %d, want 1", n)
	}

	b = s.NewBatch()
	if err := b.Apply(tile.Key, tile.Value, 0); err != nil {
		t.Fatal(err)
	}
	commit(t, b)
	if n, _ := counts(t, s, "a"); n != 1 {
		t.Errorf("with the folded tile stored again: count %d, want 1", n)
	}

	// A tile that starts at the horizon holds events after the fold.
	b = s.NewBatch()
	st, err = b.LoadCommitted("v", 1, "a", countLayout)
	if err != nil {
		t.Fatal(err)
	}
	countLayout.Add(st, &window.Event{Time: st.Horizon, Seq: 1}, true)
	if err := b.PutState("v", 1, "a", countLayout, st, 0); err != nil {
		t.Fatal(err)
	}
	commit(t, b)
	if n, _ := counts(t, s, "a"); n != 2 {
		t.Errorf("with a tile at the horizon: count %d, want 2", n)
	}
}
