package stream_test

import (
	"testing"
	"time"

	"github.com/sluicehq/sluice/testkit"
)

const mixedView = `
---
kind: feature_view
name: user_mixed
entity: user
source: clicks
allowed_lateness: 30s
features:
  - {name: n_2s, agg: count, window: 2s, hop: 1s}
  - {name: events, agg: count}
`

// TestLateEventsInsideALifetimeTile reads, between two events that arrived
// too late for the view's windows (retention 33s) but not so late that
// their long-grid tile folded into the base (66s), at a time inside that
// tile: the lifetime count takes the earlier one, the windowed count
// neither, as at times the tile does not cut.
func TestLateEventsInsideALifetimeTile(t *testing.T) {
	h := newHarness(t, repoYAML+mixedView)
	store := testkit.OnlineStore(t)
	tile := time.Now().Add(-45 * time.Second).Truncate(time.Second)
	first, second := tile.Add(100*time.Millisecond), tile.Add(600*time.Millisecond)
	h.produce(t, click("a", "l1", 1, first.UnixMilli()), click("a", "l2", 1, second.UnixMilli()))
	runEngine(t, h, store)()

	repo := h.registry.Repo()
	for _, tt := range []struct {
		at               time.Time
		windowed, events int64
	}{
		{tile.Add(300 * time.Millisecond), 0, 1}, // the tile is cut: its raw events are read
		{tile.Add(700 * time.Millisecond), 0, 2}, // past both: the tile's partials
		{time.Now(), 0, 2},
	} {
		got := read(t, store, repo, "user_mixed", "a", tt.at.UnixMicro())
		if got[0].V != tt.windowed || got[1].V != tt.events {
			t.Errorf("at tile+%v: n_2s %v, events %v; want %d, %d", tt.at.Sub(tile), got[0].V, got[1].V, tt.windowed, tt.events)
		}
	}
}
